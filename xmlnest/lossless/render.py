"""Edited tree -> bytes: untouched text copied from the source, then checked for meaning."""

from __future__ import annotations

from lxml import etree

from xmlnest.document import Source, lossless_tree, sniff_style
from xmlnest.errors import XmlnestError
from xmlnest.lossless import edit
from xmlnest.lossless import tree as cst
from xmlnest.plan import Plan, apply_tree, reached


def render(source: Source, plan: Plan) -> bytes:
    """The source bytes with the plan's edits; the exact input bytes for an empty plan."""
    if plan.empty:
        return source.raw
    tree = list(source.root.iter(etree.Element))
    doc = lossless_tree(source, _paths(tree, plan))
    els = doc.parsed
    if len(els) != len(tree):
        raise XmlnestError(
            "internal error: the token tree and the parsed tree disagree",
            hint="nothing was written; please report this input",
        )
    edit.apply(doc, els, plan.edits, sniff_style(doc, source.text))
    text = cst.serialize(doc)
    return source.bom + text.encode(source.encoding, errors="xmlcharrefreplace")


def _paths(tree: list[etree._Element], plan: Plan) -> set[int]:
    """Indexes of the elements the edits reach and of all their ancestors."""
    targets = reached(plan.edits)
    index = {el: i for i, el in enumerate(tree)}
    out: set[int] = set()
    for t in targets:
        el: etree._Element | None = tree[t]
        while el is not None and index[el] not in out:
            out.add(index[el])
            el = el.getparent()
    return out


def check_meaning(source: Source, plan: Plan, rendered: Source) -> None:
    """Raise unless the rendered document means exactly the planned edit of the source.

    The root and the sequence of its children must agree, and every child of the root
    that an edit reached must agree node by node, blank text aside. (Children no edit
    reached were copied as source slices; an edit that landed in the wrong place shows
    up as the planned change missing where it was meant to be.)
    """
    expected, touched = apply_tree(source.root, plan.edits)
    got = rendered.root
    same = (
        len(expected) == len(got)
        and _node(expected, expected) == _node(got, got)
        and [c.tag for c in expected] == [c.tag for c in got]
    )
    if same:
        reached: set[int] = set()
        for el in touched:
            while (parent := el.getparent()) is not None and parent is not expected:
                el = parent
            if el is not expected:
                reached.add(expected.index(el))
        same = all(_canonical(expected[i]) == _canonical(got[i]) for i in sorted(reached))
    if not same:
        raise XmlnestError(
            "internal error: the rewritten XML does not match the planned edit",
            hint="nothing was written; please report this input",
        )


def _node(el: etree._Element, top: etree._Element) -> tuple[object, ...]:
    return (
        el.tag,
        tuple(el.attrib.items()) if isinstance(el.tag, str) else (),
        (el.text or "").strip(),
        (el.tail or "").strip() if el is not top else "",
        len(el),
    )


def _canonical(top: etree._Element) -> list[tuple[object, ...]]:
    """What a subtree means, blank text aside: pre-order nodes with their child counts.

    (Pre-order plus child counts pins down the tree. Canonical XML 2.0 would do, but
    lxml writes it in Python and it is several times slower.) The top's tail counts.
    """
    return [_node(el, top) for el in top.iter()] + [((top.tail or "").strip(),)]
