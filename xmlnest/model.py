"""The small value types every layer shares: what the user asked for, and what a host offers."""

from __future__ import annotations

from collections.abc import Callable
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
    # The host vendor reader answers for the host the domain runs on (a libvirt
    # connection's capabilities), not for the machine running xmlnest: no guess to flag.
    host_is_the_domains: bool = False
    disable: bool = False  # the inverse edit: turn nesting off
    host_model: bool = False  # x86: keep (or make) host-model and require the feature in it
    windows: bool = False  # x86: ready the L1 for the Windows hypervisor (Hyper-V, WSL2, VBS)
    # The <hyperv> children the target libvirt accepts (its schema, or its domain
    # capabilities); None: not known, every one of the --windows profile is written.
    hyperv_accepted: frozenset[str] | None = None


class HostOffer(NamedTuple):
    """What the host behind a libvirt connection offers its guests: the URI, and for an
    arch the CPU features its host-model CPU requires (``None``: the driver cannot say,
    e.g. libvirt's test driver). Asked lazily, once per arch by the caller's cache.
    ``hyperv``: for an arch, the ``<hyperv>`` children its domain capabilities list
    (``None``: not reported), for ``--windows``."""

    uri: str
    features: Callable[[str], frozenset[str] | None]
    hyperv: Callable[[str], frozenset[str] | None] = lambda arch: None


class Status(StrEnum):
    """What happened to one input: the one list of result statuses (``--json``'s words)."""

    CHANGED = "changed"  # its output differs (written, or would be under --check/--diff)
    UNCHANGED = "unchanged"  # already as asked: the output is the input's bytes
    SKIPPED = "skipped"  # not a domain, and the run was told to skip such inputs
    REJECTED = "rejected"  # refused: nothing written for it
