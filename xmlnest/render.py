"""Edited tree -> bytes: untouched text copied from the source, then checked for meaning."""

from __future__ import annotations

from lxml import etree

from xmlnest import cst, edit
from xmlnest.document import Source, lossless_tree, sniff_style
from xmlnest.errors import XmlnestError
from xmlnest.plan import Plan, apply_tree


def render(source: Source, plan: Plan) -> bytes:
    """The source bytes with the plan's edits; the exact input bytes for an empty plan."""
    if plan.empty:
        return source.raw
    doc = lossless_tree(source)
    els = doc.parsed
    if len(els) != sum(1 for _ in source.root.iter(etree.Element)):
        raise XmlnestError(
            "internal error: the token tree and the parsed tree disagree",
            hint="nothing was written; please report this input",
        )
    edit.apply(doc, els, plan.edits, sniff_style(doc, source.text))
    text = cst.serialize(doc)
    return source.bom + text.encode(source.encoding, errors="xmlcharrefreplace")


def check_meaning(source: Source, plan: Plan, rendered: Source) -> None:
    """Raise unless the rendered document means exactly the planned edit of the source.

    The edited tree and the re-parsed output are compared child by child under the root:
    children nothing touched serialize to the same bytes (a fast check in C); the others
    are compared node by node with blank text ignored.
    """
    expected = apply_tree(source.root, plan.edits)
    got = rendered.root
    same = len(expected) == len(got) and _node(expected, expected) == _node(got, got)
    if same:
        for want, have in zip(expected, got, strict=True):
            if etree.tostring(want) == etree.tostring(have):
                continue
            if _canonical(want) != _canonical(have):
                same = False
                break
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
