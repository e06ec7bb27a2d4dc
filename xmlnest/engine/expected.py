"""The plan applied to an lxml model of the source: what the meaning check compares with.

:mod:`verify` holds the rendered output to it, whitespace aside.

The edits are made the way libvirt's placement rules (:mod:`layout`) and the text
renderer's removal rule say, on copies: the source tree is never changed.
"""

from __future__ import annotations

import copy

from lxml import etree

from xmlnest.engine.layout import attr_position, child_anchor
from xmlnest.engine.lossless.edit import without_last_indent
from xmlnest.engine.plan import (
    Edit,
    Index,
    Insert,
    NewElement,
    Remove,
    RemoveAttr,
    SetAttr,
    SetText,
)


def node(el: etree._Element, top: etree._Element) -> tuple[object, ...]:
    return (
        el.tag,
        tuple(el.attrib.items()) if isinstance(el.tag, str) else (),
        (el.text or "").strip(),
        (el.tail or "").strip() if el is not top else "",
        len(el),
    )


def canonical(top: etree._Element) -> list[tuple[object, ...]]:
    """What a subtree means, blank text aside: pre-order nodes with their child counts.

    (Pre-order plus child counts pins down the tree. Canonical XML 2.0 would do, but
    lxml writes it in Python and it is several times slower.) The top's tail counts.
    """
    return [node(el, top) for el in top.iter()] + [((top.tail or "").strip(),)]


class Expected:
    """A plan's meaning applied to a model of the source (whitespace aside), for
    :func:`check_meaning` to hold the rendered tree to.

    The source tree is never changed. The root is modelled by its attributes, its text
    and the sequence of its children; a child of the root that an edit reaches is
    copied (with its tail) and edited in the copy, and a new child is built. The
    others stay the source's own nodes: only their place in the sequence and their tag
    are compared, since the renderer copies them as source slices. (Copying only what
    an edit reaches costs a fraction of copying the whole document.)
    """

    def __init__(self, root: etree._Element, index: Index, edits: tuple[Edit, ...]) -> None:
        assert index.root is root
        self.root = root
        self.attrs: list[tuple[str, str]] | None = None  # the root's, once an edit sets one
        self.text = root.text
        self.slots: list[etree._Element] = list(root)  # the root's children, in order
        self.copies: dict[etree._Element, etree._Element] = {}  # source child -> its copy
        self.owned: set[etree._Element] = set()  # slots to compare node by node
        # Each named element's counterpart is found before any edit moves things.
        named = [index.element(e.parent if isinstance(e, Insert) else e.target) for e in edits]
        where = [
            None
            if el is root or (isinstance(e, Remove) and el.getparent() is root)
            else self._counterpart(el)
            for e, el in zip(edits, named, strict=True)
        ]
        for e, el, model in zip(edits, named, where, strict=True):
            self._apply(e, el, model)

    def _apply(self, e: Edit, named: etree._Element, el: etree._Element | None) -> None:
        """Make one edit on the model: ``el`` is the named element's counterpart in it
        (``None`` for the root and for a child of the root that is removed)."""
        if named is self.root:
            self._apply_to_root(e)
            return
        if el is None:
            self._remove_child(self.copies.get(named, named))
            return
        if isinstance(e, SetAttr):
            _set_attr_ordered(el, e.name, e.value)
        elif isinstance(e, RemoveAttr):
            del el.attrib[e.name]
        elif isinstance(e, SetText):
            el.text = e.text
        elif isinstance(e, Remove):
            parent = el.getparent()
            assert parent is not None
            _remove_keeping_text(parent, el)
        else:
            _insert(el, e.element)

    def matches(self, got: etree._Element) -> bool:
        """Whether ``got``, the rendered root, means what the model says."""
        slots = self.slots
        if len(got) != len(slots) or got.tag != self.root.tag:
            return False
        attrs = self.attrs if self.attrs is not None else self.root.attrib.items()
        if list(attrs) != got.attrib.items():
            return False
        if (self.text or "").strip() != (got.text or "").strip():
            return False
        owned = self.owned
        for want, have in zip(slots, got, strict=True):
            if want in owned:
                if canonical(want) != canonical(have):
                    return False
            elif want.tag != have.tag:
                return False
        return True

    def _copy(self, child: etree._Element) -> etree._Element:
        """The model's own copy of ``child``, a child of the source root, made on first use."""
        copied = self.copies.get(child)
        if copied is None:
            copied = self.copies[child] = copy.deepcopy(child)  # with its tail
            self.owned.add(copied)
            slots = self.slots
            slots[slots.index(child)] = copied
        return copied

    def _counterpart(self, el: etree._Element) -> etree._Element:
        """The copy of ``el``, a descendant of the source root, in its child's copy."""
        path: list[int] = []
        while (parent := el.getparent()) is not self.root:
            assert parent is not None
            path.append(parent.index(el))
            el = parent
        copied = self._copy(el)
        for i in reversed(path):
            copied = copied[i]
        return copied

    def _apply_to_root(self, e: Edit) -> None:
        if isinstance(e, SetText):
            self.text = e.text
            return
        if isinstance(e, Insert):
            self._insert_child(e.element)
            return
        attrs = self.attrs if self.attrs is not None else list(self.root.attrib.items())
        if isinstance(e, SetAttr):
            names = [k for k, _ in attrs]
            if e.name in names:
                attrs[names.index(e.name)] = (e.name, e.value)
            else:
                attrs.insert(attr_position(local(self.root), names, e.name), (e.name, e.value))
        elif isinstance(e, RemoveAttr):
            attrs = [(k, v) for k, v in attrs if k != e.name]
        else:  # pragma: no cover - a plan never removes the root
            raise AssertionError("a plan cannot remove the root")
        self.attrs = attrs

    def _insert_child(self, spec: NewElement) -> None:
        """A new child of the root, where :func:`_insert` would put it in an lxml tree."""
        slots = self.slots
        kids = [c for c in slots if isinstance(c.tag, str)]
        where = child_anchor(local(self.root), [local(c) for c in kids], spec.tag)
        new = _build(spec)
        if where is None:
            slots.append(new)
        else:
            at = slots.index(kids[where[1]])
            slots.insert(at + 1 if where[0] == "after" else at, new)
        self.owned.add(new)

    def _remove_child(self, el: etree._Element) -> None:
        """Remove ``el``, a slot, as :func:`_remove_keeping_text` removes a child: the text
        after it joins the root's text, or the previous node's tail. A previous node no
        edit reached stays the source's own, its tail unmodelled (only its tag is
        compared, as for any child no edit reached)."""
        slots = self.slots
        at = slots.index(el)
        del slots[at]
        self.owned.discard(el)
        if at == 0:
            before = without_last_indent(self.text or "") + (el.tail or "")
            self.text = before or None
        elif slots[at - 1] in self.owned:
            prev = slots[at - 1]
            before = without_last_indent(prev.tail or "") + (el.tail or "")
            prev.tail = before or None


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
