"""Strategies say what they can do: class attributes of the Strategy contract, not name strings.

Racing, ``--repair``, a row's z and the options of a shared storage are decided from a strategy's
class attributes (:mod:`lstmsearch.search.base`), looked up by kind in the registry
(:data:`lstmsearch.search.STRATEGIES`); no module outside ``lstmsearch/search/`` compares a
strategy's name (an AST walk, like ``test_architecture``'s).
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from lstmsearch.config import parse_study, study_toml
from lstmsearch.errors import ConfigError
from lstmsearch.search import STRATEGIES, Strategy, kinds_with, strategy_named
from lstmsearch.search.cma import STATE, CmaStrategy
from lstmsearch.search.optuna_search import OptunaStrategy
from lstmsearch.search.sweep import SweepStrategy

PACKAGE = Path(__file__).resolve().parents[1] / "lstmsearch"

#: kind -> the capabilities its class declares
EXPECTED = {
    "optuna": {"shared_storage": True, "ranks_whole_batches": False, "rows_regenerable_from_key": False,
               "z_kept_by_key": True},
    "cmaes": {"shared_storage": False, "ranks_whole_batches": True, "rows_regenerable_from_key": False,
              "z_kept_by_key": True},
    "sweep": {"shared_storage": False, "ranks_whole_batches": True, "rows_regenerable_from_key": True,
              "z_kept_by_key": False},
}


def study_doc(strategy, racing=None):
    doc = {"study": {"name": "caps"}, "cell": {"kind": "lstm", "hidden": 2},
           "task": {"kind": "recall_first", "lengths": [6, 7]},
           "eval": {"sequences": 16, "heldout": 12, "seed": 3},
           "space": {"kind": "full"}, "strategy": strategy, "budget": {"settings": 64}}
    if racing:
        doc["eval"]["racing"] = {"rungs": [[4, 3], [8, 5]], "keep": 0.25}
    return doc


OPTUNA = {"kind": "optuna", "sampler": "random", "batch": 4}
SWEEP = {"kind": "sweep", "batch": 8}
CMAES = {"kind": "cmaes", "popsize": 8}


def test_every_kind_has_a_class_that_says_what_it_can_do():
    assert list(STRATEGIES) == list(EXPECTED)
    for kind, caps in EXPECTED.items():
        cls = strategy_named(kind)
        assert issubclass(cls, Strategy) and cls.name == kind
        assert {k: getattr(cls, k) for k in caps} == caps, kind
        assert cls.options["kind"][1] == kind  # its [strategy] keys, the kind's default its own name
        if not cls.rows_regenerable_from_key:
            assert f"{kind} rows are not regenerable from a key" in cls.not_regenerable_reason
    assert kinds_with("ranks_whole_batches") == ["cmaes", "sweep"]
    assert kinds_with("shared_storage") == ["optuna"]


def test_strategy_named_is_none_for_anything_but_a_kind():
    assert strategy_named("sweep") is SweepStrategy and strategy_named("cmaes") is CmaStrategy
    for other in ("construction", "nope", None, ["sweep"], 3):
        assert strategy_named(other) is None


def test_racing_follows_the_attribute_not_the_name(monkeypatch):
    with pytest.raises(ConfigError, match=r"ranks whole batches \(cmaes, sweep\), not 'optuna'"):
        parse_study(study_toml(study_doc(OPTUNA, racing=True)), "s.toml")
    monkeypatch.setattr(OptunaStrategy, "ranks_whole_batches", True)
    assert parse_study(study_toml(study_doc(OPTUNA, racing=True)), "s.toml").eval.racing is not None
    monkeypatch.setattr(OptunaStrategy, "ranks_whole_batches", False)
    monkeypatch.setattr(SweepStrategy, "ranks_whole_batches", False)
    with pytest.raises(ConfigError, match=r"ranks whole batches \(cmaes\), not 'sweep'"):
        parse_study(study_toml(study_doc(SWEEP, racing=True)), "s.toml")
    assert parse_study(study_toml(study_doc(CMAES, racing=True)), "s.toml").eval.racing is not None


@pytest.mark.parametrize("strategy", [OPTUNA, SWEEP, CMAES], ids=lambda s: s["kind"])
def test_options_are_the_strategy_table_keys(strategy):
    cls = strategy_named(strategy["kind"])
    cfg = parse_study(study_toml(study_doc(strategy)), "s.toml")
    assert set(cls.options) <= set(cfg.strategy)
    with pytest.raises(ConfigError) as e:
        parse_study(study_toml(study_doc({**strategy, "no_such_key": 1})), "s.toml")
    assert f"has no key 'no_such_key'; expected some of {', '.join(cls.options)}" in str(e.value)


def test_a_parsed_table_never_shares_a_default_of_the_options():
    a, b = (parse_study(study_toml(study_doc(OPTUNA)), "s.toml").strategy for _ in range(2))
    for key in ("objectives", "sampler_options"):
        assert a[key] == b[key] == OptunaStrategy.options[key][1]
        assert a[key] is not b[key] and a[key] is not OptunaStrategy.options[key][1]


def test_repair_state_sets_only_a_cmaes_state_aside(tmp_path):
    store = SimpleNamespace(root=tmp_path)
    (tmp_path / STATE).write_bytes(b"state")
    assert SweepStrategy.repair_state(store) == [] and OptunaStrategy.repair_state(store) == []
    assert (tmp_path / STATE).is_file()
    (line,) = CmaStrategy.repair_state(store)
    assert "set the CMA-ES state aside" in line and not (tmp_path / STATE).exists()
    assert CmaStrategy.repair_state(store) == []


def test_strategies_without_keys_rebuild_no_lost_part():
    for cls in (OptunaStrategy, CmaStrategy):
        assert cls.lost_part_batch(None, None, 0, 0, 10) == (None, 0, cls.not_regenerable_reason)


# ------------------------------------------------------------- nobody outside search/ asks the name
def _names_in(node) -> set:
    """The string constants of ``node``, or of the elements of a tuple/list/set literal."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return {n.value for n in items if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def name_comparisons(source: str, names) -> list:
    """``(line, names)`` of each comparison with a strategy name (``== "sweep"``, ``in ("cmaes",
    "optuna")``), each dict literal keyed by strategy names and each tuple, list or set made of
    strategy names only (a constant to compare with later), in ``source``."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            hit = set().union(*(_names_in(n) for n in [node.left, *node.comparators])) & set(names)
        elif isinstance(node, ast.Dict):
            hit = {k.value for k in node.keys if isinstance(k, ast.Constant)} & set(names)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts:
            only_names = all(isinstance(e, ast.Constant) and e.value in names for e in node.elts)
            hit = _names_in(node) if only_names else set()
        else:
            continue
        found.setdefault(node.lineno, set()).update(hit)
    return [(line, sorted(hit)) for line, hit in sorted(found.items()) if hit]


@pytest.mark.parametrize("source, hits", [
    ('if cfg.strategy["kind"] == "cmaes":\n    pass\n', [(1, ["cmaes"])]),
    ('x = r.get("strategy") in ("cmaes", "optuna")\n', [(1, ["cmaes", "optuna"])]),
    ('x = "sweep" != kind\n', [(1, ["sweep"])]),
    ('WHY = {"optuna": "re-queued"}\n', [(1, ["optuna"])]),
    ('RACERS = ("cmaes", "sweep")\n', [(1, ["cmaes", "sweep"])]),
    ('PACKAGES = ("numpy", "optuna", "cmaes")\n', []),  # package names among others
    ('doc = {"strategy": {"kind": "cmaes"}}\nok = cls.ranks_whole_batches\n', []),  # data, not a comparison
])
def test_the_name_check_catches(source, hits):
    assert name_comparisons(source, list(STRATEGIES)) == hits


def test_no_module_outside_search_compares_a_strategy_name():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "search":
            continue
        found += [f"{path.relative_to(PACKAGE.parent)}:{line} compares {names}"
                  for line, names in name_comparisons(path.read_text(), list(STRATEGIES))]
    assert found == [], "ask the strategy's class attributes (lstmsearch.search.base.Strategy) instead:\n" + \
        "\n".join(found)
