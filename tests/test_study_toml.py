"""One writer of study files (:func:`lstmsearch.config.study_toml`): what it writes reads back
as the same document, the anchor studies and construction stores keep their text byte for byte,
and the identity of a study does not depend on how its file is laid out."""

import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmsearch.anchors import memory
from lstmsearch.anchors import why_gates as wg
from lstmsearch.cells import Cell
from lstmsearch.config import parse_study, study_toml
from lstmsearch.errors import LstmsearchError
from lstmsearch.run.construct_store import study_text as construction_text
from lstmsearch.tasks import make_task

from search_helpers import study_text

ROOT = Path(__file__).resolve().parents[1]

# The texts the f-string writers gave before study_toml replaced them.
MEMORY_LSTM_H2 = """[study]
name = "memory_lstm_h2"
description = "memory throughput: lstm, H=2, recall the 6 most recent of 40 numbers"

[cell]
kind = "lstm"
hidden = 2

[task]
kind = "recall_window"
length = 40
k = 6
dist = { kind = "uniform", low = -1.0, high = 1.0 }

[eval]
sequences = 128
heldout = 128
seed = 0
readout = "fit"

[space]
kind = "masked"
default = "fixed"

[[space.rule]]
block = ["weight_ih", "weight_hh", "bias_ih"]
tie = "none"
low = -2.0
high = 2.0

[strategy]
kind = "cmaes"
sigma = 0.15
popsize = 64
restarts = "ipop"
seed = 0

[budget]
settings = 20000

[store]
keep_weights = 4
"""

CONSTRUCTION_GRU = """# Hand-built constructions written by `lstmsearch construct --study cons_x`.
# Each row is a construction scored with its own readout; nothing is searched.

[study]
name = "cons_x"
description = "hand-built constructions (gru, H=2)"
out = "data/cons_x"

[cell]
kind = "gru"
hidden = 2
inputs = 1
outputs = 1

[task]
kind = "recall_first"
length = 10
dist = { kind = "uniform", low = -1.0, high = 1.0, dim = 1 }

[eval]
sequences = 64
heldout = 64
seed = 0
backend = "cpu"
readout = "given"

[space]
kind = "full"

[strategy]
kind = "sweep"
batch = 1

[budget]
settings = 3

[store]
keep_weights = "all"
"""

HELPER_SWEEP = """
[study]
name = "s"
out = "/tmp/d/s"
[cell]
kind = "lstm"
hidden = 3
[task]
kind = "recall_first"
length = 6
[eval]
sequences = 24
heldout = 24
seed = 3

[space]
kind = "masked"
default = "fixed"
[[space.rule]]
block = "weight_ih"
tie = "gate"
low = -3.0
high = 3.0
[[space.rule]]
block = "weight_hh"
part = "diagonal"
tie = "gate"
low = -20.0
high = 20.0
[[space.rule]]
block = "bias_ih"
tie = "gate"
low = -10.0
high = 10.0

[strategy]
kind = "sweep"
method = "random"
batch = 50

[budget]
settings = 200
[store]
keep_weights = 20

"""


def _writers():
    task = make_task("recall_first", length=10)
    yield "why_gates", [wg.study_text(v, n) for v in wg.VARIANTS for n in wg.LENGTHS]
    yield "memory", [memory.study_text(k, h) for k in ("lstm", "gru", "rnn_tanh") for h in (1, 2, 8)]
    yield "construct", [construction_text("cons_x", Cell(k, 2, 1, 1), task, 64, 0, "cpu", "data/cons_x", 3)
                        for k in ("lstm", "gru", "rnn_tanh")]
    yield "helpers", [study_text("s", "/tmp/d/s", strategy=s) for s in ("sweep", "optuna", "cmaes")]


@pytest.mark.parametrize("writer,texts", list(_writers()), ids=[w for w, _ in _writers()])
def test_every_writer_round_trips(writer, texts):
    for text in texts:
        doc = tomllib.loads(text)
        again = study_toml(doc)
        assert tomllib.loads(again) == doc
        assert study_toml(tomllib.loads(again)) == again  # a fixed point: equal documents, equal text
        assert parse_study(again).identity() == parse_study(text).identity()
        if writer in ("memory", "helpers"):  # no comments: the writer's text is study_toml's own
            assert again == text


def test_old_texts_are_kept_byte_for_byte():
    assert memory.study_text("lstm", 2) == MEMORY_LSTM_H2
    task = make_task("recall_first", length=10)
    assert construction_text("cons_x", Cell("gru", 2, 1, 1), task, 64, 0, "cpu", "data/cons_x", 3) == CONSTRUCTION_GRU
    for v in wg.VARIANTS:  # and the committed why_gates files (also checked by test_why_gates)
        for n in wg.LENGTHS:
            assert (ROOT / "studies" / "why_gates" / f"{v}_n{n}.toml").read_text() == wg.study_text(v, n)


def test_test_helper_layout_changed_but_not_the_study():
    new = study_text("s", "/tmp/d/s")
    assert new != HELPER_SWEEP and tomllib.loads(new) == tomllib.loads(HELPER_SWEEP)
    assert parse_study(new).identity() == parse_study(HELPER_SWEEP).identity()


def test_values_and_layout():
    doc = {"study": {"name": "x", "note": 'a "quoted" \\ back\nslash\t\x01 \u00e9\u4e2d', "weird key": 1},
           "eval": {"solved": 1e-5, "big": 1e300, "tiny": 5e-324, "neg": -0.0, "inf": math.inf,
                    "minf": -math.inf, "int": 2 ** 62, "flag": True, "off": False},
           "space": {"kind": "masked", "empty": [], "none": {}, "nested": {"a": [1, [2.5, "x"]], "b": {"c": 1}},
                     "rule": [{"block": ["w", "u"], "low": -3.0}, {"block": "b", "region": {"size": 3}}]}}
    text = study_toml(doc)
    assert tomllib.loads(text) == doc
    assert "solved = 1e-5\n" in text and "inf = inf\n" in text and "minf = -inf\n" in text
    assert '"weird key" = 1' in text and "[[space.rule]]" in text and "empty = []" in text
    assert text.index("nested = ") < text.index("[[space.rule]]")  # the table's keys before its arrays
    deep = {"t": {"r": [{"q": [{"z": 1}], "d": {"e": [{"f": 2}]}}]}}  # inline inside an array of tables
    assert tomllib.loads(study_toml(deep)) == deep
    nan = tomllib.loads(study_toml({"t": {"x": math.nan}}))["t"]["x"]
    assert math.isnan(nan)


def test_comments():
    text = study_toml({"a": {"x": 1}, "s": {"rule": [{"y": 1}, {"y": 2}]}},
                      {"": "top\n  indented", "a": "before a\n", "s.rule[1]": "second rule"})
    assert text == "# top\n#   indented\n\n# before a\n[a]\nx = 1\n\n[s]\n\n[[s.rule]]\ny = 1\n\n# second rule\n[[s.rule]]\ny = 2\n"
    assert tomllib.loads(text) == {"a": {"x": 1}, "s": {"rule": [{"y": 1}, {"y": 2}]}}


@pytest.mark.parametrize("bad", [{"t": {"x": None}}, {"t": {"x": object()}}, {"t": {"x": "\ud800"}},
                                 {"t": {1: 2}}])
def test_what_cannot_be_written_is_refused(bad):
    with pytest.raises(LstmsearchError, match="cannot"):
        study_toml(bad)


_SCALARS = st.one_of(st.booleans(), st.integers(-2 ** 63, 2 ** 63 - 1), st.floats(allow_nan=False),
                     st.text(st.characters(exclude_categories=("Cs",)), max_size=6))
_KEYS = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=5)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(_KEYS, inner, max_size=3)), max_leaves=8)
_TABLES = st.dictionaries(_KEYS, st.dictionaries(_KEYS, st.one_of(
    _VALUES, st.lists(st.dictionaries(_KEYS, _VALUES, max_size=3), min_size=1, max_size=2))), max_size=4)


@settings(max_examples=200, deadline=None)
@given(_TABLES)
def test_random_documents_round_trip(doc):
    text = study_toml(doc)
    assert tomllib.loads(text) == doc
    assert study_toml(tomllib.loads(text)) == text
