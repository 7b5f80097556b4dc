"""Small study files for the search/store/study tests (tiny cells, short sequences)."""

from pathlib import Path

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


def study_text(name, out, strategy="sweep", budget=200, cell="lstm", hidden=3, length=6, extra="",
               space=MASKED, keep_weights=20, strategy_text=None):
    return f"""
[study]
name = "{name}"
out = "{Path(out).as_posix()}"
[cell]
kind = "{cell}"
hidden = {hidden}
[task]
kind = "recall_first"
length = {length}
[eval]
sequences = 24
heldout = 24
seed = 3
{space}
{strategy_text or STRATEGIES[strategy]}
[budget]
settings = {budget}
[store]
keep_weights = {keep_weights}
{extra}
"""


def write_study(tmp_path, name="s", **kw):
    out = Path(tmp_path) / "data" / name
    p = Path(tmp_path) / f"{name}.toml"
    p.write_text(study_text(name, out, **kw))
    return p, out
