"""What a schema check returns: the Validator protocol and its SchemaProblem.

Its own module so that ``validate.py`` (which picks a validator), ``xsd.py`` (one of them)
and ``verify.py`` (which runs one) import it from below, and none of them each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from lxml import etree


class SchemaProblem(NamedTuple):
    line: int | None
    message: str


class Validator(Protocol):
    name: str

    def problems(self, root: etree._Element) -> list[SchemaProblem]: ...
