"""Guest-OS advice (XN205, XN206, XN214): the domain's libosinfo id against the reference
document's tested environments."""

from __future__ import annotations

import re

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Finding, Level
from xmlnest.engine.transforms.common import Context, line

LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
_RHEL = re.compile(r"^http://redhat\.com/rhel/(\d+)\.(\d+|unknown)$")
_TESTED_WINDOWS = ("http://microsoft.com/win/2k16", "http://microsoft.com/win/2k19")


def os_id(ctx: Context) -> tuple[str, int | None] | None:
    """The libosinfo OS id in ``<metadata>`` and its line, if the domain records one."""
    metadata = ctx.child(ctx.root, "metadata")
    if metadata is None:
        return None
    for os_el in metadata.iter(f"{{{LIBOSINFO_NS}}}os"):
        ident = os_el.get("id")
        if ident:
            return ident, line(os_el)
    return None


def _tested(ident: str, level: str, target: str) -> bool:
    """Inside the reference document's tested matrix (for POWER9: RHEL 8 only)."""
    m = _RHEL.match(ident)
    if m:
        major, minor = int(m.group(1)), m.group(2)
        if target == "power9":
            return major == 8 or (level == "l2" and major == 7)
        if minor == "unknown":
            return major == 8
        return (major == 7 and int(minor) >= 8) or (major == 8 and int(minor) >= 2)
    return level == "l1" and target != "power9" and ident in _TESTED_WINDOWS


def guest_os(ctx: Context, level: str, target: str) -> list[Finding]:
    found = os_id(ctx)
    if found is None:
        return [
            Finding(
                "XN206",
                "no libosinfo metadata: the guest OS is unknown",
                hint=rule_hint("XN206"),
                line=None,
                level=Level.INFO,
            )
        ]
    ident, where = found
    if _tested(ident, level, target):
        if target == "power9" and level == "l2" and ident.startswith("http://redhat.com/rhel/7"):
            return [
                Finding(
                    "XN214",
                    "a RHEL 7 L2 on POWER9 nests only with the rhel-alt kernel, which the "
                    "metadata cannot show",
                    hint=rule_hint("XN214"),
                    line=where,
                )
            ]
        return []
    which = "L1" if level == "l1" else "L2"
    older = _older_rhel_family(ident, target)
    if target == "power9":
        tested = "RHEL 8" if level == "l1" else "RHEL 8, or RHEL 7 with the rhel-alt kernel"
    elif level == "l1":
        tested = "RHEL 7.8+, RHEL 8.2+, Windows Server 2016/2019"
    else:
        tested = "RHEL 7.8+, RHEL 8.2+"
    return [
        Finding(
            "XN205",
            f"guest OS {ident} is outside the tested {which} environments ({tested})",
            hint=rule_hint("XN205", "" if older else "newer"),
            line=where,
            level=Level.WARNING if older else Level.INFO,
        )
    ]


_RHEL_FAMILY = re.compile(
    r"^http://(?:redhat\.com/rhel|centos\.org/centos|rockylinux\.org/rocky|"
    r"almalinux\.org/almalinux)/(\d+)(?:\.(\d+))?(?:-unknown)?$"
)


def _older_rhel_family(ident: str, target: str) -> bool:
    """A RHEL-family guest older than the tested versions (7.8+ and 8.2+; POWER9: 8)."""
    m = _RHEL_FAMILY.match(ident)
    if m is None:
        return False
    major = int(m.group(1))
    if target == "power9":
        return major < 8
    if major < 7 or m.group(2) is None:  # no minor ("centos/8", "8-unknown"): cannot tell
        return major < 7
    minor = int(m.group(2))
    return (major == 7 and minor < 8) or (major == 8 and minor < 2)
