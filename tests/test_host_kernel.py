"""xmlnest.hostcheck.kernel: the kernel verdict as tables of real-world version strings, and the
advisory data's own consistency."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmlnest.hostcheck import kernel as host_kernel
from xmlnest.hostcheck.advisories import ADVISORIES, Advisory, Fixed, PackageFix
from xmlnest.hostcheck.kernel import CANNOT_TELL, PATCHED, VULNERABLE, identify, verdict

BOTH = ("CVE-2026-53359", "CVE-2026-46113")
J = ("CVE-2026-53359",)
DEBIAN = {"ID": "debian", "VERSION_ID": "12"}
FEDORA = {"ID": "fedora", "VERSION_ID": "44"}
ARCH = {"ID": "arch"}
RHEL9 = {"ID": "rhel", "VERSION_ID": "9.6", "ID_LIKE": "fedora"}
ROCKY8 = {"ID": "rocky", "VERSION_ID": "8.10", "ID_LIKE": "rhel centos fedora"}
UBUNTU = {"ID": "ubuntu", "VERSION_ID": "24.04", "ID_LIKE": "debian"}
SLES = {"ID": "sles", "VERSION_ID": "15.6"}
NONE: dict[str, str] = {}


def pv(release: str, tail: str = "#1 SMP PREEMPT_DYNAMIC Thu Jul  9 10:00:00 UTC 2026") -> str:
    return f"Linux version {release} (builder@host) (gcc (GCC) 15.3.0, GNU ld 2.46) {tail}"


def deb(abi: str, package: str) -> str:
    return (
        f"Linux version {abi} (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) "
        f"12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian {package} "
        "(2026-05-28)"
    )


# (case, /proc/version, /proc/version_signature, os-release, state, CVEs, fixed in)
CASES = [
    ("Debian 12 unpatched", deb("6.1.0-40-amd64", "6.1.170-1"), None, DEBIAN, VULNERABLE, BOTH, "6.1.177"),
    ("Debian 12 first fixed", deb("6.1.0-41-amd64", "6.1.177-1"), None, DEBIAN, PATCHED, (), None),
    ("Debian 12 later", deb("6.1.0-57-amd64", "6.1.192-3"), None, DEBIAN, PATCHED, (), None),
    ("Debian backports 6.12", deb("6.12.33+bpo-amd64", "6.12.33-1~bpo12+1"), None, DEBIAN, VULNERABLE, BOTH, "6.12.95"),
    ("Debian 11 5.10 unpatched", deb("5.10.0-35-amd64", "5.10.237-1"), None, DEBIAN, VULNERABLE, BOTH, "5.10.260"),
    ("Debian 11 5.10 fixed", deb("5.10.0-36-amd64", "5.10.260-1"), None, DEBIAN, PATCHED, (), None),
    ("Fedora 7.1.2", pv("7.1.2-200.fc44.x86_64"), None, FEDORA, VULNERABLE, BOTH, "7.1.3"),
    ("Fedora 7.1.3", pv("7.1.3-200.fc44.x86_64"), None, FEDORA, PATCHED, (), None),
    ("Fedora 7.1.6", pv("7.1.6-200.fc44.x86_64"), None, FEDORA, PATCHED, (), None),
    ("Fedora rawhide rc1", pv("7.2.0-0.rc1.20260701git1.20.fc45.x86_64"), None, FEDORA, PATCHED, (), None),
    ("Fedora rawhide rc6", pv("7.2.0-0.rc6.260805gc21bb4193868.50.fc45.x86_64"), None, FEDORA, PATCHED, (), None),
    ("Arch 6.18.36", pv("6.18.36-arch1-1"), None, ARCH, VULNERABLE, J, "6.18.38"),
    ("Arch 6.18.24: neither", pv("6.18.24-arch1-1"), None, ARCH, VULNERABLE, BOTH, "6.18.38"),
    ("Arch LTS 6.12.95", pv("6.12.95-1-lts"), None, ARCH, PATCHED, (), None),
    ("upstream 7.1.2", pv("7.1.2"), None, NONE, VULNERABLE, BOTH, "7.1.3"),
    ("upstream 7.1.3", pv("7.1.3"), None, NONE, PATCHED, (), None),
    ("upstream 6.18.44 local", pv("6.18.44-fc-v1272"), None, DEBIAN, PATCHED, (), None),
    ("upstream 6.18.29", pv("6.18.29-custom"), None, NONE, VULNERABLE, BOTH, "6.18.38"),
    ("upstream 6.18.30", pv("6.18.30-custom"), None, NONE, VULNERABLE, J, "6.18.38"),
    ("EOL 6.19", pv("6.19.11"), None, NONE, VULNERABLE, BOTH, "7.1.3"),
    ("EOL 7.0", pv("7.0.9-custom"), None, NONE, VULNERABLE, BOTH, "7.1.3"),
    ("EOL 6.8 between 6.6 and 6.12", pv("6.8.12"), None, NONE, VULNERABLE, BOTH, "6.12.95"),
    ("EOL 5.19", pv("5.19.17"), None, NONE, VULNERABLE, BOTH, "6.1.177"),
    ("mainline 7.2-rc1", pv("7.2.0-rc1"), None, NONE, PATCHED, (), None),
    ("mainline 7.3", pv("7.3.4"), None, NONE, PATCHED, (), None),
    ("6.18-rc3 before 6.18.0", pv("6.18.0-rc3"), None, NONE, VULNERABLE, BOTH, "6.18.38"),
    ("older than every branch", pv("5.4.290"), None, NONE, CANNOT_TELL, BOTH, None),
    ("RHEL 8", pv("4.18.0-553.58.1.el8_10.x86_64"), None, RHEL9, CANNOT_TELL, BOTH, None),
    ("Rocky 8", pv("4.18.0-553.el8_10.x86_64"), None, ROCKY8, CANNOT_TELL, BOTH, None),
    ("RHEL 9", pv("5.14.0-570.12.1.el9_6.x86_64"), None, RHEL9, CANNOT_TELL, BOTH, None),
    ("Ubuntu generic", pv("6.8.0-60-generic", "#63-Ubuntu SMP PREEMPT_DYNAMIC"), "Ubuntu 6.8.0-60.63-generic 6.8.12", UBUNTU, CANNOT_TELL, BOTH, None),
    ("Ubuntu kernel, no signature file", pv("6.8.0-60-generic"), None, NONE, CANNOT_TELL, BOTH, None),
    ("Ubuntu HWE looks new", pv("6.14.0-27-generic"), None, UBUNTU, CANNOT_TELL, BOTH, None),
    ("SUSE", pv("6.4.0-150600.23.25-default"), None, SLES, CANNOT_TELL, BOTH, None),
    ("Proxmox on Debian", pv("6.8.12-4-pve", "#1 SMP PREEMPT_DYNAMIC PMX 6.8.12-4 (2024-11-06T12:24Z)"), None, DEBIAN, CANNOT_TELL, BOTH, None),
    ("Oracle UEK", pv("5.15.0-300.163.18.el9uek.x86_64"), None, {"ID": "ol"}, CANNOT_TELL, BOTH, None),
    ("Debian ABI without its tag", pv("6.1.0-57-amd64"), None, DEBIAN, CANNOT_TELL, BOTH, None),
    ("no /proc/version", None, None, DEBIAN, CANNOT_TELL, BOTH, None),
    ("garbage", "Linux version ??? (x)", None, NONE, CANNOT_TELL, BOTH, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("proc_version", "signature", "os_release", "state", "cves", "fixed_in"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_verdict(
    proc_version: str | None,
    signature: str | None,
    os_release: dict[str, str],
    state: str,
    cves: tuple[str, ...],
    fixed_in: str | None,
) -> None:
    v = verdict(identify(proc_version, signature, os_release))
    assert (v.state, v.cves, v.fixed_in) == (state, cves, fixed_in), v.reason


def test_debian_compares_the_package_version_not_the_abi_name() -> None:
    k = identify(deb("6.1.0-57-amd64", "6.1.192-3"), None, DEBIAN)
    assert (k.kind, k.version, k.shown) == (
        "debian",
        (6, 1, 192, host_kernel.FINAL),
        "6.1.192 (Debian 6.1.192-3)",
    )
    # the compiler's "(Debian 12.2.0-14)" is never taken for the kernel
    assert (
        identify(pv("6.18.44", "(gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP"), None, DEBIAN).kind
        == "upstream"
    )


def test_eol_branch_says_where_the_fix_is() -> None:
    v = verdict(identify(pv("6.19.11"), None, NONE))
    assert v.branch_eol and "6.19 is end-of-life" in v.reason and "7.1.3" in v.reason


def test_the_6_18_branch_is_per_cve() -> None:
    v = verdict(identify(pv("6.18.36-arch1-1"), None, ARCH))
    assert v.cves == ("CVE-2026-53359",) and v.reason == (
        "kernel 6.18.36-arch1-1 has CVE-2026-53359; fixed in 6.18.38"
    )


def test_cannot_tell_names_what_to_check_and_why() -> None:
    v = verdict(identify(pv("5.14.0-570.12.1.el9_6.x86_64"), None, RHEL9))
    assert v.cves == BOTH and "old version number" in v.reason


def _with(**changes: object) -> Advisory:
    import dataclasses

    return dataclasses.replace(ADVISORIES[0], **changes)  # type: ignore[arg-type]


def test_a_named_package_release_decides_a_backporting_kernel() -> None:
    """The data may name a distribution's fixed package: then RHEL gets a verdict."""
    fixed = PackageFix("rhel", "5.14.0", "5.14.0-570.30.1.el9_6", "https://example.invalid/RHSA")
    data = (_with(packages=(fixed,)),)
    old = identify(pv("5.14.0-570.12.1.el9_6.x86_64"), None, RHEL9)
    new = identify(pv("5.14.0-570.31.1.el9_6.x86_64"), None, RHEL9)
    other = identify(pv("4.18.0-553.el8_10.x86_64"), None, RHEL9)
    assert (verdict(old, data).state, verdict(old, data).fixed_in) == (VULNERABLE, fixed.release)
    assert verdict(new, data).state == PATCHED
    assert verdict(other, data).state == CANNOT_TELL


def test_the_next_advisory_is_a_data_change_only() -> None:
    """A made-up third advisory, fixed later on 7.1 and absent from 6.1: the verdict
    names it beside the others with no code change."""
    extra = Advisory(
        cve="CVE-2099-0001", name="Testscape", summary="made up", arch="x86",
        needs=("a guest using nesting",), commits=("deadbeef",),
        stable=(Fixed("7.1.9", "x"), Fixed("6.18.50", "x")), mainline=Fixed("7.3-rc2", "x"),
        packages=(), sources=("https://example.invalid/",),
    )  # fmt: skip
    data = (*ADVISORIES, extra)
    v = verdict(identify(pv("7.1.6-200.fc44.x86_64"), None, FEDORA), data)
    assert (v.state, v.cves, v.fixed_in) == (VULNERABLE, ("CVE-2099-0001",), "7.1.9")
    v = verdict(identify(pv("7.2.4"), None, NONE), data)
    assert (v.state, v.cves, v.fixed_in) == (VULNERABLE, ("CVE-2099-0001",), "7.3-rc2")
    old = verdict(identify(pv("6.1.190"), None, NONE), data)
    assert old.state == CANNOT_TELL and old.cves == ("CVE-2099-0001",)


def test_applicable_keeps_to_the_hosts_arch() -> None:
    assert host_kernel.applicable("x86") == ADVISORIES
    assert host_kernel.applicable("power") == ()
    v = verdict(identify(pv("6.1.100"), None, NONE), host_kernel.applicable("power"))
    assert v.state == PATCHED and v.cves == ()


def test_every_advisory_is_complete_and_sourced() -> None:
    for a in ADVISORIES:
        assert a.cve.startswith("CVE-") and a.arch == "x86" and a.commits and a.sources
        assert any("nest" in need for need in a.needs)
        for fix in (*a.stable, *([a.mainline] if a.mainline else [])):
            assert host_kernel.parse_version(fix.version) is not None, fix
            assert fix.source.startswith("https://") and fix.source in a.sources, fix
        branches = [f.version.rsplit(".", 1)[0] for f in a.stable]
        assert len(branches) == len(set(branches)), a.cve
    assert "CVE-2026-64561" not in {a.cve for a in ADVISORIES}  # no source says it needs nesting


def test_versions_as_the_sources_give_them() -> None:
    stable = {a.cve: {f.version for f in a.stable} for a in ADVISORIES}
    both = {"7.1.3", "6.12.95", "6.6.144", "6.1.177", "5.15.211", "5.10.260"}
    assert stable["CVE-2026-53359"] == both | {"6.18.38"}
    assert stable["CVE-2026-46113"] == both | {"6.18.30"}


def test_read_verdict_reads_the_three_files(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "proc" / "version").write_text(deb("6.1.0-40-amd64", "6.1.170-1") + "\n")
    (tmp_path / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    v = host_kernel.read_verdict(tmp_path)
    assert (v.state, v.kernel, v.fixed_in) == (VULNERABLE, "6.1.170 (Debian 6.1.170-1)", "6.1.177")
    assert host_kernel.read_verdict(tmp_path, "s390x").state == PATCHED  # nothing applies


def test_this_machine_gets_a_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    """CI's own kernel, from the real /proc/version: printed, and one of the three."""
    v = host_kernel.read_verdict(Path("/"))
    with capsys.disabled():
        print(f"\nthis machine: {v.state}: {v.reason}")
    assert v.state in (PATCHED, VULNERABLE, CANNOT_TELL)
    assert v.release == Path("/proc/version").read_text().split()[2]
