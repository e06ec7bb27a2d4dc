"""Text <-> token tree: a lossless tokenizer of an XML document and its serializer.

Every byte of the source is kept in some node, so ``serialize(parse(text)) == text``
for any document lxml accepted. Only nodes an edit touches are regenerated; an element
nothing touched is copied from the source text as one slice. This module knows nothing
about libvirt or nesting.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from xmlnest.lossless.nodes import ATTR, NAME, WS, Document, Element, Other, Text

# One token per match: text, comment, CDATA, PI, end tag, start tag.
_TOKEN = re.compile(
    r"(?P<text>[^<]+)"
    r"|(?P<other><!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>)"
    r"|</(?P<end>" + NAME + r")" + WS + r"*>"
    r"|<(?P<start>" + NAME + r")(?P<attrs>(?:" + ATTR + r")*)(?P<ws>" + WS + r"*)"
    # An element holding only text is matched whole, end tag included: one token, not three.
    r"(?P<close>/>|>(?:(?P<text_only>[^<]*)(?P<leaf_end></(?P=start)" + WS + r"*>))?)",
    re.DOTALL,
)
_MARKUP = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|[^<]+", re.DOTALL)


class CstError(ValueError):
    """The text is not in a form this tokenizer understands (lxml should have said so first)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def _skip_prolog(text: str) -> int:
    """Offset just past the comments, PIs and text that open the document."""
    pos = 0
    while True:
        m = _MARKUP.match(text, pos)
        if m is None:
            return pos
        pos = m.end()


def _prolog_end(text: str) -> int:
    """Offset of the root start tag: past comments, PIs and space."""
    pos = _skip_prolog(text)
    if text.startswith("<!", pos):
        raise CstError("a DOCTYPE or other declaration", pos)
    if not text.startswith("<", pos):
        raise CstError("no root element", pos)
    return pos


def parse(text: str, expand: Collection[int] | None = None) -> Document:
    """Tokenize ``text`` into a lossless tree. Iterative: deep documents cannot overflow.

    With ``expand`` (element indexes in document order, the root being 0), an element
    whose subtree holds none of them is *skimmed*: kept as one clean slice, its inside
    not tokenized, its descendants ``None`` in ``parsed`` so indexes still line up. Only
    the elements on the way to an edit and their children are tokenized: edits reach a
    few small elements, and this spares tokenizing ``<devices>`` or a ``<numa>``.
    ``expand`` should hold the ancestors of those elements too: they are then tokenized
    without first being scanned to their end (which on a deep document would cost its
    depth times its size).
    """
    pos = _prolog_end(text)
    prolog = text[:pos]
    root: Element | None = None
    stack: list[Element] = []
    parsed: list[Element | None] = []
    parents: dict[int, Element] = {}
    new = Element.__new__
    done = False
    while not done:
        done = True
        for m in _TOKEN.finditer(text, pos):
            if m.start() != pos:
                raise CstError("unexpected markup", pos)
            kind = m.lastgroup
            end = m.end()
            if kind == "text" or kind == "other":
                if not stack:
                    raise CstError("text or markup outside the root", pos)
                stack[-1].children.append(Text(m.group()) if kind == "text" else Other(m.group()))
            elif kind == "end":
                if not stack or stack[-1].name != m.group("end"):
                    raise CstError("unexpected end tag", pos)
                closed = stack.pop()
                closed.end_tag = m.group()
                closed.end = end
                if not stack:
                    pos = end
                    break
            else:
                if root is not None and not stack:
                    raise CstError("a second root element", pos)
                # Set the slots directly: this runs once per element of every edited file.
                el = new(Element)
                el.name, el.raw_attrs, el.tag_ws, close, inner, leaf_end = m.group(
                    "start", "attrs", "ws", "close", "text_only", "leaf_end"
                )
                el._attrs = None
                el.self_closing = close == "/>"
                el.children = []
                el.end_tag = ""
                el.offset = pos
                el.start_end = el.end = end
                el.clean = True
                if leaf_end is not None:  # <x>text</x> in one match: complete already
                    if inner:
                        el.children.append(Text(inner))
                    el.end_tag = leaf_end
                    el.start_end = m.start("text_only")
                index = len(parsed)
                parsed.append(el)
                if stack:
                    stack[-1].children.append(el)
                    parents[id(el)] = stack[-1]
                else:
                    root = el
                if el.self_closing or leaf_end is not None:
                    if not stack:
                        pos = end
                        break
                elif (
                    expand is not None
                    and stack
                    and index not in expand
                    and (skim := _skim(text, el.name, end))
                ):
                    # Skim it unless an edit reaches into it.
                    if any(index <= i <= index + skim[2] for i in expand):
                        stack.append(el)
                    else:
                        el.end_tag = text[skim[0] : skim[1]]
                        el.end = pos = skim[1]
                        parsed.extend([None] * skim[2])
                        done = False  # go on tokenizing after the skimmed element
                        break
                else:
                    stack.append(el)
            pos = end
    if root is None or stack:
        raise CstError("unclosed element", pos)
    return Document(prolog, root, text[pos:], text, parsed, parents)


def _skim(text: str, name: str, pos: int) -> tuple[int, int, int] | None:
    """Where the element whose content starts at ``pos`` ends, without tokenizing it:
    ``(end tag start, end tag end, elements inside)``; ``None`` when its content holds a
    comment, CDATA section or PI (which could hide a fake tag) or an element of the
    same name (whose end tag would be found first). In well-formed XML every other
    ``<`` in content opens a tag, so the counts are exact. (``str.find`` rather than a
    regex per name: compiling one costs more than skimming.)
    """
    closing = "</" + name
    stop = text.find(closing, pos)
    while stop >= 0:
        end = stop + len(closing)
        while text[end : end + 1] in _WHITE:
            end += 1
        if text.startswith(">", end):
            break
        stop = text.find(closing, stop + 1)
    if stop < 0:
        return None
    if text.find("<!", pos, stop) >= 0 or text.find("<?", pos, stop) >= 0:
        return None
    opened = "<" + name
    at = text.find(opened, pos, stop)
    while at >= 0:
        after = at + len(opened)
        if after == stop or text[after] in " \t\r\n/>":
            return None
        at = text.find(opened, after, stop)
    inside = text.count("<", pos, stop) - text.count("</", pos, stop)
    return stop, end + 1, inside


_WHITE = (" ", "\t", "\r", "\n")


def serialize(doc: Document) -> str:
    """Text of the whole document; byte-for-byte the source for an unedited tree."""
    out: list[str] = [doc.prolog]
    _emit(doc.root, doc.text, out)
    out.append(doc.epilog)
    return "".join(out)


def _emit(root: Element, text: str, out: list[str]) -> None:
    # Iterative to stay safe on deep documents.
    stack: list[Element | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        if item.clean:
            out.append(text[item.offset : item.end])
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
    pos = _skip_prolog(text)
    if text.startswith(("<!--", "<![CDATA["), pos):
        return None  # unterminated: lxml reports it with a line
    return pos if text.startswith("<!", pos) else None
