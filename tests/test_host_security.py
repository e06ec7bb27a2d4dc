"""--host-check's Security item over the captured security trees (tests/hosts/sec-*): the
verdict, the exit code, both ways out, and the notes when nesting is off or xmlnest
cannot tell. Their whole reports are golden files in tests/host_reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_host_checks import tree
from xmlnest.hostcheck.check import host_check, render_json, render_text
from xmlnest.hostcheck.report import STOP_VMS

HOSTS = Path(__file__).parent / "hosts"
BOTH = ["CVE-2026-53359", "CVE-2026-46113"]

# name: (Security level, kernel state, CVEs named, fixed in, exit code)
TREES = {
    "sec-debian12-unpatched-on": ("action needed", "vulnerable", BOTH, "6.1.177", 1),
    "sec-debian12-unpatched-off": ("note", "vulnerable", BOTH, "6.1.177", 1),
    "sec-debian12-patched-on": ("ok", "patched", [], None, 0),
    "sec-fedora-7.1.2-on": ("action needed", "vulnerable", BOTH, "7.1.3", 1),
    "sec-fedora-7.1.3-on": ("ok", "patched", [], None, 0),
    "sec-upstream-6.18.36-on": ("action needed", "vulnerable", ["CVE-2026-53359"], "6.18.38", 1),
    "sec-upstream-6.18.44-on": ("ok", "patched", [], None, 0),
    "sec-upstream-6.19-eol-on": ("action needed", "vulnerable", BOTH, "7.1.3", 1),
    "sec-rhel8-on": ("note", "cannot tell", BOTH, None, 0),
    "sec-rhel9-on": ("note", "cannot tell", BOTH, None, 0),
    "sec-ubuntu-on": ("note", "cannot tell", BOTH, None, 0),
}


@pytest.mark.parametrize("name", sorted(TREES))
def test_security_item_and_exit_code(name: str) -> None:
    level, state, cves, fixed_in, code = TREES[name]
    data = json.loads(render_json(host_check(HOSTS / name)))
    [item] = data["security"]
    assert (item["level"], item["kernel"]["state"]) == (level, state)
    assert (item["kernel"]["cves"], item["kernel"]["fixed_in"]) == (cves, fixed_in)
    assert data["exit_code"] == code
    r = run_cli(["--host-check", "--host-root", str(HOSTS / name)])
    assert r.code == code and r.out.decode() == render_text(host_check(HOSTS / name))


def test_action_needed_gives_both_ways_out() -> None:
    text = render_text(host_check(HOSTS / "sec-debian12-unpatched-on"))
    steps = text[text.index("To close CVE-2026-53359 and CVE-2026-46113 (as root), either:") :]
    assert "  - upgrade the kernel to 6.1.177 or later and reboot, or\n" in steps
    assert f"  - turn nesting off until then. {STOP_VMS}\n" in steps
    assert "      modprobe -r kvm_intel\n      modprobe kvm_intel nested=0\n" in steps
    assert "add 'options kvm_intel nested=0' to /etc/modprobe.d/kvm.conf" in steps
    assert "Security:     ACTION NEEDED: nesting is on and the kernel has" in text
    assert text.endswith("(see Security) (exit 1)\n")
    # no advice to persist nesting on while the kernel says turn it off
    assert "add 'options kvm_intel nested=1'" not in text


def test_a_modprobe_d_line_that_turns_it_on_is_named_to_replace() -> None:
    text = render_text(host_check(HOSTS / "sec-fedora-7.1.2-on"))
    assert (
        "in /etc/modprobe.d/kvm.conf, replace 'options kvm_amd nested=1' with "
        "'options kvm_amd nested=0'" in " ".join(text.split())
    )


def test_a_kernel_argument_that_turns_it_on_is_named(tmp_path: Path) -> None:
    root = tree(tmp_path, "sec-debian12-unpatched-on", {"proc/cmdline": "ro kvm-intel.nested=1\n"})
    text = " ".join(render_text(host_check(root)).split())
    assert "the kernel command line's kvm-intel.nested=1 wins over modprobe.d" in text
    assert "replace it with kvm_intel.nested=0 in the boot loader's configuration" in text


def test_nesting_off_on_a_vulnerable_kernel_is_a_note_and_enabling_says_upgrade_first() -> None:
    text = render_text(host_check(HOSTS / "sec-debian12-unpatched-off"))
    assert "Security:     vulnerable: the kernel has CVE-2026-53359 and CVE-2026-46113; " in text
    assert "To close" not in text
    enable = text[text.index("To enable nesting now") :]
    assert enable.index("First upgrade the kernel to 6.1.177 or later") < enable.index("modprobe")


def test_eol_branch_names_the_next_branch() -> None:
    text = render_text(host_check(HOSTS / "sec-upstream-6.19-eol-on"))
    assert "6.19 is end-of-life and gets no fix: the next branch's is 7.1.3" in text


def test_cannot_tell_names_the_advisories_and_the_sources() -> None:
    text = render_text(host_check(HOSTS / "sec-ubuntu-on"))
    assert "Security:     cannot tell: " in text and "CVE-2026-53359 and CVE-2026-46113" in text
    assert "Ubuntu 6.8.0-60.63-generic 6.8.12" in text
    assert "cozystack/ansible-cozystack#61" in text and "oss-security 2026-07-06" in text


def test_an_l1_running_kvm_is_checked_the_same_way(tmp_path: Path) -> None:
    """An L1 that runs KVM for its own guests is a KVM host too."""
    version = (HOSTS / "sec-fedora-7.1.2-on" / "proc" / "version").read_text()
    root = tree(tmp_path, "l1-intel-vmx", {"proc/version": version})
    report = host_check(root)
    assert report.place.kind == "vm" and report.enabled
    assert report.security[0].level == "action needed" and report.exit_code == 1


def test_other_arches_have_no_advisory() -> None:
    for name in ("power9-on", "ibmz-on", "arm"):
        report = host_check(HOSTS / name)
        assert report.security == ()
        assert "no nesting advisory xmlnest knows of applies" in render_text(report)


def test_the_docs_show_what_the_code_prints() -> None:
    """docs/host-security.md: the captured host's report and --explain XN223, byte for byte."""
    from tests.conftest import REPO
    from xmlnest.api import explain

    doc = (REPO / "docs" / "host-security.md").read_text()
    name = "sec-debian12-unpatched-on"
    report = render_text(host_check(HOSTS / name))
    assert f"```\n$ xmlnest --host-check --host-root tests/hosts/{name}\n{report}```" in doc
    assert f"```\n$ xmlnest --explain XN223\n{explain('XN223')}```" in doc
    for cve in ("CVE-2026-53359", "CVE-2026-46113", "CVE-2026-64561"):
        assert cve in doc
    assert "docs/host-security.md" in (REPO / "README.md").read_text()


def test_pvm_reaches_the_shadow_mmu_without_nesting(tmp_path: Path) -> None:
    """virt-pvm/linux#24: PVM runs its guests on the shadow MMU, so nesting off does not
    close the path; the note says so where the kernel is not known to be fixed."""
    version = (HOSTS / "sec-fedora-7.1.2-on" / "proc" / "version").read_text()
    vulnerable = tree(tmp_path / "v", "pvm-guest", {"proc/version": version})
    assert any("virt-pvm/linux#24" in note for note in host_check(vulnerable).notes)
    fixed = (HOSTS / "sec-fedora-7.1.3-on" / "proc" / "version").read_text()
    patched = tree(tmp_path / "p", "pvm-guest", {"proc/version": fixed})
    assert not any("virt-pvm/linux#24" in note for note in host_check(patched).notes)
