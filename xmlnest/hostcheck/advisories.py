"""The nesting-relevant KVM advisories xmlnest knows, as data; nothing here decides.

One ``Advisory`` per CVE whose vulnerable path a guest reaches only through nesting: what
it needs, the commits that fix it, the first fixed release of each stable branch, the
first fixed mainline release, the packaged releases of distributions that backport (none
known yet) and the public sources. Each version carries the source that states it. The
kernel verdict (``hostcheck.kernel``) reads only this table, so the next advisory is one more
entry in ``ADVISORIES`` and nothing else.

Left out on purpose: CVE-2026-64561 ("Zapscape", fixed in 7.1.6 / 7.2-rc5,
coreos/fedora-coreos-tracker#2203). Its tracker calls it "a KVM guest escape and local
root, similar but separate to Januscape"; no source read says its path needs nesting, so
it is not a nesting advisory, and turning nesting off would not be its mitigation.
"""

from __future__ import annotations

from dataclasses import dataclass

ANSIBLE_61 = "https://github.com/cozystack/ansible-cozystack/pull/61"
ANSIBLE_60 = "https://github.com/cozystack/ansible-cozystack/pull/60"
COZY_3234 = "https://github.com/cozystack/cozystack/pull/3234"
COZY_3240 = "https://github.com/cozystack/cozystack/pull/3240"
COZY_3269 = "https://github.com/cozystack/cozystack/pull/3269"
FCOS_2183 = "https://github.com/coreos/fedora-coreos-tracker/issues/2183"
PVM_24 = "https://github.com/virt-pvm/linux/issues/24"
OSS_SECURITY = "https://www.openwall.com/lists/oss-security/2026/07/06/7"

NESTING_GUEST = "a guest using nesting (given vmx/svm, it runs guests of its own)"


@dataclass(frozen=True)
class Fixed:
    """A first fixed release and the public source that says so."""

    version: str  # "6.1.177", "7.2-rc1"
    source: str


@dataclass(frozen=True)
class PackageFix:
    """A distribution's first fixed kernel package, for kernels that backport fixes under
    an old upstream version (RHEL, Ubuntu, SUSE): compared within ``base`` only."""

    os_id: str  # /etc/os-release ID: "rhel", "ubuntu", "sles"
    base: str  # the kernel line it applies to: "4.18.0", "5.14.0", "6.8.0"
    release: str  # the first fixed package release: "4.18.0-553.58.1.el8_10"
    source: str


@dataclass(frozen=True)
class Advisory:
    """One nesting-relevant KVM advisory (see the module doc)."""

    cve: str
    name: str | None  # the public nickname, when it has one
    summary: str  # one sentence: what it is
    arch: str  # the host architecture it needs ("x86": Intel and AMD)
    needs: tuple[str, ...]  # what must hold for the path to be reachable
    commits: tuple[str, ...]  # upstream fixing commits (short ids)
    stable: tuple[Fixed, ...]  # first fixed release per stable branch
    mainline: Fixed | None  # first fixed mainline release
    packages: tuple[PackageFix, ...]
    sources: tuple[str, ...]  # public sources, most specific first

    @property
    def label(self) -> str:
        return f"{self.cve} ({self.name})" if self.name else self.cve


_BOTH_BRANCHES = ("7.1.3", "6.18.38", "6.12.95", "6.6.144", "6.1.177", "5.15.211", "5.10.260")

ADVISORIES: tuple[Advisory, ...] = (
    Advisory(
        cve="CVE-2026-53359",
        name="Januscape",
        summary="use-after-free in KVM x86's shadow-paging MMU (kvm_mmu_get_child_sp(), "
        "shadow-page role confusion): a guest escapes to the host",
        arch="x86",
        needs=("an Intel or AMD host", NESTING_GUEST),
        commits=("81ccda30b4e8",),
        stable=tuple(Fixed(v, ANSIBLE_61) for v in _BOTH_BRANCHES),
        mainline=Fixed("7.2-rc1", FCOS_2183),
        packages=(),
        sources=(
            OSS_SECURITY,
            ANSIBLE_61,
            ANSIBLE_60,
            COZY_3234,
            COZY_3240,
            COZY_3269,
            FCOS_2183,
            PVM_24,
        ),
    ),  # fmt: skip
    Advisory(
        cve="CVE-2026-46113",
        name=None,
        summary="use-after-free in KVM x86's shadow-paging MMU, the companion of "
        "CVE-2026-53359: a guest escapes to the host",
        arch="x86",
        needs=("an Intel or AMD host", NESTING_GUEST),
        commits=("0cb2af2ea66a",),
        stable=tuple(
            Fixed(v, COZY_3240) if v.startswith("6.18.") else Fixed(v, ANSIBLE_61)
            for v in ("7.1.3", "6.18.30", *_BOTH_BRANCHES[2:])
        ),
        # No source names 46113's mainline release; it was in 6.18.30 (#3240) weeks before
        # 7.2-rc1, and stable branches take only fixes already in mainline.
        mainline=Fixed("7.2-rc1", COZY_3240),
        packages=(),
        sources=(ANSIBLE_61, COZY_3240, COZY_3269, FCOS_2183),
    ),
)


def describe(advisories: tuple[Advisory, ...] = ADVISORIES) -> str:
    """The advisories as ``--explain XN223`` and the docs list them: each version with the
    source that gives it."""
    lines = ["Advisories:"]
    for a in advisories:
        lines += [
            f"  {a.label}: {a.summary}.",
            f"    needs: {'; '.join(a.needs)}",
            f"    fixing commit: {', '.join(a.commits)}",
        ]
        for fix in a.stable:
            lines.append(
                f"    first fixed on {fix.version.rsplit('.', 1)[0]}: {fix.version} ({fix.source})"
            )
        if a.mainline is not None:
            lines.append(
                f"    first fixed mainline release: {a.mainline.version} ({a.mainline.source})"
            )
        lines += [f"    source: {source}" for source in a.sources]
    return "\n".join(lines) + "\n"
