"""The file's own style, sniffed from its text and token tree, so new text looks like the old."""

from __future__ import annotations

import re
from typing import NamedTuple

from xmlnest.engine.lossless.nodes import Document, Text
from xmlnest.engine.lossless.tree import indentation

_QUOTE = re.compile("=[ \t\r\n]*(['\"])")


class Style(NamedTuple):
    """How the file writes XML, so new text looks like the old."""

    newline: str
    quote: str
    indent_unit: str
    pretty: bool  # elements sit on their own lines


def sniff_style(tree: Document, text: str) -> Style:
    """Guess newline, quote character and indent unit from the file itself."""
    newline = "\r\n" if "\r\n" in text else "\n"
    double, single = _quotes(text)
    quote = '"' if double > single else "'"
    unit = "  "
    pretty = False
    for child in tree.root.children:
        if isinstance(child, Text) and "\n" in child.raw:
            pretty = True
            indent = indentation(child.raw)
            if indent:
                unit = "\t" if "\t" in indent else indent
                break
    return Style(newline=newline, quote=quote, indent_unit=unit, pretty=pretty)


def _quotes(text: str) -> tuple[int, int]:
    """How many ``="`` and ``='`` the text holds, blanks after the ``=`` allowed. (Where
    no ``=`` is followed by a blank, as in nearly every file, ``str.count`` says it.)"""
    if any(blank in text for blank in _BLANK_AFTER_EQUALS):
        quotes = _QUOTE.findall(text)
        double = quotes.count('"')
        return double, len(quotes) - double
    return text.count('="'), text.count("='")


_BLANK_AFTER_EQUALS = ("= ", "=\t", "=\n", "=\r")
