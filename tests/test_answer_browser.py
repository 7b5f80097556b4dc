"""The answer page's HTML form (docs/answer_page.html, written by docs/make_answer_page.py) as a
reader sees it: opened in headless Chromium (Debian's package, installed here when missing), its
layout read from the DOM and its screenshot checked where the DOM says the answer table and the
plots are -- the table near the top of the first screen, each plot loaded and drawn (coloured
pixels where the image is), the margins blank."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "answer_page.html"
WIDTH, HEIGHT = 1400, 2400
#: What Chromium needs on a machine with no display and a closed network: no sandbox (root), no
#: GPU, none of its background connections, a fresh profile per run.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
         f"--window-size={WIDTH},{HEIGHT}"]

#: Run in the page after load: where the answer table and the plots are, in CSS pixels of the
#: viewport (device scale 1: screenshot pixels), written into the DOM for --dump-dom.
LAYOUT_SCRIPT = """<script>
window.addEventListener('load', () => {
  const box = e => { const r = e.getBoundingClientRect();
                     return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
  const t = document.getElementById('answer');
  const out = {table: t ? box(t) : null, rows: t ? t.rows.length : 0,
               first_cells: t ? Array.from(t.rows).map(r => r.cells[0].textContent.trim()) : [],
               images: Array.from(document.images).map(i => Object.assign(box(i),
                       {width: i.naturalWidth, alt: i.alt})),
               h1: box(document.querySelector('h1'))};
  const pre = document.createElement('pre'); pre.id = 'layout'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    """Chromium's path; installed with apt-get (Debian package ``chromium``) when missing. Skipped
    only where apt-get itself is not available."""
    for exe in (shutil.which("chromium"), "/usr/bin/chromium"):
        if exe and Path(exe).exists():
            return exe
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("Chromium is not installed and apt-get is not available to install it (Debian package chromium)")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(sudo + [apt, "install", "-y", "-q", "chromium"], env=env, capture_output=True, text=True,
                       timeout=1200)
    if r.returncode != 0:  # an old package list: update it once and try again
        subprocess.run(sudo + [apt, "update", "-q"], env=env, capture_output=True, timeout=600)
        r = subprocess.run(sudo + [apt, "install", "-y", "-q", "chromium"], env=env, capture_output=True,
                           text=True, timeout=1200)
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    assert r.returncode == 0 and Path(exe).exists(), f"apt-get install chromium failed:\n{r.stderr[-3000:]}"
    return exe


def run_chromium(exe, tmp: Path, page: Path, *what) -> subprocess.CompletedProcess:
    profile = tmp / f"profile{len(list(tmp.glob('profile*')))}"
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *what, page.as_uri()], capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """(layout dict from the DOM, screenshot (HEIGHT, WIDTH, 3) floats in [0, 1])."""
    if not PAGE.is_file():
        pytest.fail("docs/answer_page.html is missing: run python docs/make_answer_page.py --from-page")
    exe = chromium()
    tmp = tmp_path_factory.mktemp("browser")
    page = tmp / "answer_page.html"
    page.write_text(PAGE.read_text().replace("</body>", LAYOUT_SCRIPT + "</body>"))
    dom = run_chromium(exe, tmp, page, "--dump-dom").stdout
    m = re.search(r'<pre id="layout">(.*?)</pre>', dom, re.S)
    assert m, dom[-2000:]
    layout = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    shot = tmp / "shot.png"
    run_chromium(exe, tmp, page, f"--screenshot={shot}")
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (HEIGHT, WIDTH), img.shape
    return layout, img


def ink(img, box) -> np.ndarray:
    """The screenshot inside a DOM box (left, top, right, bottom in CSS pixels), clipped to the window."""
    x0, y0 = max(int(box["left"]), 0), max(int(box["top"]), 0)
    x1, y1 = min(int(box["right"]), WIDTH), min(int(box["bottom"]), HEIGHT)
    assert x1 - x0 > 50 and y1 - y0 > 50, box
    return img[y0:y1, x0:x1]


def test_the_answer_table_leads_the_page_and_is_drawn(seen):
    layout, img = seen
    t = layout["table"]
    assert t is not None, "no table with id answer"
    # the answer first: the title and one paragraph above it, the table on the first screen
    assert layout["h1"]["top"] < t["top"] < 900, t
    assert layout["rows"] == 9
    assert layout["first_cells"][1:] == ["LSTM", "GRU", "MGU", "tanh RNN", "ReLU RNN", "minGRU", "minLSTM", "IndRNN"]
    region = ink(img, t)
    dark = (region.mean(axis=2) < 0.6).mean()
    assert 0.02 < dark < 0.5, dark  # text and borders, not a blank or black box
    rows_with_ink = (region.mean(axis=2) < 0.6).any(axis=1).mean()
    assert rows_with_ink > 0.5, rows_with_ink  # drawn all the way down, not only its header
    margin = img[int(t["top"]):int(t["bottom"]), :max(int(t["left"]) - 5, 1)]
    assert margin.size and (margin.mean(axis=2) > 0.97).mean() > 0.99  # the page's left margin is blank


def test_the_plots_are_loaded_and_drawn_below_the_table(seen):
    layout, img = seen
    images = layout["images"]
    assert len(images) == 2, images
    for im in images:
        assert im["width"] > 100, im  # the data: URI decoded into a picture
        assert layout["table"]["bottom"] <= im["top"] and im["bottom"] <= HEIGHT, (im, layout["table"])
        region = ink(img, im)
        coloured = (region.max(axis=2) - region.min(axis=2) > 0.3).mean()
        dark = (region.mean(axis=2) < 0.5).mean()
        assert coloured > 0.005 and dark > 0.005, (im["alt"], coloured, dark)  # lines, bars, labels


def test_the_html_form_is_the_markdown_page():
    """docs/answer_page.html is docs/answer_page.md rendered by make_answer_page.to_html, its plots inlined."""
    pytest.importorskip("markdown_it", reason="markdown-it-py (pip install -e .[docs])")
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import make_answer_page
    finally:
        sys.path.remove(str(ROOT / "docs"))
    md = (ROOT / "docs" / "answer_page.md").read_text()
    assert PAGE.read_text() == make_answer_page.to_html(md, ROOT / "docs"), \
        "docs/answer_page.html is stale: run python docs/make_answer_page.py --from-page"
