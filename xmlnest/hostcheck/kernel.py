"""The host kernel's verdict on the nesting advisories: patched, vulnerable or cannot tell.

Pure functions of three texts (``/proc/version``, ``/proc/version_signature``,
``/etc/os-release``) and the advisory table (``hostcheck.advisories``); ``read_verdict`` is the
one reader, under a host root. It never claims more than it knows:

- a kernel is compared only when its version is the upstream stable version: Debian's
  ``/proc/version`` ends in ``Debian 6.1.192-3 (date)`` (that, not the ABI name
  ``6.1.0-57-amd64``), Fedora's ``7.1.6-200.fc44``, Arch's ``6.18.44-arch1-1``, and
  upstream builds such as ``6.18.44-fc-v1272``;
- kernels that backport fixes under an old version (RHEL and its rebuilds, Ubuntu, SUSE,
  Proxmox, Oracle's UEK, Amazon Linux) are ``cannot tell`` unless the advisory names
  their first fixed package release;
- a branch the sources name is fixed from its listed release on; an end-of-life branch
  between two fixed branches never got the fix (vulnerable); a branch newer than every
  listed one is fixed from the mainline release on; an older one is ``cannot tell``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from xmlnest.hostcheck.advisories import ADVISORIES, Advisory

State = Literal["patched", "vulnerable", "cannot tell"]
PATCHED: Final = "patched"
VULNERABLE: Final = "vulnerable"
CANNOT_TELL: Final = "cannot tell"

Version = tuple[int, int, int, int]  # major, minor, sublevel, rc (FINAL for a release)
FINAL = 1 << 16

# /etc/os-release IDs whose kernels carry fixes under an old upstream version.
BACKPORTERS = frozenset(
    {
        "rhel", "centos", "rocky", "almalinux", "ol", "circle", "eurolinux", "cloudlinux",
        "ubuntu", "linuxmint", "pop", "elementary", "zorin",
        "sles", "sled", "sles_sap", "opensuse-leap", "amzn", "azurelinux", "mariner",
    }
)  # fmt: skip
# Marks in the kernel release of such kernels, whatever os-release says (a container's
# os-release is not the host's kernel's distribution).
_BACKPORT_RELEASE = re.compile(
    r"\.el\d|\.module\+el|-generic\b|-lowlatency\b|-(?:aws|azure|gcp|gke|oracle|kvm)\b|"
    r"-pve\b|uek|\.amzn\d|-default\b|\.\d+-default|-azure\b|\.cm2\b|\.azl\d",
)
_RELEASE = re.compile(r"^Linux version (\S+)")
# The last words: "... #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-05-28)"; the compiler's
# "(gcc-12 (Debian 12.2.0-14) 12.2.0 ...)" earlier in the line is not the kernel's version.
_DEBIAN = re.compile(r"\bDebian (\d+\.\d+\.\d+)(?:-(\S+))? \([^()]*\)\s*$")
_UPSTREAM = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-rc(\d+))?(?=$|[-+_.~])")
_FEDORA = re.compile(r"^(\d+)\.(\d+)\.(\d+)-(?:0\.rc(\d+)\.)?[\w.]*?\.fc\d+")
_ARCH = re.compile(r"-arch\d|-lts\b|-zen\d|-hardened\d")


@dataclass(frozen=True)
class Kernel:
    """What the three texts say about the running kernel."""

    release: str | None  # uname -r: "6.1.0-57-amd64"
    version: Version | None  # the comparable upstream version, when there is one
    shown: str  # "6.1.192 (Debian 6.1.192-3)", "4.18.0-553.el8_10.x86_64"
    kind: str  # "debian", "fedora", "arch", "upstream", "backport", "unknown"
    os_id: str | None


@dataclass(frozen=True)
class KernelVerdict:
    """The verdict on one kernel against the advisories (``--json``'s ``kernel`` record)."""

    state: State
    kernel: str  # Kernel.shown, or "unknown"
    release: str | None
    cves: tuple[str, ...]  # vulnerable: the ones that apply; cannot tell: the ones to check
    fixed_in: str | None  # vulnerable: the first release that fixes all of them
    branch_eol: bool  # vulnerable: the host's branch gets no fix (fixed_in is on another)
    reason: str
    sources: tuple[str, ...]

    @property
    def vulnerable(self) -> bool:
        return self.state == VULNERABLE


def parse_version(text: str) -> Version | None:
    """``"6.1.177"`` -> (6, 1, 177, FINAL); ``"7.2-rc1"`` -> (7, 2, 0, 1)."""
    match = _UPSTREAM.match(text)
    if match is None:
        return None
    major, minor, sub, rc = match.groups()
    return (int(major), int(minor), int(sub or 0), int(rc) if rc else FINAL)


def show(version: Version) -> str:
    major, minor, sub, rc = version
    base = f"{major}.{minor}.{sub}" if sub or rc == FINAL else f"{major}.{minor}"
    return base if rc == FINAL else f"{base}-rc{rc}"


def os_ids(os_release: Mapping[str, str]) -> tuple[str | None, frozenset[str]]:
    """``ID`` and the set of ``ID`` plus ``ID_LIKE`` words, lower-cased."""
    os_id = os_release.get("ID", "").strip().lower() or None
    like = {w.lower() for w in os_release.get("ID_LIKE", "").split()}
    return os_id, frozenset(like | ({os_id} if os_id else set()))


def identify(
    proc_version: str | None, signature: str | None, os_release: Mapping[str, str]
) -> Kernel:
    """Read the kernel's identity; ``version`` is set only where it can be compared."""
    os_id, family = os_ids(os_release)
    match = _RELEASE.match((proc_version or "").strip())
    release = match.group(1) if match else None
    if release is None:
        return Kernel(None, None, "unknown", "unknown", os_id)
    debian = _DEBIAN.search(proc_version or "")
    if debian is not None:
        version = parse_version(debian.group(1))
        package = debian.group(1) + (f"-{debian.group(2)}" if debian.group(2) else "")
        if version is not None:
            return Kernel(release, version, f"{show(version)} (Debian {package})", "debian", os_id)
    if signature or _BACKPORT_RELEASE.search(release) or family & BACKPORTERS:
        said = f"{release} ({signature.strip()})" if signature else release
        return Kernel(release, None, said, "backport", os_id)
    fedora = _FEDORA.match(release)
    if fedora is not None:
        major, minor, sub, rc = fedora.groups()
        version = (int(major), int(minor), int(sub), int(rc) if rc else FINAL)
        return Kernel(release, version, f"{show(version)} (Fedora {release})", "fedora", os_id)
    version = parse_version(release)
    if version is None:
        return Kernel(release, None, release, "unknown", os_id)
    if version[2] == 0 and version[3] == FINAL and re.match(r"^\d+\.\d+\.0-\d", release):
        # "6.1.0-57-amd64": a distribution's ABI name, not an upstream release
        return Kernel(release, None, release, "unknown", os_id)
    kind = "arch" if _ARCH.search(release) or "arch" in family else "upstream"
    return Kernel(release, version, release, kind, os_id)


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text))


@dataclass(frozen=True)
class _One:
    state: State
    fixed_in: Version | None = None  # vulnerable: where this CVE's fix is
    eol: bool = False
    package: str | None = None  # vulnerable: the distribution's fixed package release


def _judge(kernel: Kernel, advisory: Advisory) -> _One:
    if kernel.kind == "backport":
        for pkg in advisory.packages:
            release = kernel.release or ""
            if pkg.os_id == kernel.os_id and release.startswith(pkg.base + "-"):
                ok = _numbers(release) >= _numbers(pkg.release)
                return _One(PATCHED) if ok else _One(VULNERABLE, package=pkg.release)
        return _One(CANNOT_TELL)
    version = kernel.version
    if version is None:
        return _One(CANNOT_TELL)
    fixes = sorted(v for v in (parse_version(f.version) for f in advisory.stable) if v)
    branch = version[:2]
    for fix in fixes:
        if fix[:2] == branch:
            return _One(PATCHED) if version >= fix else _One(VULNERABLE, fix)
    if not fixes or branch < fixes[0][:2]:
        return _One(CANNOT_TELL)  # older than every branch the sources name
    if branch > fixes[-1][:2]:
        mainline = parse_version(advisory.mainline.version) if advisory.mainline else None
        if mainline is None:
            return _One(CANNOT_TELL)
        return _One(PATCHED) if version >= mainline else _One(VULNERABLE, mainline)
    above = next(fix for fix in fixes if fix[:2] > branch)
    return _One(VULNERABLE, above, eol=True)  # an end-of-life branch between fixed ones


def verdict(kernel: Kernel, advisories: Iterable[Advisory] = ADVISORIES) -> KernelVerdict:
    """The kernel against every advisory (the caller keeps to those of the host's arch)."""
    judged = [(a, _judge(kernel, a)) for a in advisories]
    bad = [(a, one) for a, one in judged if one.state == VULNERABLE]
    unsure = [a for a, one in judged if one.state == CANNOT_TELL]
    sources = tuple(dict.fromkeys(s for a, _ in judged for s in a.sources))
    if bad:
        fixes = [one.fixed_in for _, one in bad if one.fixed_in is not None]
        packages = sorted({one.package for _, one in bad if one.package}, key=_numbers)
        fixed_in = show(max(fixes)) if fixes else (packages[-1] if packages else None)
        eol = any(one.eol for _, one in bad)
        cves = tuple(a.cve for a, _ in bad)
        return KernelVerdict(
            VULNERABLE, kernel.shown, kernel.release, cves, fixed_in, eol,
            _vulnerable_reason(kernel, cves, fixed_in, eol, [a.cve for a in unsure]), sources,
        )  # fmt: skip
    if unsure:
        cves = tuple(a.cve for a in unsure)
        return KernelVerdict(
            CANNOT_TELL, kernel.shown, kernel.release, cves, None, False,
            _unsure_reason(kernel), sources,
        )  # fmt: skip
    cves = tuple(a.cve for a, _ in judged)
    said = " and ".join(cves) or "no known advisory"
    return KernelVerdict(
        PATCHED, kernel.shown, kernel.release, (), None, False,
        f"kernel {kernel.shown} has the fixes for {said}", sources,
    )  # fmt: skip


def _vulnerable_reason(
    kernel: Kernel, cves: tuple[str, ...], fixed_in: str | None, eol: bool, unsure: list[str]
) -> str:
    text = f"kernel {kernel.shown} has {' and '.join(cves)}"
    if fixed_in and eol and kernel.version:
        branch = f"{kernel.version[0]}.{kernel.version[1]}"
        text += f"; {branch} is end-of-life and gets no fix: the next branch's is {fixed_in}"
    elif fixed_in:
        text += f"; fixed in {fixed_in}"
    if unsure:
        text += f" (and cannot tell for {' and '.join(unsure)})"
    return text


def _unsure_reason(kernel: Kernel) -> str:
    if kernel.kind == "backport":
        return (
            f"kernel {kernel.shown} is a distribution's, which carries fixes under an old "
            "version number"
        )
    if kernel.release is None:
        return "cannot read /proc/version"
    if kernel.version is None:
        return f"kernel {kernel.shown} does not name an upstream version to compare"
    return f"kernel {kernel.shown} is older than every branch the advisories name"


def applicable(arch: str, advisories: Iterable[Advisory] = ADVISORIES) -> tuple[Advisory, ...]:
    """The advisories for a host of ``arch`` ("x86", "power", ...)."""
    return tuple(a for a in advisories if a.arch == arch)


def read_kernel(root: Path) -> Kernel:
    """Read ``/proc/version``, ``/proc/version_signature`` and ``/etc/os-release`` under
    ``root`` (the one reader here)."""
    from xmlnest.hostcheck import probe

    return identify(
        probe.read_host(root, "/proc/version"),
        probe.read_host(root, "/proc/version_signature"),
        probe.os_release(root),
    )


def read_verdict(root: Path, arch: str = "x86") -> KernelVerdict:
    """The kernel under ``root`` judged against the advisories of ``arch``."""
    return verdict(read_kernel(root), applicable(arch))
