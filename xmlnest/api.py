"""The public Python API: convert or check one domain's XML, report on a host, explain a
rule, and libvirt domains by name (connect, convert and define back, the status verdict).

The CLI's guarantees hold here too: the output keeps every byte the edit does not touch,
means exactly the edit, needs no second run, and is not schema-invalid where the input
was valid. Refusals raise the ``XmlnestError`` subclasses; bad arguments ``UsageError``
(a ``ValueError``). Nothing is read from the machine unless asked (``host_vendor="local"``).
Hints name this API's parameters (``arch='intel'``), never the CLI's flags.

Domains by name (:func:`connect`, :func:`convert_domains`, :func:`domain_status`) live in
:mod:`xmlnest.libvirt.byname` and are re-exported here; the CLI's by-name path (``--domain``,
``--all-domains``, ``-i``, ``--status``) runs through those same functions (with
``wording="cli"``), as does the Ansible collection: the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from xmlnest.arguments import (
    api_words,
    checked_options,
    compiled,
    ignored_rules,
    reworded,
    reworded_finding,
)
from xmlnest.convert import Converter, ThisMachine
from xmlnest.engine.document import DEFAULT_MAX_BYTES
from xmlnest.engine.plan import Finding
from xmlnest.errors import UsageError, XmlnestError
from xmlnest.libvirt.byname import (
    DomainResult,
    connect,
    convert_domains,
    domain_names,
    domain_status,
)
from xmlnest.model import HostFacts

if TYPE_CHECKING:
    from xmlnest.hostcheck.check import HostReport

__all__ = [
    "DomainResult",
    "Result",
    "api_words",
    "check",
    "connect",
    "convert_domains",
    "domain_names",
    "domain_status",
    "enabling_risk",
    "explain",
    "host_check",
    "transform",
]

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
    disable: bool = False,
    host_model: bool = False,
) -> Result:
    """Make the nesting edit one domain needs; raise ``XmlnestError`` to refuse it.

    ``arch``: auto, intel, amd, power9, ibmz or an alias (s390x, ppc64, ppc64le, pseries).
    ``validate``: auto (libvirt's domain.rng if installed, else the bundled XSD), rng, xsd
    or none. ``host_vendor``: what an x86 domain that names no vendor is taken to run on
    (``"local"`` reads this machine's CPU); ``None`` refuses such a domain (XN108) rather
    than guess. ``windows``: ready the L1 to run the Windows hypervisor (Hyper-V, WSL2,
    Windows Sandbox, VBS): also TSX off on Intel, the Hyper-V enlightenments and clock
    (only those the installed libvirt's schema accepts). ``disable``: the inverse edit,
    nesting turned off. ``host_model``: x86 keeps (or gets) a host-model CPU that requires
    the nesting feature.
    """
    options = checked_options(
        arch,
        model,
        passthrough,
        level,
        disable=disable,
        host_model=host_model,
        windows=windows,
    )
    raw = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    lookup, facts = _host(host_vendor)
    converter = Converter(
        options,
        validator=compiled(validate),
        lookup=lookup,
        facts=facts,
        max_bytes=max(DEFAULT_MAX_BYTES, len(raw)),
    )
    try:
        outcome = converter.process(raw)
    except XmlnestError as exc:
        raise reworded(exc) from None
    findings = tuple(reworded_finding(f) for f in outcome.findings)
    return Result(outcome.output, outcome.changed, findings, outcome.plan.target)


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
    disable: bool = False,
    host_model: bool = False,
) -> bool:
    """True when the domain is already as asked (``transform`` would change nothing)."""
    result = transform(
        xml,
        arch=arch,
        model=model,
        passthrough=passthrough,
        level=level,
        validate=validate,
        host_vendor=host_vendor,
        windows=windows,
        disable=disable,
        host_model=host_model,
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


def enabling_risk(
    uri: str, *, host_root: str | None = None, ignore: Iterable[str] = ()
) -> Finding | None:
    """What turning nesting on in the domains behind ``uri`` risks on their host, as the
    CLI says it once per enabling run: XN223 (a warning) when the host's kernel has a
    guest-to-host escape reachable only through nesting (CVE-2026-53359 and kin), with the
    fixed release; XN224 (an info note) when the host is remote and its kernel cannot be
    read from here; ``None`` when the kernel has the fixes, cannot be judged, or ``uri``
    is libvirt's test driver. ``host_root``: where that host's ``/`` is mounted (default:
    ``/`` for a local URI such as ``qemu:///system``). ``ignore``: rule ids to leave out,
    as :func:`convert_domains` takes them (``None`` for XN223 or XN224 among them)."""
    import os

    from xmlnest.hostcheck.enabling import enabling_finding

    if host_root is not None and not os.path.isdir(host_root):
        raise UsageError(f"host_root {host_root} is not a folder")
    ignored = ignored_rules(ignore, "api")
    found = enabling_finding(uri, host_root)
    return None if found is None or found.rule in ignored else reworded_finding(found)


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


def _host(host_vendor: HostVendor | None) -> tuple[ThisMachine | None, HostFacts | None]:
    """The converter's host for ``host_vendor``: this machine to read, or a vendor given."""
    if host_vendor == "local":
        return ThisMachine("/"), None
    if host_vendor == "intel" or host_vendor == "amd":
        return None, HostFacts(vendor=host_vendor)
    if host_vendor is None:
        return None, HostFacts()
    raise UsageError(f"host_vendor={host_vendor!r} is not intel, amd, local or None")
