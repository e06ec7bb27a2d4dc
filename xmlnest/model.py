"""The small value types every layer shares: what the user asked for, and what is known of
the host the domains run on."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, NamedTuple

Vendor = Literal["intel", "amd"]


class Options(NamedTuple):
    """What the user asked for, independent of any one input."""

    arch: str = "auto"  # auto, intel, amd, ibmz, power9 (aliases resolved by the CLI)
    model: str | None = None
    passthrough: bool = False
    level: str = "l1"  # l1: the guest that hosts VMs; l2: a nested guest (POWER9 only)
    known_models: frozenset[str] | None = None  # libvirt's cpu_map x86 models, if installed
    disable: bool = False  # the inverse edit: turn nesting off
    host_model: bool = False  # x86: keep (or make) host-model and require the feature in it
    windows: bool = False  # x86: ready the L1 for the Windows hypervisor (Hyper-V, WSL2, VBS)
    # The <hyperv> children the target libvirt accepts (its schema, or its domain
    # capabilities); None: not known, every one of the --windows profile is written.
    hyperv_accepted: frozenset[str] | None = None


FactKind = Literal["vendor", "offered", "hyperv"]


class Fact(NamedTuple):
    """One thing to know about the host: its CPU ``vendor``, or for an arch what its
    host-model CPU ``offered`` guests, or the ``hyperv`` enlightenments its domain
    capabilities list."""

    kind: FactKind
    arch: str = ""


class HostFactNeeded(Exception):  # noqa: N818 -- a request, not an error
    """Raised by the engine when a plan needs a fact that its :class:`HostFacts` does not
    hold yet. The edge that holds the facts looks it up and plans again
    (``xmlnest.convert``): the engine itself never reads the machine or a connection.
    Never reaches a user."""

    def __init__(self, fact: Fact) -> None:
        super().__init__(f"the plan needs the host's {fact.kind} {fact.arch}".rstrip())
        self.fact = fact


Answers = tuple[tuple[str, "frozenset[str] | None"], ...]  # (arch, answer) pairs


class HostFacts(NamedTuple):
    """What is known of the host the domains run on, as plain values.

    ``uri``: the libvirt connection behind the domains (``None``: none, so there is no
    host offer to compare with). ``vendor``: its CPU's vendor, ``None`` when not known;
    ``vendor_looked_up`` false means not looked up yet, so a plan that needs it asks.
    ``vendor_is_the_domains``: the vendor is that of the host the domains run on (a
    connection's), not a guess from the machine running xmlnest. ``offered`` and
    ``hyperv``: the answers so far, per arch (``None``: the driver cannot say); an arch
    not in them is asked for when a plan needs it, and only with a connection.
    """

    uri: str | None = None
    vendor: Vendor | None = None
    vendor_looked_up: bool = True
    vendor_is_the_domains: bool = False
    offered: Answers = ()
    hyperv: Answers = ()

    def cpu_vendor(self) -> Vendor | None:
        if not self.vendor_looked_up:
            raise HostFactNeeded(Fact("vendor"))
        return self.vendor

    def offer(self, arch: str) -> frozenset[str] | None:
        """The CPU features the host's host-model CPU offers ``arch`` guests."""
        return self._answer("offered", self.offered, arch)

    def hyperv_offer(self, arch: str) -> frozenset[str] | None:
        """The ``<hyperv>`` children the host's domain capabilities list for ``arch``."""
        return self._answer("hyperv", self.hyperv, arch)

    def _answer(self, kind: FactKind, answers: Answers, arch: str) -> frozenset[str] | None:
        if self.uri is None:
            return None
        for known, answer in answers:
            if known == arch:
                return answer
        raise HostFactNeeded(Fact(kind, arch))

    def knows(self, fact: Fact) -> bool:
        try:
            if fact.kind == "vendor":
                self.cpu_vendor()
            else:
                self._answer(fact.kind, getattr(self, fact.kind), fact.arch)
        except HostFactNeeded:
            return False
        return True

    def answered(self, fact: Fact, answer: Vendor | frozenset[str] | None) -> HostFacts:
        """These facts and one more."""
        if fact.kind == "vendor":
            assert answer is None or isinstance(answer, str)
            return self._replace(vendor=answer, vendor_looked_up=True)
        assert answer is None or isinstance(answer, frozenset)
        if fact.kind == "offered":
            return self._replace(offered=(*self.offered, (fact.arch, answer)))
        return self._replace(hyperv=(*self.hyperv, (fact.arch, answer)))


NO_HOST = HostFacts()  # nothing known: no vendor, no connection


class Status(StrEnum):
    """What happened to one input: the one list of result statuses (``--json``'s words)."""

    CHANGED = "changed"  # its output differs (written, or would be under --check/--diff)
    UNCHANGED = "unchanged"  # already as asked: the output is the input's bytes
    SKIPPED = "skipped"  # not a domain, and the run was told to skip such inputs
    REJECTED = "rejected"  # refused: nothing written for it
