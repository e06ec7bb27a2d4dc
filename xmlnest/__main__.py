"""`python -m xmlnest` runs the command-line interface."""

from xmlnest.cli import entry

entry()
