"""A lossless concrete syntax tree of an XML document's text.

Every byte of the source is kept in some node, so ``serialize(parse(text)) == text``
for any document lxml accepted. Only nodes an edit touches are regenerated; the rest is
copied verbatim. This module knows nothing about libvirt or nesting.
"""

from __future__ import annotations

import re

# XML's white space is these four characters only; Python's \s also matches U+1680 and
# others that XML allows inside names, which would split a valid name in two.
_S = r"[ \t\r\n]"
_NAME = r"[^ \t\r\n/>=\"'<]+"
_ATTR_RE = re.compile(
    r"(?P<ws>" + _S + r"+)(?P<name>" + _NAME + r")(?P<eq>" + _S + r"*=" + _S + r"*)"
    r"(?P<val>\"[^\"]*\"|'[^']*')"
)
_START_RE = re.compile(r"<(?P<name>" + _NAME + r")")
_TAIL_RE = re.compile(r"(?P<ws>" + _S + r"*)(?P<close>/?>)")
_END_RE = re.compile(r"</(?P<name>" + _NAME + r")" + _S + r"*>")


class CstError(ValueError):
    """The text is not in a form this tokenizer understands (lxml should have said so first)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


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
    """A comment, processing instruction or CDATA section, kept verbatim."""

    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw


class Element:
    """An element: its start tag's parts, its children, its end tag as written."""

    __slots__ = (
        "name",
        "attrs",
        "tag_ws",
        "self_closing",
        "children",
        "end_tag",
        "offset",
        "start_end",
        "end",
    )

    def __init__(
        self,
        name: str,
        attrs: list[Attr],
        tag_ws: str,
        self_closing: bool,
        *,
        offset: int = 0,
        start_end: int = 0,
        end: int = 0,
    ) -> None:
        self.name = name  # qualified name as written, e.g. ``cpu`` or ``qemu:commandline``
        self.attrs = attrs
        self.tag_ws = tag_ws  # whitespace before ``>`` or ``/>``
        self.self_closing = self_closing
        self.children: list[Text | Other | Element] = []
        self.end_tag = ""  # ``</cpu>`` as written; empty when self-closing
        self.offset = offset  # where the start tag began in the source text
        self.start_end = start_end  # where the start tag ended
        self.end = end  # where the element (its end tag) ended

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
        attrs = "".join(a.render() for a in self.attrs)
        return f"<{self.name}{attrs}{self.tag_ws}{'/>' if self.self_closing else '>'}"


class Document:
    """Prolog (declaration, comments, PIs, space before the root), root, epilog."""

    __slots__ = ("prolog", "root", "epilog")

    def __init__(self, prolog: str, root: Element, epilog: str) -> None:
        self.prolog = prolog
        self.root = root
        self.epilog = epilog

    def elements(self) -> list[Element]:
        """All elements in document order (the same order as lxml's ``iter()``)."""
        out: list[Element] = []
        stack = [self.root]
        while stack:
            el = stack.pop()
            out.append(el)
            stack.extend(reversed(el.element_children()))
        return out


def _skip_markup(text: str, pos: int) -> int | None:
    """If a comment, PI, CDATA or declaration starts at ``pos``, return its end offset."""
    for opener, closer in (("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>")):
        if text.startswith(opener, pos):
            end = text.find(closer, pos + len(opener))
            if end < 0:
                raise CstError(f"unterminated {opener!r}", pos)
            return end + len(closer)
    return None


def parse(text: str) -> Document:
    """Tokenize ``text`` into a lossless tree. Iterative: deep documents cannot overflow."""
    pos = 0
    n = len(text)
    # Prolog: until the first start tag.
    while True:
        lt = text.find("<", pos)
        if lt < 0:
            raise CstError("no root element", pos)
        end = _skip_markup(text, lt)
        if end is not None:
            pos = end
            continue
        if text.startswith("<!", lt):
            raise CstError("a DOCTYPE or other declaration", lt)
        break
    prolog = text[:lt]
    pos = lt
    root: Element | None = None
    stack: list[Element] = []
    while pos < n:
        if root is not None and not stack:
            break
        lt = text.find("<", pos)
        if lt < 0:
            lt = n
        if lt > pos:
            if stack:
                stack[-1].children.append(Text(text[pos:lt]))
            pos = lt
            continue
        end = _skip_markup(text, pos)
        if end is not None:
            stack[-1].children.append(Other(text[pos:end]))
            pos = end
            continue
        if text.startswith("</", pos):
            m = _END_RE.match(text, pos)
            if not m or not stack or stack[-1].name != m.group("name"):
                raise CstError("unexpected end tag", pos)
            closed = stack.pop()
            closed.end_tag = m.group(0)
            closed.end = pos = m.end()
            continue
        el, pos = _start_tag(text, pos)
        if stack:
            stack[-1].children.append(el)
        else:
            root = el
        if not el.self_closing:
            stack.append(el)
    if root is None or stack:
        raise CstError("unclosed element", pos)
    return Document(prolog=prolog, root=root, epilog=text[pos:])


def _start_tag(text: str, pos: int) -> tuple[Element, int]:
    m = _START_RE.match(text, pos)
    if not m:
        raise CstError("bad start tag", pos)
    name = m.group("name")
    cur = m.end()
    attrs: list[Attr] = []
    while True:
        am = _ATTR_RE.match(text, cur)
        if not am:
            break
        val = am.group("val")
        attrs.append(Attr(am.group("ws"), am.group("name"), am.group("eq"), val[0], val[1:-1]))
        cur = am.end()
    tm = _TAIL_RE.match(text, cur)
    if not tm:
        raise CstError("bad start tag", cur)
    el = Element(
        name=name,
        attrs=attrs,
        tag_ws=tm.group("ws"),
        self_closing=tm.group("close") == "/>",
        offset=pos,
        start_end=tm.end(),
        end=tm.end(),
    )
    return el, tm.end()


def serialize(doc: Document) -> str:
    """Text of the whole document; byte-for-byte the source for an unedited tree."""
    out: list[str] = [doc.prolog]
    _emit(doc.root, out)
    out.append(doc.epilog)
    return "".join(out)


def _emit(root: Element, out: list[str]) -> None:
    # Iterative to stay safe on deep documents.
    stack: list[Element | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        out.append(item.render_start())
        if item.self_closing:
            continue
        stack.append(item.end_tag)
        for child in reversed(item.children):
            if isinstance(child, Element):
                stack.append(child)
            else:
                stack.append(child.raw)


def find_declaration(text: str) -> int | None:
    """Offset of a ``<!DOCTYPE``-like declaration in the prolog, or ``None``.

    Comments and PIs in the prolog are skipped, so a DOCTYPE mentioned inside a comment
    does not count. Declarations can only stand in the prolog in well-formed XML.
    """
    pos = 0
    while True:
        lt = text.find("<", pos)
        if lt < 0:
            return None
        try:
            end = _skip_markup(text, lt)
        except CstError:
            return None  # unterminated comment: lxml reports it with a line
        if end is not None:
            pos = end
            continue
        return lt if text.startswith("<!", lt) else None
