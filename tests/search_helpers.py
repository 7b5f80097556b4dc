"""Small study files for the search/store/study tests (tiny cells, short sequences)."""

import re
import tomllib
from pathlib import Path

from lstmsearch.config import study_toml

MASKED = """
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
"""

STRATEGIES = {
    "optuna": '[strategy]\nkind = "optuna"\nsampler = "random"\nbatch = 4\nregion = { size = 8, scale = [0.01, 1.0] }\n',
    "cmaes": '[strategy]\nkind = "cmaes"\npopsize = 16\nrestarts = "ipop"\n',
    "sweep": '[strategy]\nkind = "sweep"\nmethod = "random"\nbatch = 50\n',
}


def _toml(text):
    """A TOML fragment (a table, or a value written as TOML) as Python data."""
    return tomllib.loads(text)


def study_text(name, out, strategy="sweep", budget=200, cell="lstm", hidden=3, length=6, extra="",
               space=MASKED, keep_weights=20, strategy_text=None):
    """A study file written by ``study_toml``; ``space``, ``strategy_text`` and ``extra`` are TOML
    tables, ``keep_weights`` a number or a TOML value (``'"all"'``)."""
    doc = {"study": {"name": name, "out": Path(out).as_posix()},
           "cell": {"kind": cell, "hidden": hidden},
           "task": {"kind": "recall_first", "length": length},
           "eval": {"sequences": 24, "heldout": 24, "seed": 3}}
    doc.update(_toml(space))
    doc.update(_toml(strategy_text or STRATEGIES[strategy]))
    doc["budget"] = {"settings": budget}
    doc["store"] = {"keep_weights": _toml(f"v = {keep_weights}")["v"] if isinstance(keep_weights, str) else keep_weights}
    for table, body in _toml(extra).items():
        assert table not in doc, f"extra repeats the table [{table}]"
        doc[table] = body
    return study_toml(doc)


def write_study(tmp_path, name="s", **kw):
    out = Path(tmp_path) / "data" / name
    p = Path(tmp_path) / f"{name}.toml"
    p.write_text(study_text(name, out, **kw))
    return p, out


def one_line(capsys, rc, pattern):
    """The command failed with status 2 and one line ``lstmsearch: error: ...`` matching ``pattern``
    (no traceback); returns the line."""
    assert rc == 2, rc
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("lstmsearch: error: "), err
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]
