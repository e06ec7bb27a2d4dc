"""Text <-> token tree: a lossless tokenizer of an XML document and its serializer.

Every byte of the source is kept in some node, so ``serialize(parse(text)) == text``
for any document lxml accepted. Only nodes an edit touches are regenerated; an element
nothing touched is copied from the source text as one slice. This module knows nothing
about libvirt or nesting.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection

from xmlnest.engine.lossless import skim
from xmlnest.engine.lossless.nodes import ATTR, NAME, WS, Document, Element, Other, Text

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


def parse(
    text: str, expand: Collection[int] | None = None, opened: Collection[int] | None = None
) -> Document:
    """Tokenize ``text`` into a lossless tree. Iterative: deep documents cannot overflow.

    With ``expand`` (element indexes in document order, the root being 0), an element
    whose subtree holds none of them is *skimmed*: kept as one clean slice, its inside
    not tokenized, its descendants ``None`` in ``parsed`` so indexes still line up. Only
    the elements on the way to an edit and their children are tokenized: edits reach a
    few small elements, and this spares tokenizing ``<devices>`` or a ``<numa>``.
    ``expand`` should hold the ancestors of those elements too: they are then tokenized
    without first being scanned to their end (which on a deep document would cost its
    depth times its size).

    With ``opened`` as well (the expanded elements whose children an edit works among:
    an insertion's parent, a removal's), the children of any other expanded element
    that no edit reaches are not even skimmed one by one: a run of such siblings, with
    the blank text between them, is kept as one :class:`Other` slice (see
    :func:`skim.siblings`). The blank text before and after a run stays a
    :class:`Text` of its own, where indentation is read from, and so does every text
    among the root's children up to the first that sets the indent unit.
    """
    pos = _prolog_end(text)
    prolog = text[:pos]
    root: Element | None = None
    stack: list[Element] = []
    parsed: list[Element | None] = []
    parents: dict[int, Element] = {}
    new = Element.__new__
    # Per open element: whether its unreached children may be kept as runs.
    runs: list[bool] = []
    upcoming = sorted(expand) if expand is not None and opened is not None else None
    expanded: Collection[int] = expand if expand is not None else ()
    opened_: Collection[int] = opened if opened is not None else ()
    # No run among the root's children before the text that sets the file's indent
    # unit: the style is read from those texts (lossless.style), and a run would hide them.
    styled = upcoming is None
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
                if not styled and len(stack) == 1 and kind == "text":
                    styled = bool(indentation(m.group()))
            elif kind == "end":
                if not stack or stack[-1].name != m.group("end"):
                    raise CstError("unexpected end tag", pos)
                closed = stack.pop()
                if upcoming is not None:
                    runs.pop()
                closed.end_tag = m.group()
                closed.end = end
                if not stack:
                    pos = end
                    break
            else:
                if root is not None and not stack:
                    raise CstError("a second root element", pos)
                if (
                    upcoming is not None
                    and runs
                    and runs[-1]
                    and (styled or len(stack) > 1)
                    and len(parsed) not in expanded
                ):
                    index = len(parsed)
                    at = bisect.bisect(upcoming, index)
                    last = None
                    if at == len(upcoming) and len(stack) == 1:
                        last = skim.rest_of_root(text, pos, stack[0].name)
                    if last is not None:
                        run_end, count = last
                    else:
                        stop = upcoming[at] if at < len(upcoming) else len(text)
                        run_end, count = skim.siblings(text, pos, index, stop)
                    if count:
                        stack[-1].children.append(Other(text[pos:run_end]))
                        parsed.extend([None] * count)
                        pos = run_end
                        done = False  # go on tokenizing after the run
                        break
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
                    and (skimmed := skim.element(text, el.name, end))
                ):
                    # Skim it unless an edit reaches into it.
                    if any(index <= i <= index + skimmed[2] for i in expand):
                        stack.append(el)
                        if upcoming is not None:
                            runs.append(index not in opened_)
                    else:
                        el.end_tag = text[skimmed[0] : skimmed[1]]
                        el.end = pos = skimmed[1]
                        parsed.extend([None] * skimmed[2])
                        done = False  # go on tokenizing after the skimmed element
                        break
                else:
                    stack.append(el)
                    if upcoming is not None:
                        runs.append(index not in opened_)
            pos = end
    if root is None or stack:
        raise CstError("unclosed element", pos)
    return Document(prolog, root, text[pos:], text, parsed, parents)


def indentation(raw: str) -> str:
    """The indentation a text between the root's children gives the next line: the
    blanks after its last line break ('' if none, or if it holds other text). The first
    root-level text with one sets the file's indent unit (``lossless.style``), so
    :func:`parse` keeps every root-level text up to that one as it is."""
    if "\n" not in raw:
        return ""
    indent = raw.rpartition("\n")[2].rstrip("\r")
    return indent if indent.strip(" \t") == "" else ""


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
