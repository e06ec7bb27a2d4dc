"""A plan is data: the edits a domain still needs, and what the rules found on the way.

Edits name elements by their index in document order (lxml's ``iter()``), so a plan
can be compared, printed and applied both to the lossless text tree (``edit.py``) and to
an lxml copy (``apply_tree``) whose meaning the rendered bytes must match.
"""

from __future__ import annotations

import copy
from enum import Enum
from typing import NamedTuple

from lxml import etree

from xmlnest.lossless.tree import without_last_indent


class NewElement(NamedTuple):
    """An element to create, with attributes in the order they are to be written."""

    tag: str
    attrs: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    children: tuple[NewElement, ...] = ()


class SetAttr(NamedTuple):
    target: int
    name: str
    value: str


class RemoveAttr(NamedTuple):
    target: int
    name: str


class SetText(NamedTuple):
    target: int
    text: str


class Insert(NamedTuple):
    parent: int
    element: NewElement


class Remove(NamedTuple):
    target: int


Edit = SetAttr | RemoveAttr | SetText | Insert | Remove


class Level(Enum):
    ERROR = "error"  # only in reports of refused inputs (--json); plans never carry one
    WARNING = "warning"
    INFO = "info"


class Finding(NamedTuple):
    """A warning or note about a domain that is still transformed."""

    rule: str
    message: str
    hint: str = ""
    line: int | None = None
    level: Level = Level.WARNING


class Plan(NamedTuple):
    target: str  # the resolved architecture: intel, amd, power9, ibmz
    edits: tuple[Edit, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.edits


# Where libvirt writes things. Used by both appliers so text and tree agree.
ATTR_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("mode", "match", "check", "migratable"),
    "feature": ("policy", "name"),
    "model": ("fallback", "vendor_id"),
    "nested-hv": ("state",),
}
CHILD_ORDER: dict[str, tuple[str, ...]] = {
    "domain": (
        "name",
        "uuid",
        "genid",
        "title",
        "description",
        "metadata",
        "maxMemory",
        "memory",
        "currentMemory",
        "blkiotune",
        "memtune",
        "memoryBacking",
        "vcpu",
        "vcpus",
        "iothreads",
        "iothreadids",
        "defaultiothread",
        "cputune",
        "numatune",
        "resource",
        "sysinfo",
        "bootloader",
        "bootloader_args",
        "os",
        "idmap",
        "features",
        "cpu",
        "clock",
        "on_poweroff",
        "on_reboot",
        "on_crash",
        "on_lockfailure",
        "pm",
        "perf",
        "devices",
        "seclabel",
        "keywrap",
        "launchSecurity",
    ),
    "cpu": ("model", "vendor", "topology", "cache", "maxphysaddr", "feature", "numa"),
}


def reached(edits: tuple[Edit, ...]) -> set[int]:
    """Indexes of the elements the edits change (for a removal, the removed element;
    its parent is an ancestor of it, so expanding one expands the other)."""
    return {e.parent if isinstance(e, Insert) else e.target for e in edits}


def attr_position(tag: str, existing: list[str], name: str) -> int:
    """Index at which a new attribute goes among ``existing`` attribute names."""
    order = ATTR_ORDER.get(tag, ())
    if name not in order:
        return len(existing)
    rank = order.index(name)
    for i, other in enumerate(existing):
        if other in order and order.index(other) > rank:
            return i
    return len(existing)


def child_anchor(parent_tag: str, children: list[str], new_tag: str) -> tuple[str, int] | None:
    """Where a new child goes: ``("after", i)``, ``("before", i)`` or ``None`` (append).

    ``children`` are the local names of the parent's element children in order.
    """
    order = CHILD_ORDER.get(parent_tag)
    if order is None or new_tag not in order:
        return ("after", len(children) - 1) if children else None
    rank = order.index(new_tag)
    after = None
    for i, name in enumerate(children):
        if name in order and order.index(name) <= rank:
            after = i
    if after is not None:
        return ("after", after)
    for i, name in enumerate(children):
        if name in order and order.index(name) > rank:
            return ("before", i)
    return ("after", len(children) - 1) if children else None


def local(el: etree._Element) -> str:
    """Local name of an element ('' for comments and PIs); cheaper than etree.QName."""
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def apply_tree(
    root: etree._Element, edits: tuple[Edit, ...]
) -> tuple[etree._Element, list[etree._Element]]:
    """Apply a plan's meaning to a copy of an lxml tree (whitespace aside).

    Returns the copy and, per edit, the element it changed there (the parent, for a
    removal; the new element, for an insertion).
    """
    new_root = copy.deepcopy(root)
    els = list(new_root.iter(etree.Element))
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
            parent = els[e.parent]
            kids = [c for c in parent if isinstance(c.tag, str)]
            where = child_anchor(local(parent), [local(c) for c in kids], e.element.tag)
            new = _build(e.element)
            if where is None:
                parent.append(new)
            elif where[0] == "after":
                kids[where[1]].addnext(new)
            else:
                kids[where[1]].addprevious(new)
            new.tail = None
            touched.append(new)
    return new_root, touched


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
