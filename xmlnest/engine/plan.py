"""A plan is data: the edits a domain still needs, and what the rules found on the way.

Edits name elements by their index in document order (lxml's ``iter()``), kept in the
document's one :class:`Index`, which the plan carries: the transforms name elements with
it, the renderer finds what to tokenize with it and the meaning check the elements to
compare. Nothing here knows the lossless token tree.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from lxml import etree


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
    NOTE = "note"  # said unless -q, like a warning, but never a refusal under --strict
    INFO = "info"


class Finding(NamedTuple):
    """A warning or note about a domain that is still transformed."""

    rule: str
    message: str
    hint: str = ""
    line: int | None = None
    level: Level = Level.WARNING


class Index:
    """One document's elements in document order, and each one's position: built once, on
    first use (a domain that needs no edit never pays for it)."""

    __slots__ = ("root", "_elements", "_positions")

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self._elements: list[etree._Element] = []
        self._positions: dict[etree._Element, int] | None = None

    def _built(self) -> dict[etree._Element, int]:
        if self._positions is None:
            self._elements = list(self.root.iter(etree.Element))
            self._positions = {e: i for i, e in enumerate(self._elements)}
        return self._positions

    def position(self, el: etree._Element) -> int:
        """The element's index in document order: how an edit names it."""
        return self._built()[el]

    def element(self, position: int) -> etree._Element:
        self._built()
        return self._elements[position]

    def __len__(self) -> int:
        return len(self._built())

    def __repr__(self) -> str:
        return f"Index({self.root.tag!r})"

    def expand(self, edits: tuple[Edit, ...]) -> set[int]:
        """Positions of the elements the edits reach and of all their ancestors."""
        positions = self._built()
        out: set[int] = set()
        for t in reached(edits):
            el: etree._Element | None = self._elements[t]
            while el is not None and positions[el] not in out:
                out.add(positions[el])
                el = el.getparent()
        return out

    def opened(self, edits: tuple[Edit, ...]) -> set[int]:
        """Positions of the elements whose children an edit works among: an insertion's
        parent and a removal's (the renderer tokenizes their children one by one)."""
        positions = self._built()
        out: set[int] = set()
        for e in edits:
            if isinstance(e, Insert):
                out.add(e.parent)
            elif isinstance(e, Remove):
                parent = self._elements[e.target].getparent()
                if parent is not None:
                    out.add(positions[parent])
        return out


class Plan(NamedTuple):
    target: str  # the resolved architecture: intel, amd, power9, ibmz
    edits: tuple[Edit, ...] = ()
    findings: tuple[Finding, ...] = ()
    action: str = "enable"  # enable, or disable (--disable): which way nesting goes
    elements: Index | None = None  # the planned document's one index (the transforms')

    @property
    def empty(self) -> bool:
        return not self.edits

    def index_of(self, root: etree._Element) -> Index:
        """The index the edits refer to: the plan's own, else a new one of ``root``."""
        return self.elements if self.elements is not None else Index(root)


def reached(edits: tuple[Edit, ...]) -> set[int]:
    """Indexes of the elements the edits change (for a removal, the removed element;
    its parent is an ancestor of it, so expanding one expands the other)."""
    return {e.parent if isinstance(e, Insert) else e.target for e in edits}
