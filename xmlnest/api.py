"""The public Python API: convert or check one domain's XML, report on a host, explain a rule.

The CLI's guarantees hold here too: the output keeps every byte the edit does not touch,
means exactly the edit, needs no second run, and is not schema-invalid where the input
was valid. Refusals raise the ``XmlnestError`` subclasses; bad arguments ``UsageError``
(a ``ValueError``). Nothing is read from the machine unless asked (``host_vendor="local"``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from xmlnest.engine import core
from xmlnest.engine.document import DEFAULT_MAX_BYTES
from xmlnest.engine.plan import Finding
from xmlnest.engine.transforms import ARCH_ALIASES
from xmlnest.engine.validate import Validator, choose
from xmlnest.errors import UsageError
from xmlnest.model import Options, Vendor

if TYPE_CHECKING:
    from xmlnest.hostcheck.check import HostReport

HostVendor = Literal["intel", "amd", "local"]


@dataclass(frozen=True)
class Result:
    """One converted domain."""

    output: bytes  # the XML to store (the input bytes when nothing changed)
    changed: bool
    findings: tuple[Finding, ...]  # warnings and notes: rule, level, line, message, hint
    arch: str  # the resolved target: intel, amd, power9 or ibmz


def transform(
    xml: bytes | str,
    *,
    arch: str = "auto",
    model: str | None = None,
    passthrough: bool = False,
    level: str = "l1",
    validate: str = "auto",
    host_vendor: HostVendor | None = None,
    windows: bool = False,
) -> Result:
    """Make the nesting edit one domain needs; raise ``XmlnestError`` to refuse it.

    ``arch``: auto, intel, amd, power9, ibmz or an alias (s390x, ppc64, ppc64le, pseries).
    ``validate``: auto (libvirt's domain.rng if installed, else the bundled XSD), rng, xsd
    or none. ``host_vendor``: what an x86 domain that names no vendor is taken to run on
    (``"local"`` reads this machine's CPU); ``None`` refuses such a domain (XN108) rather
    than guess. ``windows``: ready the L1 to run the Windows hypervisor (Hyper-V, WSL2,
    Windows Sandbox, VBS): also TSX off on Intel, the Hyper-V enlightenments and clock
    (only those the installed libvirt's schema accepts).
    """
    options = _options(arch, model, passthrough, level, windows, validate)
    raw = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    outcome = core.process(
        raw,
        options,
        host_vendor=_vendor_reader(host_vendor),
        validator=_validator(validate),
        max_bytes=max(DEFAULT_MAX_BYTES, len(raw)),
    )
    return Result(outcome.output, outcome.changed, outcome.findings, outcome.plan.target)


def check(
    xml: bytes | str,
    *,
    arch: str = "auto",
    model: str | None = None,
    passthrough: bool = False,
    level: str = "l1",
    validate: str = "auto",
    host_vendor: HostVendor | None = None,
    windows: bool = False,
) -> bool:
    """True when the domain is already nested (``transform`` would change nothing)."""
    result = transform(
        xml,
        arch=arch,
        model=model,
        passthrough=passthrough,
        level=level,
        validate=validate,
        host_vendor=host_vendor,
        windows=windows,
    )
    return not result.changed


def host_check(root: str = "/") -> HostReport:
    """Report whether the host whose ``/proc`` and ``/sys`` are under ``root`` can nest."""
    import os
    from pathlib import Path

    from xmlnest.hostcheck.check import host_check as check_host

    if not os.path.isdir(root):
        raise UsageError(f"host root {root} is not a folder")
    return check_host(Path(root))


def explain(rule: str) -> str:
    """A rule's full text: level, title, reason, hint and public source (for XN223, the
    advisories it checks, each version with its source)."""
    from xmlnest.engine.rules import explain as explain_rule

    text = explain_rule(rule)
    if text is None:
        raise UsageError(f"no rule {rule!r}; xmlnest --list-rules lists them")
    if rule.strip().upper() == "XN223":
        from xmlnest.hostcheck.advisories import describe

        text += "\n" + describe()
    return text


def _options(
    arch: str, model: str | None, passthrough: bool, level: str, windows: bool, validate: str
) -> Options:
    target = ARCH_ALIASES.get(arch)
    if target is None:
        choices = ", ".join(sorted(ARCH_ALIASES))
        raise UsageError(f"arch={arch!r} is not one of {choices}")
    if level not in ("l1", "l2"):
        raise UsageError(f"level={level!r} is not l1 or l2")
    if model is not None and not model.strip():
        raise UsageError("model needs a CPU model name")
    if model and passthrough:
        raise UsageError("model and passthrough contradict each other; pick one")
    if windows and target in ("power9", "ibmz"):
        raise UsageError(f"windows=True readies Intel and AMD L1s, not arch={arch!r}")
    accepted = None
    if windows and validate != "none":
        import os

        from xmlnest.engine.validate import hyperv_children

        accepted = hyperv_children(None, os.environ)
    return Options(
        arch=target,
        model=model,
        passthrough=passthrough,
        level=level,
        windows=windows,
        hyperv_accepted=accepted,
    )


def _vendor_reader(host_vendor: HostVendor | None) -> Callable[[], Vendor | None]:
    if host_vendor is None:
        return lambda: None
    if host_vendor == "local":
        return _local_vendor
    if host_vendor in ("intel", "amd"):
        fixed: Vendor = host_vendor
        return lambda: fixed
    raise UsageError(f"host_vendor={host_vendor!r} is not intel, amd, local or None")


def _local_vendor() -> Vendor | None:
    from xmlnest.hostcheck.cpu import this_machines_vendor

    return this_machines_vendor("/")


@functools.cache
def _validator(kind: str) -> Validator | None:
    """One compiled schema per kind per process (compiling domain.rng costs ~0.1 s)."""
    if kind not in ("auto", "rng", "xsd", "none"):
        raise UsageError(f"validate={kind!r} is not auto, rng, xsd or none")
    return choose(kind, None).make_validator()
