"""The checks every output passes before it leaves: meaning, idempotence, schema validity.

The rendered bytes must mean exactly the planned edit of the source (compared with the
plan applied to an lxml copy, whitespace aside), a second plan over them must be empty,
and the schema must not reject an output whose input it accepted.
"""

from __future__ import annotations

import copy

from lxml import etree

from xmlnest.document import Source
from xmlnest.errors import ValidationError, XmlnestError
from xmlnest.layout import attr_position, child_anchor
from xmlnest.lossless.edit import without_last_indent
from xmlnest.plan import (
    Edit,
    Finding,
    Index,
    Insert,
    NewElement,
    Plan,
    Remove,
    RemoveAttr,
    SetAttr,
    SetText,
)
from xmlnest.problems import SchemaProblem, Validator

# Meaning


def check_meaning(source: Source, plan: Plan, rendered: Source) -> None:
    """Raise unless the rendered document means exactly the planned edit of the source.

    The root and the sequence of its children must agree, and every child of the root
    that an edit reached must agree node by node, blank text aside. (Children no edit
    reached were copied as source slices; an edit that landed in the wrong place shows
    up as the planned change missing where it was meant to be.)
    """
    expected, touched = apply_tree(source.root, plan.edits, plan.index_of(source.root))
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


def apply_tree(
    root: etree._Element, edits: tuple[Edit, ...], index: Index | None = None
) -> tuple[etree._Element, list[etree._Element]]:
    """Apply a plan's meaning to a copy of an lxml tree (whitespace aside).

    Returns the copy and, per edit, the element it changed there (the parent, for a
    removal; the new element, for an insertion). ``index``: the tree's own, if it has
    one; the copy is not indexed again, each element an edit names is found in it by
    its path from the root.
    """
    if index is None:
        index = Index(root)
    assert index.root is root
    new_root = copy.deepcopy(root)
    named = {e.parent if isinstance(e, Insert) else e.target for e in edits}
    els = {i: _counterpart(index.element(i), root, new_root) for i in named}
    touched: list[etree._Element] = []
    for e in edits:
        if isinstance(e, SetAttr):
            _set_attr_ordered(els[e.target], e.name, e.value)
            touched.append(els[e.target])
        elif isinstance(e, RemoveAttr):
            del els[e.target].attrib[e.name]
            touched.append(els[e.target])
        elif isinstance(e, SetText):
            els[e.target].text = e.text
            touched.append(els[e.target])
        elif isinstance(e, Remove):
            el = els[e.target]
            parent = el.getparent()
            assert parent is not None
            _remove_keeping_text(parent, el)
            touched.append(parent)
        else:
            touched.append(_insert(els[e.parent], e.element))
    return new_root, touched


def _counterpart(
    el: etree._Element, root: etree._Element, copied: etree._Element
) -> etree._Element:
    """The element of ``copied`` (a deep copy of ``root``) at ``el``'s place in ``root``."""
    path: list[int] = []
    while el is not root:
        parent = el.getparent()
        assert parent is not None
        path.append(parent.index(el))
        el = parent
    for i in reversed(path):
        copied = copied[i]
    return copied


def local(el: etree._Element) -> str:
    """Local name of an element ('' for comments and PIs); cheaper than etree.QName."""
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _insert(parent: etree._Element, spec: NewElement) -> etree._Element:
    kids = [c for c in parent if isinstance(c.tag, str)]
    where = child_anchor(local(parent), [local(c) for c in kids], spec.tag)
    new = _build(spec)
    if where is None:
        parent.append(new)
    elif where[0] == "after":
        kids[where[1]].addnext(new)
    else:
        kids[where[1]].addprevious(new)
    new.tail = None
    return new


def _remove_keeping_text(parent: etree._Element, el: etree._Element) -> None:
    """Remove ``el`` as the text renderer does: its line's indentation goes, text stays.

    lxml would drop the element's tail with it; stray text after a removed element is
    kept in the file, so it is kept here too.
    """
    prev = el.getprevious()
    before = without_last_indent((prev.tail if prev is not None else parent.text) or "")
    before += el.tail or ""
    parent.remove(el)
    if prev is not None:
        prev.tail = before or None
    else:
        parent.text = before or None


def _set_attr_ordered(el: etree._Element, name: str, value: str) -> None:
    if name in el.attrib:
        el.set(name, value)
        return
    items = list(el.attrib.items())
    pos = attr_position(local(el), [k for k, _ in items], name)
    items.insert(pos, (name, value))
    el.attrib.clear()
    for k, v in items:
        el.set(k, v)


def _build(spec: NewElement) -> etree._Element:
    el = etree.Element(spec.tag)
    for k, v in spec.attrs:
        el.set(k, v)
    el.text = spec.text
    for child in spec.children:
        el.append(_build(child))
    return el


# Idempotence


def check_idempotent(replan: Plan) -> None:
    """Raise unless ``replan``, the plan of the rendered output, is empty."""
    if not replan.empty:
        raise XmlnestError(
            "internal error: a second run would change the output again",
            hint="nothing was written; please report this input",
        )


# Schema validity


def check_valid(
    source: Source, rendered: Source, validator: Validator | None
) -> tuple[Finding, ...]:
    """Raise if the output fails a schema its input passes; a note if both fail it."""
    if validator is None:
        return ()
    after = validator.problems(rendered.root)
    if not after:
        return ()
    before = validator.problems(source.root)
    if not before:
        raise ValidationError(
            f"the result would not validate against {validator.name}: {after[0].message}",
            hint="nothing was written; the input was valid, so this is a bug or a rule the "
            "edit broke — please report it, or use --no-validate to override",
            line=_first_line(after),
            rule="XN110",
        )
    return (
        Finding(
            "XN211",
            f"the input already fails {validator.name}: {before[0].message}",
            hint="the nesting edit does not depend on that; fix the input for libvirt to accept it",
            line=_first_line(before),
        ),
    )


def _first_line(problems: list[SchemaProblem]) -> int | None:
    """libxml2 often gives the first RelaxNG error no line and the next one the line of
    the element that failed: report the first line any of them names."""
    return next((p.line for p in problems if p.line), None)
