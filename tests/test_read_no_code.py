"""Reading never runs study code: with keep_weights = 0 (every row rebuilt from its keys) and with
kept weights (``top`` lists more rows than are kept), ``top``, ``show``, ``query``, ``report``,
``reproduce`` and ``export`` import nothing from the study folder -- a row whose setting a template
space would rebuild is shown without it (a note naming ``--allow-code``) or refused in one line
naming the flag; with ``--allow-code`` it is rebuilt. And the guide's SQL over the kept weights runs
inside the ``--sql`` sandbox."""

import re

import pytest

from lstmsearch.cli.main import main
from lstmsearch.query import allow_study_code

from search_helpers import write_study
from test_hold_up import TEMPLATE  # writes imported.txt beside itself when imported


@pytest.fixture(autouse=True)
def _code_off():
    allow_study_code(False)
    yield
    allow_study_code(False)


def _study(tmp_path, keep):
    (tmp_path / "tpl.py").write_text(TEMPLATE)
    path, out = write_study(tmp_path, "t", strategy="sweep", budget=60, keep_weights=keep,
                            space='[space]\nkind = "template"\nfunction = "tpl.py:make"\ndim = 2\n')
    assert main(["run", str(path), "--quiet"]) == 0
    marker = tmp_path / "imported.txt"
    assert marker.exists()  # the run imports it (and says so)
    marker.unlink()
    return out, marker


def _reads(out, tmp_path):
    return [["top", str(out), "-k", "20"], ["show", str(out), "best"],
            ["query", str(out), "--where", "nmse >= 0"],
            ["query", str(out), "--sql", "SELECT count(*) AS n FROM rows"],
            ["reproduce", str(out), "best", "--factors", "1", "--sequences", "8"],
            ["export", str(out), "best", "--format", "npz", "-o", str(tmp_path / "x.npz")],
            ["report", str(out), "--out", str(tmp_path / "rep"), "--no-plots", "--top", "5", "--lengths", "1",
             "--sequences", "8"]]


@pytest.mark.parametrize("keep", [0, 3])
def test_reading_imports_nothing_from_the_study_folder(tmp_path, capsys, keep):
    out, marker = _study(tmp_path, keep)
    for argv in _reads(out, tmp_path):
        capsys.readouterr()
        rc = main(argv)
        err = capsys.readouterr().err
        assert not marker.exists(), argv
        assert "Traceback" not in err, (argv, err)
        if argv[0] in ("top", "show", "query", "report"):  # shown without those settings
            assert rc == 0, (argv, rc, err)
        elif rc == 2:  # a command that needs the setting itself: one line naming the flag
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert len(lines) == 1 and "--allow-code" in lines[0], (argv, err)
        else:
            assert rc == 0, (argv, rc, err)
    if not keep:  # report: the page is written without the best setting, the note names the flag
        capsys.readouterr()
        assert main(_reads(out, tmp_path)[-1] + ["--force"]) == 0
        said = capsys.readouterr().out
        assert "--allow-code" in said and "best row" in said, said
        page = (tmp_path / "rep" / "report.md").read_text()
        assert "--allow-code" in page and "Study t" in page
        assert not marker.exists()
    # top lists 20 rows, more than are kept: those are shown, the note names the flag
    capsys.readouterr()
    assert main(["top", str(out), "-k", "20"]) == 0
    assert re.search(r"--allow-code", capsys.readouterr().err)
    assert not marker.exists()


def test_allow_code_rebuilds_the_rows(tmp_path, capsys):
    out, marker = _study(tmp_path, 0)
    capsys.readouterr()
    assert main(["show", str(out), "best"]) == 0
    assert "weights      not shown" in capsys.readouterr().out and not marker.exists()
    assert main(["show", str(out), "best", "--allow-code"]) == 0
    assert marker.exists()
    assert main(["export", str(out), "best", "--format", "npz", "-o", str(tmp_path / "y.npz"), "--allow-code"]) == 0


def test_the_guides_sql_over_the_kept_weights_runs_in_the_sandbox(tmp_path, capsys):
    """docs/guide.md's advice for the kept weights in --sql, run exactly as written there."""
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "guide.md").read_text()
    m = re.search(r"--sql \"(SELECT [^\"]*JOIN best[^\"]*)\"", guide)
    assert m, "the guide shows a --sql query joining the table best"
    (tmp_path / "tpl.py").write_text(TEMPLATE)
    path, out = write_study(tmp_path, "g", strategy="sweep", budget=60, keep_weights=5)
    assert main(["run", str(path), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["query", str(out), "--sql", m.group(1)]) == 0, capsys.readouterr().err
    said = capsys.readouterr().out
    assert said.count("\n") >= 5, said
