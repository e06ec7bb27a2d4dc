"""Tests for the checks around the nested parameter: where am I, /dev/kvm, firmware, speed,
kernel command line, distribution notes, --host-root errors, the full report of every
fixture tree (tests/host_reports), and one run on the real machine."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from xmlnest.errors import UsageError
from xmlnest.hostcheck import probe as host_probe
from xmlnest.hostcheck import users as host_users
from xmlnest.hostcheck.check import (
    EXIT_ACTION_NEEDED,
    EXIT_READY,
    EXIT_UNSUPPORTED,
    TECH_PREVIEW,
    host_check,
    render_json,
    render_text,
)

HOSTS = Path(__file__).parent / "hosts"
REPORTS = Path(__file__).parent / "host_reports"
NAMES = sorted(p.name for p in HOSTS.iterdir() if p.is_dir())
NODE = "kind = char\nrdev = 10:232\nmode = {mode}\nuid = {uid}\ngid = {gid}\n"
ROOT_STATUS = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n"


def check(name: str) -> object:
    return host_check(HOSTS / name)


def tree(root: Path, base: str | None, files: Mapping[str, str | bytes]) -> Path:
    """A copy of fixture ``base`` (or nothing) with ``files`` added or replaced."""
    if base is not None:
        for src in (HOSTS / base).rglob("*"):
            if src.is_file():
                dst = root / src.relative_to(HOSTS / base)
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(src.read_bytes())
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


# --- the full report of every fixture tree ---------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["txt", "json"])
def test_full_report(name: str, kind: str, request: pytest.FixtureRequest) -> None:
    """Every fixture's whole report, text and JSON (``--regen-golden`` rewrites them)."""
    report = host_check(HOSTS / name)
    actual = render_text(report) if kind == "txt" else render_json(report)
    expected = REPORTS / f"{name}.{kind}"
    if request.config.getoption("--regen-golden"):
        expected.parent.mkdir(exist_ok=True)
        expected.write_text(actual)
    assert actual == expected.read_text()


def test_every_report_has_a_fixture() -> None:
    assert {p.stem for p in REPORTS.iterdir()} == set(NAMES)


def test_docs_host_samples_are_the_real_reports() -> None:
    """Every docs/host-check.md block run on a fixture tree is that tree's report, byte for byte."""
    section = (REPO / "docs" / "host-check.md").read_text()
    blocks = re.findall(
        r"```\n\$ xmlnest --host-check( --json)? --host-root tests/hosts/([\w-]+)\n(.*?)```",
        section,
        re.S,
    )
    assert {name for _, name, _ in blocks} == {"l1-intel-vmx", "intel-slow"}
    for as_json, name, shown in blocks:
        report = host_check(HOSTS / name)
        assert shown == (render_json(report) if as_json else render_text(report)), name
    assert "\n$ xmlnest --host-check\nHost check for nested virtualization\n" in section


# --- where am I ------------------------------------------------------------------------


def test_l1_with_vmx_can_run_l2() -> None:
    report = host_check(HOSTS / "l1-intel-vmx")
    assert (report.place.kind, report.place.level) == ("vm", "L1")
    assert report.place.hypervisor == "QEMU Standard PC (Q35 + ICH9, 2009)"
    assert report.place.view == (
        "this is a VM; vmx is visible and kvm_intel is loaded, so it can run L2 guests"
    )
    assert report.exit_code == EXIT_READY
    assert report.enable_now == () and report.enable_permanent_line is None


def test_l1_nested_off_still_runs_l2(tmp_path: Path) -> None:
    """In a VM, the module's own nested parameter is for L3: N must not block L2."""
    files = {"sys/module/kvm_intel/parameters/nested": "N\n"}
    report = host_check(tree(tmp_path, "l1-intel-vmx", files))
    assert report.enabled is False
    assert report.exit_code == EXIT_READY
    assert any("(L3)" in note for note in report.notes)


def test_l1_with_vmx_but_no_module_needs_action(tmp_path: Path) -> None:
    root = tree(tmp_path, "l1-intel-vmx", {})
    shutil.rmtree(root / "sys/module/kvm_intel")
    report = host_check(root)
    assert "vmx is visible but kvm_intel is not loaded" in report.place.view
    assert report.exit_code == EXIT_ACTION_NEEDED
    assert "action needed: kvm_intel is not loaded in this VM" in render_text(report)


def test_l1_without_vmx_asks_the_l0s_owner() -> None:
    report = host_check(HOSTS / "l1-intel-novmx")
    assert report.place.view == (
        "this is a VM without vmx: ask the L0's owner to enable nesting (the L0 needs "
        "kvm_intel nested=1 and this VM host-passthrough or require vmx)"
    )
    assert report.exit_code == EXIT_UNSUPPORTED
    assert "firmware" not in report.support_reason  # a VM's missing vmx is the L0's doing
    assert report.firmware is not None and report.firmware.state == "unknown"


def test_bare_metal_is_an_l0() -> None:
    report = host_check(HOSTS / "intel-on")
    assert (report.place.kind, report.place.level) == ("bare-metal", "L0")
    assert report.place.evidence == ("no hypervisor CPU flag",)


@pytest.mark.parametrize(
    ("files", "kind", "evidence"),
    [
        (
            {"sys/class/dmi/id/sys_vendor": "Microsoft Corporation\n",
             "sys/class/dmi/id/product_name": "Virtual Machine\n"},
            "vm",
            "DMI: Microsoft Corporation Virtual Machine",
        ),
        ({"sys/hypervisor/type": "xen\n"}, "vm", "/sys/hypervisor/type: xen"),
        (
            {"sys/class/dmi/id/sys_vendor": "Dell Inc.\n",
             "sys/class/dmi/id/product_name": "PowerEdge R740\n"},
            "bare-metal",
            "DMI: Dell Inc. PowerEdge R740",
        ),
    ],
)  # fmt: skip
def test_dmi_and_sys_hypervisor(
    tmp_path: Path, files: dict[str, str | bytes], kind: str, evidence: str
) -> None:
    """A VM that hides the hypervisor flag still names itself in DMI or /sys/hypervisor."""
    report = host_check(tree(tmp_path, "intel-on", files))
    assert report.place.kind == kind
    assert evidence in report.place.evidence


def test_s390_guest_from_sysinfo(tmp_path: Path) -> None:
    sysinfo = "LPAR Name:            LP01\nVM00 Name:            GUEST1\nVM00 Control Program: KVM/Linux\n"
    report = host_check(tree(tmp_path, "ibmz-on", {"proc/sysinfo": sysinfo}))
    assert report.place.kind == "vm"
    assert "this is a VM; sie is visible and kvm is loaded" in report.place.view
    lpar = host_check(tree(tmp_path / "lpar", "ibmz-on", {"proc/sysinfo": "LPAR Name: LP01\n"}))
    assert lpar.place.kind == "bare-metal"


def test_power_platform_tells_guest_from_bare_metal(tmp_path: Path) -> None:
    assert host_check(HOSTS / "power9-on").place.kind == "bare-metal"  # PowerNV
    cpuinfo = (HOSTS / "power9-on/proc/cpuinfo").read_text().replace("PowerNV", "pSeries")
    report = host_check(tree(tmp_path, "power9-on", {"proc/cpuinfo": cpuinfo}))
    assert report.place.kind == "vm"


# --- /dev/kvm --------------------------------------------------------------------------


def test_dev_kvm_missing_while_the_module_is_loaded() -> None:
    report = host_check(HOSTS / "intel-no-devkvm")
    dev = report.dev_kvm
    assert (dev.present, dev.problem, dev.served_by) == (False, "missing", "kvm_intel")
    assert "docker run --device /dev/kvm" in dev.fix[0]
    assert report.enabled and report.exit_code == EXIT_ACTION_NEEDED


def test_dev_kvm_permissions_name_both_users_and_the_fix() -> None:
    report = host_check(HOSTS / "intel-devkvm-perms")
    dev = report.dev_kvm
    assert [(a.role, a.user, a.ok) for a in dev.access] == [
        ("current user", "alice", False),
        ("libvirt qemu user", "libvirt-qemu", False),
    ]
    assert dev.fix == (
        "usermod -aG kvm alice  (then log in again / restart its VMs)",
        "usermod -aG kvm libvirt-qemu  (then log in again / restart its VMs)",
    )
    assert report.exit_code == EXIT_ACTION_NEEDED


def test_member_of_the_node_group_may_open_it(tmp_path: Path) -> None:
    """Same tree, alice and libvirt-qemu now in kvm: nothing left to do."""
    group = (HOSTS / "intel-devkvm-perms/etc/group").read_text()
    files = {
        "etc/group": group.replace("kvm:x:107:", "kvm:x:107:alice,libvirt-qemu"),
        "proc/self/status": "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t107 110 1000\n",
    }
    report = host_check(tree(tmp_path, "intel-devkvm-perms", files))
    assert [a.ok for a in report.dev_kvm.access] == [True, True]
    assert report.exit_code == EXIT_READY


def test_node_without_group_access_gets_chgrp_and_chmod(tmp_path: Path) -> None:
    files = {"dev/kvm.fixture-node": NODE.format(mode="0600", uid=0, gid=0)}
    report = host_check(tree(tmp_path, "intel-devkvm-perms", files))
    fix = report.dev_kvm.fix
    assert fix[0].startswith("chgrp kvm /dev/kvm && chmod 0660 /dev/kvm")
    assert fix[1:] == ("usermod -aG kvm alice", "usermod -aG kvm libvirt-qemu")  # chgrp once


def test_a_regular_file_is_not_a_device(tmp_path: Path) -> None:
    """A real file at dev/kvm is os.stat-ed (the sidecar is only for a missing node)."""
    report = host_check(tree(tmp_path, "intel-on", {"dev/kvm": ""}))
    assert report.dev_kvm.present and not report.dev_kvm.char_device
    assert report.dev_kvm.problem == "not a character device (file)"
    assert report.exit_code == EXIT_ACTION_NEEDED


def test_qemu_conf_user_wins_and_root_may_always_open(tmp_path: Path) -> None:
    files = {
        "etc/libvirt/qemu.conf": '#user = "libvirt-qemu"\nuser = "+0"\n',
        "dev/kvm.fixture-node": NODE.format(mode="0600", uid=0, gid=0),
        "proc/self/status": ROOT_STATUS,
    }
    report = host_check(tree(tmp_path, "intel-devkvm-perms", files))
    assert [(a.user, a.ok) for a in report.dev_kvm.access] == [("root", True), ("root", True)]


def test_qemu_conf_group_replaces_the_primary_group(tmp_path: Path) -> None:
    files = {
        "etc/libvirt/qemu.conf": 'user = "libvirt-qemu"\ngroup = "kvm"\n',
        "proc/self/status": ROOT_STATUS,
    }
    report = host_check(tree(tmp_path, "intel-devkvm-perms", files))
    assert [(a.user, a.ok) for a in report.dev_kvm.access][1] == ("libvirt-qemu", True)


def test_kvm_pvm_is_named_honestly() -> None:
    """This machine's own state: a VM without svm whose /dev/kvm comes from kvm_pvm."""
    report = host_check(HOSTS / "pvm-guest")
    dev = report.dev_kvm
    assert (dev.served_by, dev.served_by_known) == ("kvm_pvm", False)
    assert dev.served_by_note is not None and "do not apply" in dev.served_by_note
    text = render_text(report)
    assert "module not loaded?" not in text and "disabled in firmware" not in text
    assert "this is a VM without svm" in report.place.view
    assert report.exit_code == EXIT_UNSUPPORTED


def test_an_unknown_kvm_module_is_not_guessed(tmp_path: Path) -> None:
    root = tree(tmp_path, "pvm-guest", {"sys/module/kvm_foo/parameters/x": "1\n"})
    shutil.rmtree(root / "sys/module/kvm_pvm")
    dev = host_check(root).dev_kvm
    assert dev.served_by == "kvm_foo"
    assert dev.served_by_note == (
        "kvm_foo is a KVM module xmlnest does not know; its XML edits do not apply"
    )


def test_proc_modules_drops_modules_not_live(tmp_path: Path) -> None:
    files = {
        "proc/modules": "kvm_intel 413696 0 - Unloading 0x0\nkvm 1396736 1 kvm_intel, Live 0x0\n"
    }
    dev = host_check(tree(tmp_path, "intel-on", files)).dev_kvm
    assert dev.served_by is None


def test_the_sidecar_is_never_read_on_the_real_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(tmp_path, None, {"dev/kvm.fixture-node": NODE.format(mode="0666", uid=0, gid=0)})
    assert host_probe.node(tmp_path, "/dev/kvm") is not None
    monkeypatch.setattr(host_probe, "is_live", lambda root: True)
    assert host_probe.node(tmp_path, "/dev/kvm") is None


def test_real_nodes_use_os_stat_and_os_access() -> None:
    found = host_probe.node(Path("/"), "/dev/null")
    assert found is not None
    assert (found.kind, found.rdev, found.source) == ("char", "1:3", "os.stat")
    me = host_users.current_identity(Path("/"))
    assert me is not None and me.uid == os.geteuid()
    assert host_users.current_access(Path("/"), "/dev/null", me, found) is True


# --- firmware --------------------------------------------------------------------------


def sparse_msr(path: Path, register: int, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.seek(register)
        handle.write(value.to_bytes(8, "little"))


def test_intel_firmware_lock_is_read_like_kvm_ok() -> None:
    report = host_check(HOSTS / "intel-firmware-off")
    assert report.firmware is not None
    assert (report.firmware.state, report.firmware.detail) == (
        "disabled",
        "locked without VMX outside SMX",
    )
    assert "enable Intel Virtualization Technology (VT-x)" in report.support_reason
    assert report.exit_code == EXIT_ACTION_NEEDED  # an action, not a missing CPU feature


@pytest.mark.parametrize(
    ("value", "state"),
    [(0x1, "disabled"), (0x5, "enabled"), (0x0, "enabled"), (0x3, "disabled")],
)
def test_intel_feature_control_bits(tmp_path: Path, value: int, state: str) -> None:
    root = tree(tmp_path, "intel-firmware-off", {})
    (root / "dev/cpu/0/msr").unlink()
    sparse_msr(root / "dev/cpu/0/msr", 0x3A, value)
    report = host_check(root)
    assert report.firmware is not None and report.firmware.state == state


@pytest.mark.parametrize(("value", "state"), [(0x10, "disabled"), (0x8, "enabled")])
def test_amd_vm_cr_svmdis(tmp_path: Path, value: int, state: str) -> None:
    root = tree(tmp_path, "amd-on", {})
    sparse_msr(root / "dev/cpu/0/msr", 0xC0010114, value)
    firmware = host_check(root).firmware
    assert firmware is not None
    assert (firmware.state, firmware.source) == (state, "/dev/cpu/0/msr 0xc0010114 (VM_CR)")


def test_amd_firmware_from_the_kernel_log() -> None:
    report = host_check(HOSTS / "amd-firmware-off")
    assert report.firmware is not None
    assert report.firmware.state == "disabled"
    assert report.firmware.detail == "kernel log: SVM disabled (by BIOS) in MSR_VM_CR"
    assert report.exit_code == EXIT_ACTION_NEEDED


@pytest.mark.parametrize(
    ("line", "state"),
    [
        ("kvm: disabled by bios", "disabled"),
        ("kvm: support for 'kvm_intel' disabled by bios", "disabled"),
        ("x86/cpu: VMX (outside TXT) disabled by BIOS", "disabled"),
        ("kvm_intel: VMX not enabled (by BIOS) in MSR_IA32_FEAT_CTL on CPU 0", "disabled"),
        ("x86/cpu: SGX disabled by BIOS.", "unknown"),
        ("kvm_intel: loaded", "unknown"),
    ],
)
def test_kernel_log_lines(tmp_path: Path, line: str, state: str) -> None:
    root = tree(tmp_path, "intel-firmware-off", {"dev/kmsg": f"3,200,1000,-;{line}\n"})
    (root / "dev/cpu/0/msr").unlink()
    report = host_check(root)
    assert report.firmware is not None and report.firmware.state == state


def test_a_short_msr_file_is_unreadable_not_zero(tmp_path: Path) -> None:
    root = tree(tmp_path, "intel-firmware-off", {"dev/cpu/0/msr": b"\x01" * 8})
    firmware = host_check(root).firmware
    assert firmware is not None and firmware.state == "unknown"


def test_a_loaded_vendor_module_means_firmware_allows_it() -> None:
    firmware = host_check(HOSTS / "intel-on").firmware
    assert firmware is not None
    assert (firmware.state, firmware.source) == ("enabled", "kvm_intel is loaded")


# --- speed -----------------------------------------------------------------------------


def test_slow_intel_l0_is_ready_but_says_slow() -> None:
    report = host_check(HOSTS / "intel-slow")
    assert report.exit_code == EXIT_READY and report.slow
    shadow = next(p for p in report.speed if p.param == "enable_shadow_vmcs")
    assert (shadow.value, shadow.on, shadow.slow) == ("N", False, True)
    assert shadow.advice is not None and "running-nested-guests.rst" in shadow.advice
    assert "Status: ready: L2 guests can run, slowly (see Speed) (exit 0)" in render_text(report)


def test_slow_amd_l0_npt_and_avic_before_5_19() -> None:
    report = host_check(HOSTS / "amd-slow")
    by_name = {p.param: p for p in report.speed}
    assert by_name["npt"].slow and report.slow
    assert by_name["avic"].advice == (
        "avic is on, but Linux 5.15.0-119-generic turns AVIC off for VMs given svm (< 5.19)"
    )


def test_avic_on_a_new_kernel_is_fine(tmp_path: Path) -> None:
    files = {
        "proc/sys/kernel/osrelease": "6.1.0-27-amd64\n",
        "sys/module/kvm_amd/parameters/npt": "1\n",
    }
    report = host_check(tree(tmp_path, "amd-slow", files))
    assert [(p.param, p.advice) for p in report.speed] == [("npt", None), ("avic", None)]
    assert not report.slow


def test_shadow_vmcs_off_in_a_vm_is_not_slow(tmp_path: Path) -> None:
    files = {"sys/module/kvm_intel/parameters/enable_shadow_vmcs": "N\n"}
    report = host_check(tree(tmp_path, "l1-intel-vmx", files))
    shadow = next(p for p in report.speed if p.param == "enable_shadow_vmcs")
    assert not shadow.slow and not report.slow
    assert shadow.advice is not None and "the L0's enable_shadow_vmcs" in shadow.advice


def test_ept_off_in_a_vm_is_slow(tmp_path: Path) -> None:
    files = {"sys/module/kvm_intel/parameters/ept": "N\n"}
    report = host_check(tree(tmp_path, "l1-intel-vmx", files))
    assert report.slow and report.exit_code == EXIT_READY


# --- kernel command line ---------------------------------------------------------------


def test_cmdline_persists_and_overrides_modprobe_d() -> None:
    report = host_check(HOSTS / "intel-cmdline-persisted")
    assert report.persistent_cmdline == "kvm-intel.nested=1"
    assert report.persistent_config_file is None  # its file says nested=0
    assert any("kernel command line's kvm-intel.nested=1 overrides it" in n for n in report.notes)
    text = render_text(report)
    assert "Already permanent: the kernel command line contains\n    kvm-intel.nested=1\n" in text


@pytest.mark.parametrize(
    ("cmdline", "persisted"),
    [
        ("ro quiet kvm_intel.nested=Y\n", "kvm_intel.nested=Y"),
        ("ro kvm-intel.nested=1 kvm-intel.nested=0\n", None),
        ("ro kvm_amd.nested=1\n", None),
        ("ro -- kvm-intel.nested=1\n", None),  # after --: arguments for init
        ('ro "kvm-intel.nested=1"\n', "kvm-intel.nested=1"),
    ],
)
def test_cmdline_words(tmp_path: Path, cmdline: str, persisted: str | None) -> None:
    report = host_check(tree(tmp_path, "intel-off", {"proc/cmdline": cmdline}))
    assert report.persistent_cmdline == persisted


def test_cmdline_off_overrides_modprobe_d(tmp_path: Path) -> None:
    files = {
        "proc/cmdline": "ro kvm-intel.nested=0\n",
        "etc/modprobe.d/kvm.conf": "options kvm_intel nested=1\n",
    }
    report = host_check(tree(tmp_path, "intel-off", files))
    assert any(n.startswith("The kernel command line has kvm-intel.nested=0") for n in report.notes)


# --- distribution ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_release", "noted"),
    [
        ('ID="rhel"\nVERSION_ID="8.9"\n', True),
        ('ID="rhel"\nVERSION_ID="9.4"\n', False),
        ('ID="centos"\nVERSION_ID="8"\n', False),
        ("ID=debian\nVERSION_ID=12\n", False),
        ("", False),
    ],
)
def test_technology_preview_note_only_on_rhel_8(
    tmp_path: Path, os_release: str, noted: bool
) -> None:
    report = host_check(tree(tmp_path, "intel-on", {"etc/os-release": os_release}))
    assert (TECH_PREVIEW in report.notes) is noted


def test_power9_rhel_release_note_only_on_rhel_8(tmp_path: Path) -> None:
    def rhel_note(report: object) -> bool:
        return any("RHEL 7 (rhel-alt kernel)" in n for n in report.notes)  # type: ignore[attr-defined]

    assert not rhel_note(host_check(HOSTS / "power9-on"))
    rhel = tree(tmp_path, "power9-on", {"etc/os-release": 'ID="rhel"\nVERSION_ID="8.6"\n'})
    assert rhel_note(host_check(rhel))


# --- --host-root -----------------------------------------------------------------------


def test_missing_host_root_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        host_check(tmp_path / "nonexistent")
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is not a folder"):
        host_check(tmp_path / "file")
    r = run_cli(["--host-check", "--host-root", str(tmp_path / "nonexistent")])
    assert r.code == 2
    assert "does not exist" in r.err and r.out == b""


# --- the real machine ------------------------------------------------------------------


def test_real_machine_completes_with_a_documented_exit_code() -> None:
    """Whatever this machine is, the check finishes, exits 0, 1 or 3, and prints JSON."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "xmlnest", "--host-check"]
    as_json = subprocess.run([*cmd, "--json"], capture_output=True, env=env, timeout=120)
    assert as_json.returncode in (EXIT_READY, EXIT_ACTION_NEEDED, EXIT_UNSUPPORTED), as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["exit_code"] == as_json.returncode
    text = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    assert text.returncode == as_json.returncode
    assert text.stdout.decode().endswith(f"(exit {text.returncode})\n")
