"""Study files are validated before any work: one clear error naming the file and the key."""

import subprocess
import sys
from pathlib import Path

import pytest

from lstmsearch.config import load_study, parse_study
from lstmsearch.errors import ConfigError

from search_helpers import study_text

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["quickstart", "recall_first_lstm32", "recall_first_gru32", "recall_first_rnn32",
                                  "recall_first_mgu32", "recall_first_mingru32", "recall_first_minlstm32",
                                  "recall_first_indrnn32"])
def test_shipped_studies_validate(name):
    cfg = load_study(ROOT / "studies" / f"{name}.toml")
    assert cfg.name == name
    assert cfg.cell.inputs == 1 and cfg.cell.outputs == 1
    # scored at n = 20 and 21: no answer that holds only at even n (or at one n) scores well
    assert cfg.task.name == "recall_first" and cfg.task.lengths == (20, 21)
    assert cfg.space_obj.dim <= 16  # Optuna sees a small z, never thousands of weights
    if name != "quickstart":
        assert cfg.cell.hidden == 32


def _err(text, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_study(text, source="bad.toml")
    msg = str(info.value)
    assert msg.startswith("bad.toml: ") and "\n" not in msg
    return msg


def test_errors_name_file_and_key(tmp_path):
    good = study_text("s", tmp_path)
    parse_study(good, source="good.toml")  # the base text is valid
    _err(good.replace("hidden = 3", "hiden = 3"), r"\[cell\] has no key 'hiden'")
    _err(good.replace("hidden = 3", 'hidden = "3"'), r"\[cell\] hidden must be an integer")
    _err(good.replace("hidden = 3", "hidden = 0"), r"\[cell\] hidden must be > 0")
    _err(good.replace("hidden = 3", "hidden = 100000"), r"\[cell\] hidden must be at most")
    _err(good.replace("sequences = 24", "sequences = -1"), r"\[eval\] sequences must be > 0")
    _err(good.replace("length = 6", "length = 0"), r"\[task\] length")
    _err(good.replace('kind = "lstm"', 'kind = "lstn"'), r"\[cell\].*unknown cell kind 'lstn'")
    _err(good.replace("settings = 200", "settings = 0"), r"\[budget\] settings must be > 0")
    _err(good + "\n[extra]\nx = 1\n", r"\[extra\] is not a known table")
    _err(good.replace("[eval]", "[eval]\nreadout = \"maybe\""), r"\[eval\] readout must be one of")
    _err(good.replace('tie = "gate"\nlow = -3.0', 'tie = "gate"\ngate = "q"\nlow = -3.0'),
         r"\[space\].*gate 'q': a lstm cell has gates i, f, g, o")
    _err(good.replace("low = -3.0\nhigh = 3.0", "low = 3.0\nhigh = -3.0"), r"needs low < high")
    _err(good.replace('method = "random"', 'method = "grid"'), r"\[strategy\] method must be one of")
    _err(good.replace("[budget]\nsettings = 200", ""), r"\[budget\] needs settings")
    _err("[study\nname=1", r"not valid TOML")


def test_optuna_refuses_huge_z(tmp_path):
    text = study_text("s", tmp_path, strategy="optuna", space='[space]\nkind = "full"\nscale = 1.0\n', hidden=8)
    _err(text, r"optuna over a space of dimension 352")


def test_cli_reports_one_line_without_traceback(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text(study_text("s", tmp_path).replace("hidden = 3", "hidden = -2"))
    r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", "run", str(p)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "hidden must be > 0" in r.stderr and str(p) in r.stderr


def test_a_study_config_is_frozen_and_with_out_gives_a_new_one(tmp_path):
    import dataclasses

    from lstmsearch.run.loop import study_config

    cfg = load_study(ROOT / "studies" / "quickstart.toml")
    for name, value in (("out", tmp_path), ("space_obj", None), ("strategy", {}), ("text", "")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cfg, name, value)
    out0, ident = cfg.out, cfg.identity()
    moved = cfg.with_out(tmp_path / "elsewhere")
    assert moved is not cfg and moved.out == tmp_path / "elsewhere" and cfg.out == out0
    assert moved.identity() == ident and moved.text == cfg.text and moved.space_obj is cfg.space_obj
    assert dataclasses.replace(moved, out=out0) == cfg
    # the overrides of a run: a new config, the same study; the caller's config is left alone
    run_cfg = study_config(cfg, budget=7, backend="cpu", out=tmp_path / "o")
    assert run_cfg.out == tmp_path / "o" and run_cfg.budget_settings == 7 and run_cfg.identity() == ident
    assert cfg.out == out0 and cfg.budget_settings != 7
    assert study_config(ROOT / "studies" / "quickstart.toml", out=tmp_path / "p").out == tmp_path / "p"
    over = parse_study(cfg.text, overrides={"study.out": str(tmp_path / "q"), "budget.settings": 3})
    assert over.out == tmp_path / "q" and over.budget_settings == 3 and over.identity() == ident
    # a study opened from its folder: the folder is its out, the identity the manifest's
    import json

    from lstmsearch.query import open_study

    folder = ROOT / "data" / "examples" / "recall_first_lstm32"
    opened, _ = open_study(folder)
    assert opened.out == folder
    assert opened.identity() == json.loads((folder / "manifest.json").read_text())["identity"]
