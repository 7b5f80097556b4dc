"""``lstmsearch report``, ``explain STUDY ROW`` and ``run --plots`` on tiny studies run here.

The numbers on the page are checked against the Parquet rows read independently with
pyarrow, the pruned table against the row's setting from ``reproduction.row_setting``, and
the PNGs by walking their chunks (signature, IHDR, CRCs, IEND) without matplotlib.
"""

import base64
import re
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lstmsearch.config import load_study

from lstmsearch.analysis.explain import weight_name
from lstmsearch.cli import main
from lstmsearch.reproduction import row_setting

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = (1, 2, 10)


def png_ok(data: bytes) -> bool:
    """A complete PNG: signature, IHDR with a positive size first, every CRC right, IEND last."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    pos, kinds = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) != crc:
            return False
        if not kinds:
            w, h = struct.unpack(">II", body[:8])
            if kind != b"IHDR" or w == 0 or h == 0:
                return False
        kinds.append(kind)
        pos += 12 + n
    return kinds[-1] == b"IEND" and b"IDAT" in kinds


def quickstart_copy(tmp, name, budget, extra="", cell=None):
    """studies/quickstart.toml with another name, a result folder under tmp, a small budget and
    64 + 64 sequences (it finds nmse ~1e-5 after about 7,000 settings)."""
    text = (ROOT / "studies" / "quickstart.toml").read_text()
    text = re.sub(r"(?m)^(sequences|heldout) = 256", r"\1 = 64", text)
    text = text.replace('name = "quickstart"', f'name = "{name}"\nout = "{(tmp / "data" / name).as_posix()}"')
    text = text.replace("settings = 32768", f"settings = {budget}") + extra
    if cell:
        text = text.replace('kind = "lstm"', f'kind = "{cell}"')
    p = tmp / f"{name}.toml"
    p.write_text(text)
    return p


def parquet_nmse(folder):
    t = pq.read_table(Path(folder) / "rows", columns=["row", "nmse"])
    rows, nmse = t.column("row").to_numpy(), t.column("nmse").to_numpy()
    i = np.lexsort((rows, nmse))[0]
    return int(rows[i]), float(nmse[i]), nmse


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """qs: run with --plots; qg (a GRU) with [store] plots = true in its file."""
    tmp = tmp_path_factory.mktemp("report")
    a = quickstart_copy(tmp, "qs", 8192)
    b = quickstart_copy(tmp, "qg", 512, extra="\n[store]\nplots = true\n", cell="gru")
    assert main(["run", str(a), "--quiet", "--plots"]) == 0
    assert main(["run", str(b), "--quiet"]) == 0
    return tmp


def test_run_plots_write_pngs(studies, capsys):
    pytest.importorskip("matplotlib")
    for name in ("qs", "qg"):
        for png in ("best_so_far.png", "nmse_hist.png"):
            assert png_ok((studies / "data" / name / "plots" / png).read_bytes()), (name, png)


def test_run_plots_key_is_checked_before_work(tmp_path, capsys):
    bad = quickstart_copy(tmp_path, "bad", 256, extra='\n[store]\nplots = "yes"\n')
    assert main(["run", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "[store] plots must be true or false" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data" / "bad").exists()


def _generic(name):
    """A weight name with the unit names (memory, flag, u3, ...) left out: i[.] <- h[.]."""
    return re.sub(r"\[\w+\]", "[.]", name)


def _table(text, first_header):
    """Rows (lists of cells) of the Markdown table whose header starts with ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_header} |"))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split(" | ")])
    return lines[start], rows


def test_report_markdown_has_the_studys_numbers_and_plots(studies, capsys):
    pytest.importorskip("matplotlib")
    data, out = studies / "data", studies / "rep"
    assert main(["report", "qs", "--data", str(data), "--out", str(out), "--top", "3",
                 "--lengths", ",".join(map(str, LENGTHS)), "--sequences", "32"]) == 0
    assert f"wrote {out / 'report.md'}" in capsys.readouterr().out
    text = (out / "report.md").read_text()
    row, best, nmse = parquet_nmse(data / "qs")
    _, studies_rows = _table(text, "study")
    (r,) = studies_rows
    assert r[0] == "qs" and r[1] == "lstm" and r[2] == "8" and r[6] == str(nmse.size)
    assert r[7] == f"{best:.4g}" and r[8] == str(row) and r[9] == f"{np.median(nmse):.4g}"
    assert r[10].startswith(f"{np.mean(nmse < 1e-5):.2%}") and r[11] == ("yes" if best < 1e-5 else "no")
    # the top rows, in order, as read from the Parquet
    _, top = _table(text, "row")
    rows_pq = pq.read_table(data / "qs" / "rows", columns=["row"]).column("row").to_numpy()
    order = np.lexsort((rows_pq, nmse))
    assert [int(t[0]) for t in top] == [int(rows_pq[i]) for i in order[:3]]
    # the length table has n, 2n, 10n for both readouts (n: the longest trained length, 21 for lengths [20, 21])
    head, lens = _table(text, "study | cell | row | readout")
    n = load_study(ROOT / "studies" / "quickstart.toml").task.length
    assert n == 21 and head.endswith(f"| nmse n={n} | nmse n={2 * n} | nmse n={10 * n} |")
    assert [x[3] for x in lens] == ["given", "refit"]
    # the pruned table lists weights of the best row's setting, by name
    cfg, _, setting = row_setting(data / "qs", row)
    _, pruned = _table(text, "index")
    assert pruned
    for idx, name, value in pruned:
        assert float(value) == pytest.approx(float(setting[int(idx)]), rel=1e-5)
        assert _generic(name) == _generic(weight_name(cfg.cell, int(idx)))
    for png in ("length.png", "qs-best_so_far.png", "qs-nmse_hist.png", "qs-traces.png"):
        assert f"]({png})" in text and png_ok((out / png).read_bytes()), png


def test_report_html_is_self_contained(studies, capsys):
    pytest.importorskip("matplotlib")
    data = studies / "data"
    assert main(["report", "qs", "--data", str(data), "--format", "html", "--top", "2",
                 "--lengths", "1,2", "--sequences", "16"]) == 0
    page = data / "reports" / "qs" / "report.html"
    text = page.read_text()
    _, best, _ = parquet_nmse(data / "qs")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert f"<td>{best:.4g}</td>" in text and "<th>best nmse</th>" in text
    images = re.findall(r'<img alt="[^"]*" src="([^"]+)"', text)
    assert len(images) == 4 and all(s.startswith("data:image/png;base64,") for s in images)
    assert all(png_ok(base64.b64decode(s.split(",", 1)[1])) for s in images)


def test_two_studies_give_a_comparison_table(studies, capsys):
    data, out = studies / "data", studies / "both"
    assert main(["report", "qs", "qg", "--data", str(data), "--out", str(out), "--no-plots", "--top", "1",
                 "--lengths", "1,2", "--sequences", "16"]) == 0
    text = (out / "report.md").read_text()
    _, rows = _table(text, "study")
    assert [r[0] for r in rows] == ["qs", "qg"] and [r[1] for r in rows] == ["lstm", "gru"]
    for r in rows:
        row, best, _ = parquet_nmse(data / r[0])
        assert r[7] == f"{best:.4g}" and r[8] == str(row)
        assert f"({r[0]})" in next(ln for ln in text.splitlines() if ln.startswith("Solved"))
    _, lens = _table(text, "study | cell | row | readout")
    assert [x[0] for x in lens] == ["qs", "qs", "qg", "qg"]
    assert "## Study qs" in text and "## Study qg" in text and not list(out.glob("*.png"))


def test_report_without_matplotlib_writes_the_tables(studies, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    out = studies / "noplots"
    assert main(["report", "qs", "--data", str(studies / "data"), "--out", str(out), "--top", "1",
                 "--lengths", "1", "--sequences", "16"]) == 0
    printed = capsys.readouterr().out
    text = (out / "report.md").read_text()
    skipped = [ln for ln in text.splitlines() if ln.startswith("plots skipped")]
    assert len(skipped) == 1 and "matplotlib" in skipped[0] and skipped[0] in printed
    assert "| index | weight | value |" in text and not list(out.glob("*.png"))


def test_bad_study_name_is_one_line(studies, capsys):
    assert main(["report", "qs", "nosuch", "--data", str(studies / "data"), "--out", str(studies / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmsearch: error: no study 'nosuch'") and len(err.strip().splitlines()) == 1
    assert not (studies / "x").exists()


def test_explain_study_row_names_the_rows_weights(studies, capsys):
    data = studies / "data"
    row, best, _ = parquet_nmse(data / "qs")
    assert main(["explain", "qs", str(row), "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"study qs row {row} (stored nmse {best:.6g}")
    # the study's own held-out sequences and the stored readout give the stored error back
    intact = float(re.search(r"intact nmse (\S+),", text).group(1))
    assert intact == pytest.approx(best, rel=0.01)
    cfg, _, setting = row_setting(data / "qs", row)
    kept = re.findall(r"^\s+(\d+)\s{2}(.+?)\s+(\S+)$", text.split("pruned to", 1)[1], flags=re.M)
    assert kept
    for idx, name, value in kept:
        assert float(value) == pytest.approx(float(setting[int(idx)]), rel=1e-5)
        assert _generic(name) == _generic(weight_name(cfg.cell, int(idx)))
    assert main(["explain", "qs", "--data", str(data)]) == 2
    assert "needs a ROW" in capsys.readouterr().err
