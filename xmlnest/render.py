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
    """Raise unless the rendered document means exactly the planned edit of the source."""
    expected = apply_tree(source.root, plan.edits)
    if _canonical(rendered.root) != _canonical(expected):
        raise XmlnestError(
            "internal error: the rewritten XML does not match the planned edit",
            hint="nothing was written; please report this input",
        )


def _canonical(root: etree._Element) -> list[tuple[object, ...]]:
    """What a tree means, whitespace aside: pre-order nodes with their child counts.

    (Pre-order plus child counts pins down the tree. Canonical XML 2.0 would do, but
    lxml writes it in Python and it is several times slower.)
    """
    return [
        (
            el.tag,
            tuple(el.attrib.items()) if isinstance(el.tag, str) else (),
            (el.text or "").strip(),
            (el.tail or "").strip() if el is not root else "",
            len(el),
        )
        for el in root.iter()
    ]
