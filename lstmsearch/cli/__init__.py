"""The command line: the only code that parses arguments or prints. ``lstmsearch --help``."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
