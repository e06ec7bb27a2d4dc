"""The token tree's nodes: attribute, text, other markup, element, document, each as written.

Every byte of a source is kept in some node. An element nothing touched (``clean``) still
equals its source slice ``offset:end``; attributes are split out of a start tag only when
something asks for them. Also the lexical pieces the tokenizer (``tree.py``) shares.
"""

from __future__ import annotations

import re

# XML's white space is these four characters only; Python's \s also matches U+1680 and
# others that XML allows inside names, which would split a valid name in two.
WS = r"[ \t\r\n]"
NAME = r"[^ \t\r\n/>=\"'<]+"
ATTR = WS + r"+" + NAME + WS + r"*=" + WS + r"*(?:\"[^\"]*\"|'[^']*')"
_ATTR_RE = re.compile(
    r"(?P<ws>" + WS + r"+)(?P<name>" + NAME + r")(?P<eq>" + WS + r"*=" + WS + r"*)"
    r"(?P<val>\"[^\"]*\"|'[^']*')"
)


class Attr:
    """One attribute exactly as written: leading space, name, ``=`` with spaces, quoted value.

    (Plain slotted classes, not dataclasses: these are created at import time of every
    run, and a dataclass costs about a millisecond to define.)
    """

    __slots__ = ("ws", "name", "eq", "quote", "raw_value")

    def __init__(self, ws: str, name: str, eq: str, quote: str, raw_value: str) -> None:
        self.ws = ws
        self.name = name
        self.eq = eq
        self.quote = quote
        self.raw_value = raw_value  # as written between the quotes, entities not expanded

    def render(self) -> str:
        return f"{self.ws}{self.name}{self.eq}{self.quote}{self.raw_value}{self.quote}"


class Text:
    """Character data (possibly whitespace only), entity references kept as written."""

    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw


class Other:
    """A comment, processing instruction or CDATA section, or a run of sibling elements
    no edit reaches (see ``tree.parse``), kept verbatim."""

    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw


class Element:
    """An element: its start tag's parts, its children, its end tag as written."""

    __slots__ = (
        "name",
        "raw_attrs",
        "_attrs",
        "tag_ws",
        "self_closing",
        "children",
        "end_tag",
        "offset",
        "start_end",
        "end",
        "clean",
    )

    def __init__(
        self,
        name: str,
        attrs: list[Attr] | None,
        tag_ws: str,
        self_closing: bool,
        *,
        raw_attrs: str = "",
        offset: int = 0,
        start_end: int = 0,
        end: int = 0,
        clean: bool = False,
    ) -> None:
        self.name = name  # qualified name as written, e.g. ``cpu`` or ``qemu:commandline``
        self.raw_attrs = raw_attrs  # the attributes as written, split only on demand
        self._attrs = attrs
        self.tag_ws = tag_ws  # whitespace before ``>`` or ``/>``
        self.self_closing = self_closing
        self.children: list[Text | Other | Element] = []
        self.end_tag = ""  # ``</cpu>`` as written; empty when self-closing
        self.offset = offset  # where the start tag began in the source text
        self.start_end = start_end  # where the start tag ended
        self.end = end  # where the element (its end tag) ended
        self.clean = clean  # True while the source slice offset:end is still its text

    @property
    def attrs(self) -> list[Attr]:
        if self._attrs is None:
            self._attrs = [
                Attr(m["ws"], m["name"], m["eq"], m["val"][0], m["val"][1:-1])
                for m in _ATTR_RE.finditer(self.raw_attrs)
            ]
        return self._attrs

    @attrs.setter
    def attrs(self, value: list[Attr]) -> None:
        self._attrs = value

    @property
    def local_name(self) -> str:
        return self.name.rpartition(":")[2]

    def attr(self, name: str) -> Attr | None:
        for a in self.attrs:
            if a.name == name:
                return a
        return None

    def element_children(self) -> list[Element]:
        return [c for c in self.children if isinstance(c, Element)]

    def render_start(self) -> str:
        parsed = self._attrs
        attrs = self.raw_attrs if parsed is None else "".join(a.render() for a in parsed)
        return f"<{self.name}{attrs}{self.tag_ws}{'/>' if self.self_closing else '>'}"


class Document:
    """Prolog (declaration, comments, PIs, space before the root), root, epilog."""

    __slots__ = ("prolog", "root", "epilog", "text", "parsed", "parents")

    def __init__(
        self,
        prolog: str,
        root: Element,
        epilog: str,
        text: str = "",
        parsed: list[Element | None] | None = None,
        parents: dict[int, Element] | None = None,
    ) -> None:
        self.prolog = prolog
        self.root = root
        self.epilog = epilog
        self.text = text  # the source, for copying clean elements
        self.parsed = parsed or []  # elements as parsed, in document order (None: skimmed)
        self.parents = parents or {}  # id(element) -> parent, as parsed
