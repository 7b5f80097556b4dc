"""Sphinx configuration of the lstmsearch documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (needs ``pip install -e ".[docs]"``).
Pages are Markdown (myst-parser); the API reference comes from the docstrings (autodoc +
napoleon, numpydoc sections); the command-line reference from ``lstmsearch.cli.build_parser``
(sphinx-argparse).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

project = "lstmsearch"
author = "the lstmsearch authors"
copyright = "the lstmsearch authors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 4

napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"

html_theme = "alabaster"
html_title = "lstmsearch"


# argparse help strings are plain text, not reStructuredText ("|err| < tol", "studies/*.toml"):
# sphinx-argparse parses each one as RST, so escape the characters that RST would read as markup.
import sphinxarg.ext as _argext  # noqa: E402

_render_list = _argext.render_list
_RST_SPECIAL = "\\|*`_"


def _plain_text(text):
    for ch in _RST_SPECIAL:
        text = text.replace(ch, "\\" + ch)
    return text


def _render_plain_list(items, markdown_help, settings=None):
    items = [_plain_text(i) if isinstance(i, str) else i for i in items]
    return _render_list(items, markdown_help, settings)


_argext.render_list = _render_plain_list
