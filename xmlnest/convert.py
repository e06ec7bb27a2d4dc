"""The one way a domain is converted: a :class:`Converter` holds what a run decided once
(the options, the schema, what is known of the host) and converts domain after domain.

The API's ``transform``, the CLI's files and pipes (``cli/worker.py``) and domains by name
(``libvirt/byname.py``, which the CLI's ``--domain`` and the Ansible collection use) all
convert through it; nothing else calls the engine's ``core``. The engine reads neither the
machine nor a connection: it is handed :class:`HostFacts`, values, and asks
(:class:`HostFactNeeded`) when a plan needs one it lacks. The converter looks that fact
up, once, from its :class:`HostLookup`, and plans again: only the first domain that needs
a fact pays for a second plan, and a domain that needs none never causes a lookup.
"""

from __future__ import annotations

from typing import Protocol

from xmlnest.engine import core
from xmlnest.engine.core import Outcome
from xmlnest.engine.document import DEFAULT_MAX_BYTES
from xmlnest.engine.problems import Validator
from xmlnest.model import Fact, HostFactNeeded, HostFacts, Options, Vendor

__all__ = ["Converter", "HostLookup", "Outcome", "ThisMachine"]


class HostLookup(Protocol):
    """Where the facts about the host come from (the edge's I/O: this machine's
    ``/proc``, or a libvirt connection). Asked only when a plan needs the answer."""

    @property
    def uri(self) -> str | None:
        """The connection behind the domains; ``None``: none (no offer to ask for)."""
        ...

    @property
    def vendor_is_the_domains(self) -> bool:
        """The vendor is that of the host the domains run on, not a guess."""
        ...

    def vendor(self) -> Vendor | None: ...

    def offered(self, arch: str) -> frozenset[str] | None:
        """The features the host's host-model CPU offers ``arch`` guests."""
        ...

    def hyperv(self, arch: str) -> frozenset[str] | None:
        """The ``<hyperv>`` children the host's domain capabilities list for ``arch``."""
        ...


class ThisMachine:
    """The machine running xmlnest (its ``/proc`` under ``root``): a vendor to guess an
    x86 domain's from, and no connection, so no offer."""

    uri: str | None = None
    vendor_is_the_domains = False

    def __init__(self, root: str = "/") -> None:
        self.root = root

    def vendor(self) -> Vendor | None:
        from xmlnest.hostcheck.cpu import this_machines_vendor  # only a guess needs it

        return this_machines_vendor(self.root)

    def offered(self, arch: str) -> frozenset[str] | None:
        return None  # no connection: never asked

    def hyperv(self, arch: str) -> frozenset[str] | None:
        return None  # no connection: never asked


class Converter:
    """Options, schema and host facts, decided once for a run; :meth:`process` converts
    one domain with them. ``facts``: what is known of the host already (by default,
    nothing but ``lookup``'s place; with neither, no vendor and no connection).
    ``lookups`` counts the facts looked up (each is looked up once)."""

    def __init__(
        self,
        options: Options,
        *,
        validator: Validator | None = None,
        lookup: HostLookup | None = None,
        facts: HostFacts | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.options = options
        self.validator = validator
        self.lookup = lookup
        if facts is None:
            facts = HostFacts()
            if lookup is not None:  # where the host is known; nothing else asked yet
                facts = HostFacts(
                    uri=lookup.uri,
                    vendor_looked_up=False,
                    vendor_is_the_domains=lookup.vendor_is_the_domains,
                )
        self.facts = facts
        self.max_bytes = max_bytes
        self.lookups = 0

    def process(self, raw: bytes, *, max_bytes: int | None = None) -> Outcome:
        """Convert one domain; raise an ``XmlnestError`` subclass to refuse it."""
        return self.validated(self.transform(raw, max_bytes=max_bytes))

    def transform(self, raw: bytes, *, max_bytes: int | None = None) -> Outcome:
        """:meth:`process` up to the schema (the CLI validates a few outcomes at a time:
        libxml2's schema stays in the CPU's caches from one to the next)."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        while True:
            try:
                return core.transform(raw, self.options, host=self.facts, max_bytes=limit)
            except HostFactNeeded as need:
                self.facts = self._answered(need.fact)

    def validated(self, outcome: Outcome) -> Outcome:
        """The outcome of :meth:`transform` with the schema's word."""
        return core.validated(outcome, self.validator)

    def _answered(self, fact: Fact) -> HostFacts:
        if self.lookup is None or self.facts.knows(fact):
            # Asked for what it holds, or with nowhere to look: a bug, never a loop.
            raise RuntimeError(f"a plan asked for the host's {fact} with no way to learn it")
        self.lookups += 1
        lookup = self.lookup
        answer: Vendor | frozenset[str] | None
        if fact.kind == "vendor":
            answer = lookup.vendor()
        elif fact.kind == "offered":
            answer = lookup.offered(fact.arch)
        else:
            answer = lookup.hyperv(fact.arch)
        return self.facts.answered(fact, answer)
