"""Write docs/answer_page.md from a fresh ``lstmsearch report`` of the fourteen shipped H = 32 studies.

    python docs/make_answer_page.py            # runs the report (about 25 minutes on 2 cores)
    python docs/make_answer_page.py --page DIR/report.md   # from a report already written

The page is the report as the tool writes it, less its PNG plots and the *pruned form* tables of
each best setting (thousands of lines of weights for the blind studies), under a short header
that says how it was made. Nothing is edited by hand.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ["recall_first_lstm32", "recall_first_gru32", "recall_first_rnn32", "blind_lstm32", "blind_gru32",
           "blind_rnn32", "recall_first_mgu32", "recall_first_mingru32", "recall_first_minlstm32",
           "recall_first_indrnn32", "blind_mgu32", "blind_mingru32", "blind_minlstm32", "blind_indrnn32"]
COMMAND = f"lstmsearch report {' '.join(STUDIES)} --data data/examples --out /tmp/answer_page --force"

HEADER = f"""# The answer page of the shipped examples

This page is the output of `lstmsearch report` on the fourteen H = 32 studies shipped in `data/examples/`
(see [the canonical question](results.md) for how to read it), written by
`python docs/make_answer_page.py`, which runs

```bash
{COMMAND}
```

About 25 minutes on 2 shared cores (most of it the certificates; `--no-certificates` skips them).
The minGRU and minLSTM rows cannot be solved at every length by any setting (exact arithmetic:
[the theorem](theorems.md)); the IndRNN's are the best its searches found.
The copy below is that page less its PNG plots and the *pruned form* tables of each best setting
(several thousand lines of weights for the blind studies: `lstmsearch explain STUDY ROW --data
data/examples` prints them); "the pruned form below" reads "the pruned form of the full page".
Its nmse values come from the same 1,024 fresh sequences per length that every verdict uses, so
`lstmsearch reproduce STUDY ROW --data data/examples` prints the same digits.

"""


def page_from_report(text: str) -> str:
    """The report's Markdown, less images and pruned-form sections, its title in bold."""
    out, skip = [], False
    for line in text.splitlines():
        heading = re.match(r"(#+) ", line)
        if heading and skip and len(heading.group(1)) <= 3:
            skip = False
        if line.startswith("### Pruned form"):
            skip = True
        if skip or re.match(r"!\[.*\]\(.*\)$", line.strip()):
            continue
        if line.startswith("# "):
            line = f"**{line[2:]}**"
        out.append(line.replace("the pruned form below", "the pruned form of the full page"))
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", default=None, help="a report.md already written by the command above")
    args = ap.parse_args(argv)
    if args.page is None:
        out = Path(tempfile.mkdtemp()) / "answer_page"
        subprocess.run([sys.executable, "-m", "lstmsearch.cli", "report", *STUDIES, "--data", "data/examples",
                        "--out", str(out), "--force"], cwd=ROOT, check=True)
        args.page = out / "report.md"
    page = HEADER + page_from_report(Path(args.page).read_text())
    (ROOT / "docs" / "answer_page.md").write_text(page)
    print(f"wrote docs/answer_page.md ({len(page.splitlines())} lines)")


if __name__ == "__main__":
    main()
