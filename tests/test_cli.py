"""The command line: help, the evaluate summary, one-line errors without traceback."""

import subprocess
import sys

import pytest

from lstmsearch.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "lstmsearch.cli", *args], capture_output=True, text=True)


def test_help_lists_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    assert "evaluate" in out.stdout and "layout" in out.stdout


def test_evaluate_prints_summary(capsys):
    rc = main(["evaluate", "--cell", "gru", "--hidden", "4", "--length", "6", "--n-settings", "50",
               "--sequences", "32", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    for word in ("best", "median", "solved", "finite", "cell-steps/s"):
        assert word in out
    assert "50 settings" in out


def test_layout(capsys):
    assert main(["layout", "--cell", "lstm", "--hidden", "2"]) == 0
    out = capsys.readouterr().out
    assert "weight_hh_l0  (8, 2)" in out and "D=43" in out


@pytest.mark.parametrize("args,message", [
    (["evaluate", "--cell", "lsmt"], "unknown cell kind 'lsmt'"),
    (["evaluate", "--hidden", "0"], "hidden must be a positive integer"),
    (["evaluate", "--task", "recall"], "unknown task 'recall'"),
    (["evaluate", "--length", "0"], "needs length >= 1"),
    (["evaluate", "--init", "uniform"], "positive finite scale"),
])
def test_user_errors_are_one_line(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("lstmsearch: error:")
    assert "Traceback" not in out.stderr
