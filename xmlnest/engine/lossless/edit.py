"""Apply a plan to the lossless text tree: the only code that writes whitespace.

New elements get their siblings' indentation (or the parent's plus the file's indent
unit), the file's newline and quote character; removed elements take their line with
them; an element left with only whitespace inside collapses to ``<x/>``. Nothing else in
the tree is touched, so untouched lines serialize to their original bytes.
"""

from __future__ import annotations

from xmlnest.engine.layout import attr_position, child_anchor
from xmlnest.engine.lossless import nodes
from xmlnest.engine.lossless.style import Style
from xmlnest.engine.plan import Edit, NewElement, Remove, RemoveAttr, SetAttr, SetText
from xmlnest.errors import XmlnestError


def escape_attr(value: str, quote: str) -> str:
    out = value.replace("&", "&amp;").replace("<", "&lt;")
    return out.replace(quote, "&apos;" if quote == "'" else "&quot;")


def escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def apply(
    doc: nodes.Document, els: list[nodes.Element | None], edits: tuple[Edit, ...], style: Style
) -> None:
    """Mutate ``doc`` by ``edits``; indexes refer to ``els``, its elements before any edit."""
    parents = doc.parents
    indents = _Indents(doc, parents, style)

    def at(index: int) -> nodes.Element:
        el = els[index]
        if el is None:  # skimmed: the tree was built for other edits
            raise XmlnestError(
                "internal error: an edit reached an element the token tree skipped",
                hint="nothing was written; please report this input",
            )
        return el

    for e in edits:
        if isinstance(e, SetAttr):
            touched = at(e.target)
            set_attr(touched, e.name, e.value, style)
        elif isinstance(e, RemoveAttr):
            touched = at(e.target)
            touched.attrs = [a for a in touched.attrs if a.name != e.name]
        elif isinstance(e, SetText):
            touched = at(e.target)
            set_text(touched, e.text)
        elif isinstance(e, Remove):
            gone = at(e.target)
            touched = parents[id(gone)]
            remove(gone, touched)
        else:
            touched = at(e.parent)
            insert(touched, e.element, style, indents)
        _dirty(touched, parents)


def _dirty(el: nodes.Element, parents: dict[int, nodes.Element]) -> None:
    """``el`` and its ancestors no longer equal their source slice."""
    node: nodes.Element | None = el
    while node is not None and node.clean:
        node.clean = False
        node = parents.get(id(node))


def set_attr(el: nodes.Element, name: str, value: str, style: Style) -> None:
    existing = el.attr(name)
    if existing is not None:
        existing.raw_value = escape_attr(value, existing.quote)
        return
    quote = el.attrs[0].quote if el.attrs else style.quote
    pos = attr_position(el.local_name, [a.name for a in el.attrs], name)
    el.attrs.insert(pos, nodes.Attr(" ", name, "=", quote, escape_attr(value, quote)))


def set_text(el: nodes.Element, text: str) -> None:
    el.children = [nodes.Text(escape_text(text))]
    if el.self_closing:
        el.self_closing = False
        el.tag_ws = ""
        el.end_tag = f"</{el.name}>"


def without_last_indent(text: str) -> str:
    """``text`` less its last line break and the indentation after it, when only white
    space follows that break; else ``text`` unchanged. The one rule for what a removed
    element takes with it, shared by the text tree and its lxml mirror.

    A bare CR is a line break too (XML reads it as LF); CRLF counts as one.
    """
    cut = max(text.rfind("\n"), text.rfind("\r"))
    if cut < 0 or text[cut:].strip():
        return text
    if text[cut] == "\n" and cut > 0 and text[cut - 1] == "\r":
        cut -= 1
    return text[:cut]


def _is_blank(node: nodes.Text | nodes.Other | nodes.Element) -> bool:
    return isinstance(node, nodes.Text) and not node.raw.strip()


def remove(el: nodes.Element, parent: nodes.Element) -> None:
    kids = parent.children
    i = next(k for k, c in enumerate(kids) if c is el)
    del kids[i]
    prev = kids[i - 1] if i > 0 else None
    if isinstance(prev, nodes.Text):
        prev.raw = without_last_indent(prev.raw)
        after = kids[i] if i < len(kids) else None
        if prev.raw.endswith("\r") and isinstance(after, nodes.Text) and after.raw[:1] == "\n":
            # A bare CR now meeting the LF after the removed element would read as one
            # CRLF, two line breaks becoming one: make the CR a CRLF of its own.
            prev.raw += "\n"
        if not prev.raw:
            del kids[i - 1]
    if all(_is_blank(c) for c in kids):
        parent.children = []
        parent.self_closing = True
        parent.end_tag = ""


class _Indents:
    """Indentation facts about the original tree, computed once."""

    def __init__(self, doc: nodes.Document, parents: dict[int, nodes.Element], style: Style):
        self.style = style
        self.parents = parents
        self.doc = doc

    def own(self, el: nodes.Element) -> str:
        """The whitespace that starts ``el``'s line (its indentation)."""
        parent = self.parents.get(id(el))
        if parent is None:
            before = self.doc.prolog
        else:
            i = next(k for k, c in enumerate(parent.children) if c is el)
            prev = parent.children[i - 1] if i > 0 else None
            before = prev.raw if isinstance(prev, nodes.Text) else ""
        tail = before.rpartition("\n")[2]
        return tail if not tail.strip() else ""

    def child(self, parent: nodes.Element) -> str:
        for kid in parent.element_children():
            i = next(k for k, c in enumerate(parent.children) if c is kid)
            prev = parent.children[i - 1] if i > 0 else None
            if isinstance(prev, nodes.Text) and "\n" in prev.raw:
                tail = prev.raw.rpartition("\n")[2]
                if not tail.strip():
                    return tail
        return self.own(parent) + self.style.indent_unit


def insert(parent: nodes.Element, spec: NewElement, style: Style, indents: _Indents) -> None:
    nl = style.newline if style.pretty else ""
    indent = indents.child(parent) if style.pretty else ""
    node = build(spec, indent, style)
    kids = parent.element_children()
    where = child_anchor(parent.local_name, [k.local_name for k in kids], spec.tag)
    if where is None:
        _open_with(parent, node, nl, indent, indents.own(parent) if style.pretty else "")
        return
    side, k = where
    pos = next(i for i, c in enumerate(parent.children) if c is kids[k])
    if side == "after":
        tail = parent.children[pos + 1] if pos + 1 < len(parent.children) else None
        if isinstance(tail, nodes.Text) and tail.raw.strip():
            # Stray text after the anchor belongs to it (lxml: its tail): go after that.
            parent.children[pos + 2 : pos + 2] = [node, nodes.Text(nl + indent)]
        else:
            parent.children[pos + 1 : pos + 1] = [nodes.Text(nl + indent), node]
    else:
        parent.children[pos:pos] = [node, nodes.Text(nl + indent)]
    parent.children = [c for c in parent.children if not (isinstance(c, nodes.Text) and not c.raw)]


def _open_with(parent: nodes.Element, node: nodes.Element, nl: str, indent: str, own: str) -> None:
    kids = list(parent.children)
    while kids and _is_blank(kids[-1]):
        kids.pop()
    kids += [nodes.Text(nl + indent), node, nodes.Text(nl + own)]
    parent.children = [c for c in kids if not (isinstance(c, nodes.Text) and not c.raw)]
    if parent.self_closing:
        parent.self_closing = False
        parent.tag_ws = ""
        parent.end_tag = f"</{parent.name}>"


def build(spec: NewElement, indent: str, style: Style) -> nodes.Element:
    """A new element in the file's style, its children one indent unit deeper."""
    q = style.quote
    el = nodes.Element(
        name=spec.tag,
        attrs=[nodes.Attr(" ", k, "=", q, escape_attr(v, q)) for k, v in spec.attrs],
        tag_ws="",
        self_closing=not spec.children and spec.text is None,
    )
    if spec.children:
        nl = style.newline if style.pretty else ""
        inner = indent + style.indent_unit if style.pretty else ""
        for child in spec.children:
            el.children += [nodes.Text(nl + inner), build(child, inner, style)]
        el.children.append(nodes.Text(nl + indent))
        el.children = [c for c in el.children if not (isinstance(c, nodes.Text) and not c.raw)]
    elif spec.text is not None:
        el.children = [nodes.Text(escape_text(spec.text))]
    if not el.self_closing:
        el.end_tag = f"</{spec.tag}>"
    return el
