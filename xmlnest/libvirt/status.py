"""Fleet status verdicts (``--status``): is a domain nested now, and will it be after a power-off.

Pure functions of what the CLI already has: the stored definition's outcome (would it
change, or which rule refused it), the live XML of a running domain, and what the host
behind the URI said (its x86 vendor, its host-model CPU's features). Nothing here talks
to libvirt, prints or exits.

The running definition is ``nested`` when

- x86: the live CPU requires ``vmx`` or ``svm`` without disabling it (a custom model's
  own features count, when the caller could expand them) — under KVM, or under TCG
  (``type='qemu'``), which emulates SVM for its guest; or, under KVM, it is
  ``host-passthrough``/``maximum``/``host-model`` on a host that offers the feature (a
  host that cannot say is taken at its definition's word);
- POWER9: ``<features><nested-hv state='on'/>``;
- IBM Z: a host CPU mode (or none) that does not disable ``sief2``, or a required ``sief2``;

and ``not nested`` otherwise. ``restart pending``: an edit made the stored definition
what the run asks for (nested; with ``--disable``, not nested) and the running definition
is still the other way, so only a full power-off (not a reboot) settles it. A stored
definition that ``would change`` is never pending: a restart would not change what the
guest gets (a running host-model guest on a host that offers vmx is nested before and
after), the edit is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from lxml import etree

from xmlnest.engine.transforms import FAMILY_OF_ARCH
from xmlnest.engine.transforms.x86 import NESTING_FEATURE
from xmlnest.errors import ExitCode
from xmlnest.libvirt.connection import Feature
from xmlnest.model import Vendor

NESTED = "nested"
NOT_NESTED = "not nested"
WOULD_CHANGE = "would change"
REFUSED = "refused"
SKIPPED = "skipped"  # --skip-unsupported: cannot nest by type or arch (XN101, XN102, XN109)
HOST_SETTING = "host setting"  # --disable on IBM Z: no XML turns nesting off (XN221)


_OFF = ("disable", "forbid")
_ON = ("require", "force")
_HOST_MODES = ("host-passthrough", "maximum", "host-model")


def stored_verdict(
    *,
    changed: bool,
    refused: str | None = None,
    skipped: str | None = None,
    disable: bool = False,
    host_setting: bool = False,
) -> str:
    """The stored definition's verdict: ``would change``, ``refused XNnnn``, ``skipped
    XNnnn`` (``--skip-unsupported``), or what it is already: ``nested`` (with ``disable``:
    ``not nested``; ``host setting`` where the XML cannot turn nesting off, IBM Z)."""
    if refused:
        return f"{REFUSED} {refused}"
    if skipped:
        return f"{SKIPPED} {skipped}"
    if changed:
        return WOULD_CHANGE
    if disable:
        return HOST_SETTING if host_setting else NOT_NESTED
    return NESTED


def _cpu(live: etree._Element) -> etree._Element | None:
    return next(live.iterchildren("cpu"), None)


def _features(cpu: etree._Element | None) -> frozenset[Feature]:
    if cpu is None:
        return frozenset()
    return frozenset(
        Feature(f.get("name", ""), f.get("policy", "require")) for f in cpu.iterchildren("feature")
    )


def arch_of(root: etree._Element) -> str:
    """The domain's ``<os><type arch>`` (empty when it names none)."""
    os_el = next(root.iterchildren("os"), None)
    type_el = next(os_el.iterchildren("type"), None) if os_el is not None else None
    return (type_el.get("arch") if type_el is not None else None) or ""


def cpu_to_expand(live: etree._Element) -> str | None:
    """The live ``<cpu>`` to hand to :meth:`Connection.cpu_features` (a custom named
    model, whose own features the XML does not list), or ``None``."""
    cpu = _cpu(live)
    if cpu is None or cpu.get("mode", "custom") != "custom":
        return None
    model = next(cpu.iterchildren("model"), None)
    if model is None or not (model.text or "").strip():
        return None
    copy = etree.fromstring(etree.tostring(cpu, with_tail=False))
    return etree.tostring(copy, encoding="unicode")


def host_offers(host_features: frozenset[Feature] | None, name: str) -> bool | None:
    """Whether the host's host-model CPU requires ``name``; ``None`` when it cannot say."""
    if host_features is None:
        return None
    return Feature(name, "require") in host_features or Feature(name, "force") in host_features


def _x86_nested(
    live: etree._Element,
    host_vendor: Vendor | None,
    host_features: frozenset[Feature] | None,
    cpu_features: frozenset[Feature] | None,
) -> bool:
    kind = live.get("type")
    if kind not in ("kvm", "qemu"):
        return False  # xen, lxc, the test driver's own type: no VMX/SVM to give
    cpu = _cpu(live)
    if cpu is None:
        return False  # QEMU's default CPU model carries neither
    listed = _features(cpu)
    off = {f.name for f in listed if f.policy in _OFF}
    if cpu.get("mode", "custom") in _HOST_MODES:
        if kind == "qemu":
            return False  # the host's KVM answers say nothing about what TCG emulates
        wanted = [NESTING_FEATURE[host_vendor]] if host_vendor else ["vmx", "svm"]
        return any(n not in off and host_offers(host_features, n) is not False for n in wanted)
    effective = cpu_features if cpu_features is not None else listed
    off |= {f.name for f in effective if f.policy in _OFF}
    on = {f.name for f in effective if f.policy in _ON}
    return bool(on & {"vmx", "svm"} - off)


def _power_nested(live: etree._Element) -> bool:
    features = next(live.iterchildren("features"), None)
    nested = next(features.iterchildren("nested-hv"), None) if features is not None else None
    return nested is not None and nested.get("state") == "on"


def _s390x_nested(live: etree._Element, cpu_features: frozenset[Feature] | None) -> bool:
    if live.get("type") != "kvm":
        return False
    cpu = _cpu(live)
    listed = _features(cpu)
    if any(f.name == "sief2" and f.policy in _OFF for f in listed):
        return False
    if cpu is None or cpu.get("mode", "custom") in _HOST_MODES:
        return True
    effective = cpu_features if cpu_features is not None else listed
    return any(f.name == "sief2" and f.policy in _ON for f in effective)


def running_verdict(
    live: etree._Element,
    *,
    host_vendor: Vendor | None = None,
    host_features: frozenset[Feature] | None = None,
    cpu_features: frozenset[Feature] | None = None,
) -> str:
    """``nested`` or ``not nested`` for a running domain's live XML (see the module doc).

    ``cpu_features``: the live custom CPU's features with its model's expanded
    (:func:`cpu_to_expand`), when the connection could tell; else the listed ones count."""
    family = FAMILY_OF_ARCH.get(arch_of(live))
    if family == "x86":
        nested = _x86_nested(live, host_vendor, host_features, cpu_features)
    elif family == "power":
        nested = _power_nested(live)
    elif family == "s390x":
        nested = _s390x_nested(live, cpu_features)
    else:
        nested = False
    return NESTED if nested else NOT_NESTED


def restart_pending(stored: str, running: str | None) -> bool:
    """The stored definition is already what the run asks for (``nested``, or with
    ``--disable`` ``not nested``) and the running one is not. A stored definition that
    would change, was refused or leaves nesting to the host, or a domain that is not
    running, is never pending: a restart would change nothing."""
    if running is None or stored not in (NESTED, NOT_NESTED):
        return False
    return stored != running


class StatusRow(NamedTuple):
    """One ``--status`` row; ``running`` is ``None`` for a domain that is not running."""

    name: str
    arch: str
    state: str
    stored: str
    running: str | None
    restart_pending: bool

    @property
    def exit_code(self) -> int:
        if self.stored.startswith(REFUSED):
            return ExitCode.REJECTED
        if self.stored == WOULD_CHANGE or self.restart_pending:
            return ExitCode.CHANGES
        return ExitCode.OK

    def json_line(self) -> str:
        """One JSON Lines record, keys sorted."""
        import json  # only --json pays for it

        return json.dumps(self._asdict(), sort_keys=True, ensure_ascii=False)


def row(name: str, arch: str, state: str, stored: str, running: str | None) -> StatusRow:
    return StatusRow(name, arch, state, stored, running, restart_pending(stored, running))


def exit_code(rows: Iterable[StatusRow]) -> int:
    """As ``--check``: 0 all nested, 1 some would change or wait for a restart, 3 refusals."""
    return max((r.exit_code for r in rows), default=ExitCode.OK)


class Exposure(NamedTuple):
    """The exposure inventory's counts, after the rows."""

    domains: int
    stored_nested: int  # stored definitions that expose vmx/svm (nested-hv, sie)
    running: int
    running_nested: int
    restart_pending: int

    def line(self) -> str:
        return (
            f"{self.stored_nested} of {self.domains} domains expose vmx/svm in their stored "
            f"definition; {self.running_nested} of {self.running} running domains have it "
            f"now; {self.restart_pending} restart pending"
        )

    def json_line(self) -> str:
        import json

        return json.dumps({"record": "summary", **self._asdict()}, sort_keys=True)


def exposure(rows: Iterable[StatusRow], *, disable: bool = False) -> Exposure:
    """Count the rows: how many expose nesting stored, running now, or wait for a restart
    (under ``--disable`` a stored definition that exposes it is one that would change)."""
    rows = list(rows)
    exposed = WOULD_CHANGE if disable else NESTED
    return Exposure(
        domains=len(rows),
        stored_nested=sum(r.stored == exposed for r in rows),
        running=sum(r.running is not None for r in rows),
        running_nested=sum(r.running == NESTED for r in rows),
        restart_pending=sum(r.restart_pending for r in rows),
    )


COLUMNS = ("NAME", "ARCH", "STATE", "STORED", "RUNNING", "")
_WIDTHS = (0, 8, 12, 14, 12)  # NAME's width is the caller's (the longest name)


def _line(cells: tuple[str, ...], name_width: int) -> str:
    widths = (max(name_width, len(COLUMNS[0])), *_WIDTHS[1:])
    parts = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=True)]
    return "  ".join([*parts, cells[-1]]).rstrip()


def header(name_width: int) -> str:
    return _line(COLUMNS, name_width)


def table_line(r: StatusRow, name_width: int) -> str:
    """One text row; columns line up when ``name_width`` is the longest name (known
    before the first row, so rows stream)."""
    note = "restart pending" if r.restart_pending else ""
    return _line((r.name, r.arch or "-", r.state, r.stored, r.running or "-", note), name_width)


def running_note(name: str) -> str:
    """What a running domain gets after ``-i`` defined its new CPU."""
    return (
        f"{name} is running: the new CPU takes effect after a full power-off "
        f"(virsh shutdown {name}; virsh start {name}); a reboot or reset is not enough"
    )
