"""The masked space, built with array operations, against a plain per-position oracle.

The oracle walks every position of the flat vector and applies the rules one by one, as the
module doc of :mod:`lstmsearch.search.spaces` states them (the last rule that selects a
position decides; a tie keeps apart what it names). Random specs (hypothesis) must give the
same free positions, groups in order of first appearance, bounds, base values and names.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmsearch.cells import Cell
from lstmsearch.search.spaces import BLOCK_ALIASES, MaskedSpace

BLOCKS = list(BLOCK_ALIASES)
READOUT = ("weight_out", "bias_out")


def _where(cell, p):
    """(full block name, short name, gate name or '', unit or -1, column or -1) of position p."""
    for b in cell.blocks:
        if b.start <= p < b.start + b.size:
            off = p - b.start
            short = b.name.replace("_l0", "")
            if b.name in READOUT:
                return b.name, short, "", -1, off
            row = off // b.shape[1] if len(b.shape) == 2 else off
            col = off % b.shape[1] if len(b.shape) == 2 else -1
            return b.name, short, cell.gate_names[row // cell.hidden], row % cell.hidden, col
    raise AssertionError(p)


def _selects(cell, searched_readout, rule, p):
    full, _, gate, unit, col = _where(cell, p)
    names = [BLOCK_ALIASES.get(b, b) for b in ([rule["block"]] if isinstance(rule.get("block"), str)
                                                else rule.get("block") or [b.name for b in cell.blocks])]
    if full not in names or (full in READOUT and not searched_readout):
        return False
    if full in READOUT:
        return True
    if rule.get("gate") is not None and gate != rule["gate"]:
        return False
    if rule.get("units") is not None and unit not in rule["units"]:
        return False
    if rule.get("part", "all") != "all" and full == "weight_hh_l0":
        return (col == unit) == (rule["part"] == "diagonal")
    return True


def oracle(cell, searched_readout, spec):
    rules = [{"mode": spec["default"], "value": spec["value"], "tie": spec["tie"], "low": -1.0, "high": 1.0}]
    rules += spec["rule"]
    base = np.zeros(cell.n_params, np.float32)
    key, bounds = {}, {}
    for p in range(cell.n_params):
        for r_i, rule in enumerate(rules):
            if not _selects(cell, searched_readout, rule, p):
                continue
            if rule.get("mode", "free") == "fixed":
                base[p] = rule["value"]
                key.pop(p, None)
                continue
            full, short, gate, unit, col = _where(cell, p)
            tie = rule["tie"]
            key[p] = {"none": (r_i, p), "unit": (r_i, full, gate, unit), "gate": (r_i, full, gate),
                      "all": (r_i,)}[tie]
            local = str(col) if full in READOUT else (f"{unit},{col}" if col >= 0 else str(unit))
            name = {"none": f"{short}.{gate}[{local}]" if gate else f"{short}[{local}]",
                    "unit": f"{short}.{gate}[{unit}]", "gate": f"{short}.{gate}" if gate else short,
                    "all": f"all#{r_i}"}[tie]
            bounds[p] = (rule["low"], rule["high"], name)
    groups, names, low, high, seen = {}, [], [], [], {}
    positions = sorted(key)
    for p in positions:
        if key[p] not in groups:
            groups[key[p]] = len(groups)
            lo, hi, name = bounds[p]
            seen[name] = seen.get(name, -1) + 1
            names.append(name if seen[name] == 0 else f"{name}#{seen[name]}")
            low.append(lo)
            high.append(hi)
    return positions, [groups[key[p]] for p in positions], names, low, high, base


@st.composite
def specs(draw):
    kind = draw(st.sampled_from(["lstm", "gru", "rnn_tanh", "rnn_relu"]))
    cell = Cell(kind, draw(st.integers(1, 4)), inputs=draw(st.integers(1, 2)), outputs=draw(st.integers(1, 2)))
    rule = st.fixed_dictionaries(
        {"mode": st.sampled_from(["free", "free", "fixed"]), "value": st.sampled_from([0.0, 2.0]),
         "tie": st.sampled_from(["none", "unit", "gate", "all"]),
         "low": st.sampled_from([-3.0, -1.0]), "high": st.sampled_from([1.0, 5.0])},
        optional={"block": st.sampled_from(BLOCKS), "gate": st.sampled_from(Cell(kind, 1).gate_names),
                  "units": st.lists(st.integers(0, cell.hidden - 1), min_size=1, max_size=cell.hidden, unique=True),
                  "part": st.sampled_from(["all", "diagonal", "offdiagonal"])})
    spec = {"kind": "masked", "default": draw(st.sampled_from(["free", "fixed"])),
            "value": draw(st.sampled_from([0.0, 1.5])), "tie": draw(st.sampled_from(["none", "unit", "gate", "all"])),
            "rule": draw(st.lists(rule, max_size=4))}
    return cell, draw(st.booleans()), spec


@settings(max_examples=300, deadline=None)
@given(specs())
def test_masked_space_matches_the_per_position_oracle(case):
    cell, searched_readout, spec = case
    try:
        space = MaskedSpace(cell, searched_readout, spec)
    except ValueError as exc:  # refused: a rule selects nothing, or nothing is free
        assert "selects no searched parameter" in str(exc) or "no free parameter" in str(exc)
        positions = oracle(cell, searched_readout, spec)[0]
        selects_nothing = any(
            ("block" in r or "gate" in r or "units" in r)
            and not any(_selects(cell, searched_readout, r, p) for p in range(cell.n_params))
            for r in spec["rule"])
        assert selects_nothing or not positions
        return
    positions, groups, names, low, high, base = oracle(cell, searched_readout, spec)
    assert space.positions.tolist() == positions
    assert space.groups.tolist() == groups
    assert space.names == names
    assert space.low.tolist() == low and space.high.tolist() == high
    np.testing.assert_array_equal(space.base, base)
    z = np.random.default_rng(0).uniform(space.low, space.high, (2, space.dim))
    params = space.to_params(z)
    np.testing.assert_array_equal(params[:, positions], z[:, groups].astype(np.float32))
