"""Tests for xmlnest.hostcheck.check: the L0 readiness report over the fixture trees in tests/hosts."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from xmlnest.hostcheck.check import (
    EXIT_ACTION_NEEDED,
    EXIT_READY,
    EXIT_UNSUPPORTED,
    STOP_VMS,
    Arch,
    HostReport,
    cpu_vendor,
    host_check,
    render_json,
    render_text,
)

HOSTS = Path(__file__).parent / "hosts"
INTEL_CAUTION = (
    "Shut down running VMs first: modprobe -r kvm_intel fails while the module is in use."
)

# Every field of the report except support_reason and notes (checked separately).
EXPECTED: dict[str, dict[str, Any]] = {
    "intel-on": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
        "supported": True,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": "Y",
        "enabled": True,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": "options kvm_intel nested=1",
        "persistent_config_file": None,  # RHEL's kvm.conf ships the line commented out
        "hpage": None,
        "exit_code": 0,
    },
    "intel-off": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz",
        "supported": True,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": "N",
        "enabled": False,
        "enable_caution": INTEL_CAUTION,
        "enable_now": ("modprobe -r kvm_intel", "modprobe kvm_intel nested=1"),
        "enable_permanent_line": "options kvm_intel nested=1",
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 1,
    },
    "intel-off-persisted": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz",
        "supported": True,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": "0",
        "enabled": False,
        "enable_caution": INTEL_CAUTION,
        "enable_now": ("modprobe -r kvm_intel", "modprobe kvm_intel nested=1"),
        "enable_permanent_line": "options kvm_intel nested=1",
        "persistent_config_file": "/etc/modprobe.d/kvm.conf",
        "hpage": None,
        "exit_code": 1,
    },
    "intel-unsupported": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Core(TM)2 Duo CPU     E8400  @ 3.00GHz",
        "supported": False,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": "N",
        "enabled": False,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": None,
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 3,
    },
    "intel-no-module": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz",
        "supported": True,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": None,
        "enabled": False,
        "enable_caution": None,  # nothing to unload
        "enable_now": ("modprobe kvm_intel nested=1",),
        "enable_permanent_line": "options kvm_intel nested=1",
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 1,
    },
    "amd-on": {
        "arch": Arch.X86,
        "vendor": "amd",
        "cpu_model": "AMD EPYC 7302 16-Core Processor",
        "supported": True,
        "module": "kvm_amd",
        "nested_param_path": "/sys/module/kvm_amd/parameters/nested",
        "nested_value": "1",
        "enabled": True,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": "options kvm_amd nested=1",
        "persistent_config_file": "/etc/modprobe.d/kvm.conf",
        "hpage": None,
        "exit_code": 0,
    },
    "amd-off": {
        "arch": Arch.X86,
        "vendor": "amd",
        "cpu_model": "AMD EPYC 7763 64-Core Processor",
        "supported": True,
        "module": "kvm_amd",
        "nested_param_path": "/sys/module/kvm_amd/parameters/nested",
        "nested_value": "0",
        "enabled": False,
        "enable_caution": STOP_VMS,
        "enable_now": ("modprobe -r kvm_amd", "modprobe kvm_amd nested=1"),
        "enable_permanent_line": "options kvm_amd nested=1",
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 1,
    },
    "amd-unsupported": {
        "arch": Arch.X86,
        "vendor": "amd",
        "cpu_model": "AMD Athlon(tm) 64 X2 Dual Core Processor 4200+",
        "supported": False,
        "module": "kvm_amd",
        "nested_param_path": "/sys/module/kvm_amd/parameters/nested",
        "nested_value": "0",
        "enabled": False,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": None,
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 3,
    },
    "ibmz-on": {
        "arch": Arch.S390X,
        "vendor": None,
        "cpu_model": "IBM/S390 machine 8561",
        "supported": True,
        "module": "kvm",
        "nested_param_path": "/sys/module/kvm/parameters/nested",
        "nested_value": "1",
        "enabled": True,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": "options kvm nested=1",
        "persistent_config_file": "/etc/modprobe.d/kvm.conf",
        "hpage": False,
        "exit_code": 0,
    },
    "ibmz-off": {
        "arch": Arch.S390X,
        "vendor": None,
        "cpu_model": "IBM/S390 machine 3906",
        "supported": True,
        "module": "kvm",
        "nested_param_path": "/sys/module/kvm/parameters/nested",
        "nested_value": "0",
        "enabled": False,
        "enable_caution": STOP_VMS,
        "enable_now": ("modprobe -r kvm", "modprobe kvm nested=1"),
        "enable_permanent_line": "options kvm nested=1",
        "persistent_config_file": None,
        "hpage": False,
        "exit_code": 1,
    },
    "ibmz-hpage": {
        "arch": Arch.S390X,
        "vendor": None,
        "cpu_model": "IBM/S390 machine 3931",
        "supported": True,
        "module": "kvm",
        "nested_param_path": "/sys/module/kvm/parameters/nested",
        "nested_value": "0",
        "enabled": False,
        "enable_caution": STOP_VMS,
        # hpage=0 last: modprobe.d's 'options kvm hpage=1' would otherwise be applied too
        "enable_now": ("modprobe -r kvm", "modprobe kvm nested=1 hpage=0"),
        "enable_permanent_line": "options kvm nested=1",
        "persistent_config_file": None,
        "hpage": True,
        "exit_code": 1,
    },
    "power9-on": {
        "arch": Arch.POWER,
        "vendor": None,
        "cpu_model": "POWER9, altivec supported; PowerNV 9006-22P",
        "supported": True,
        "module": "kvm_hv",
        "nested_param_path": "/sys/module/kvm_hv/parameters/nested",
        "nested_value": "Y",
        "enabled": True,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": "options kvm_hv nested=1",
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 0,
    },
    "power9-off": {
        "arch": Arch.POWER,
        "vendor": None,
        "cpu_model": "POWER9 (raw), altivec supported; PowerNV 9183-22X",
        "supported": True,
        "module": "kvm_hv",
        "nested_param_path": "/sys/module/kvm_hv/parameters/nested",
        "nested_value": "N",
        "enabled": False,
        "enable_caution": STOP_VMS,
        "enable_now": ("modprobe -r kvm_hv", "modprobe kvm_hv nested=1"),
        "enable_permanent_line": "options kvm_hv nested=1",
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 1,
    },
    "power8": {
        "arch": Arch.POWER,
        "vendor": None,
        "cpu_model": "POWER8 (raw), altivec supported; PowerNV 8247-22L",
        "supported": False,
        "module": "kvm_hv",
        "nested_param_path": "/sys/module/kvm_hv/parameters/nested",
        "nested_value": "N",
        "enabled": False,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": None,
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 3,
    },
    "arm": {
        "arch": Arch.ARM,
        "vendor": None,
        "cpu_model": "ARM implementer 0x41 part 0xd0c",
        "supported": False,
        "module": None,
        "nested_param_path": None,
        "nested_value": None,
        "enabled": False,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": None,
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 3,
    },
    "amd-firmware-off": {
        "arch": Arch.X86,
        "vendor": "amd",
        "cpu_model": "AMD EPYC 7302 16-Core Processor",
        "supported": False,
        "module": "kvm_amd",
        "nested_param_path": "/sys/module/kvm_amd/parameters/nested",
        "nested_value": None,
        "enabled": False,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": None,
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 1,
    },
    "amd-slow": {
        "arch": Arch.X86,
        "vendor": "amd",
        "cpu_model": "AMD EPYC 7302 16-Core Processor",
        "supported": True,
        "module": "kvm_amd",
        "nested_param_path": "/sys/module/kvm_amd/parameters/nested",
        "nested_value": "1",
        "enabled": True,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": "options kvm_amd nested=1",
        "persistent_config_file": "/etc/modprobe.d/kvm.conf",
        "hpage": None,
        "exit_code": 0,
    },
    "intel-cmdline-persisted": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz",
        "supported": True,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": "N",
        "enabled": False,
        "enable_caution": INTEL_CAUTION,
        "enable_now": ("modprobe -r kvm_intel", "modprobe kvm_intel nested=1"),
        "enable_permanent_line": "options kvm_intel nested=1",
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 1,
    },
    "intel-devkvm-perms": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
        "supported": True,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": "Y",
        "enabled": True,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": "options kvm_intel nested=1",
        "persistent_config_file": "/etc/modprobe.d/kvm.conf",
        "hpage": None,
        "exit_code": 1,
    },
    "intel-firmware-off": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
        "supported": False,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": None,
        "enabled": False,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": None,
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 1,
    },
    "intel-no-devkvm": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
        "supported": True,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": "Y",
        "enabled": True,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": "options kvm_intel nested=1",
        "persistent_config_file": "/etc/modprobe.d/kvm.conf",
        "hpage": None,
        "exit_code": 1,
    },
    "intel-slow": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
        "supported": True,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": "Y",
        "enabled": True,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": "options kvm_intel nested=1",
        "persistent_config_file": "/etc/modprobe.d/kvm.conf",
        "hpage": None,
        "exit_code": 0,
    },
    "l1-intel-novmx": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel Xeon Processor (Cascadelake)",
        "supported": False,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": None,
        "enabled": False,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": None,
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 3,
    },
    "l1-intel-vmx": {
        "arch": Arch.X86,
        "vendor": "intel",
        "cpu_model": "Intel Xeon Processor (Cascadelake)",
        "supported": True,
        "module": "kvm_intel",
        "nested_param_path": "/sys/module/kvm_intel/parameters/nested",
        "nested_value": "Y",
        "enabled": True,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": None,
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 0,
    },
    "pvm-guest": {
        "arch": Arch.X86,
        "vendor": "amd",
        "cpu_model": "AMD EPYC",
        "supported": False,
        "module": "kvm_amd",
        "nested_param_path": "/sys/module/kvm_amd/parameters/nested",
        "nested_value": None,
        "enabled": False,
        "enable_caution": None,
        "enable_now": (),
        "enable_permanent_line": None,
        "persistent_config_file": None,
        "hpage": None,
        "exit_code": 3,
    },
}

# The security trees (tests/test_host_security.py): a base tree plus /proc/version and
# /etc/os-release; every field is the base's but the exit code.
SECURITY_TREES = {
    # name: (base tree, exit code)
    "sec-debian12-unpatched-on": ("intel-on", 1),
    "sec-debian12-unpatched-off": ("intel-off", 1),
    "sec-debian12-patched-on": ("intel-on", 0),
    "sec-fedora-7.1.2-on": ("amd-on", 1),
    "sec-fedora-7.1.3-on": ("amd-on", 0),
    "sec-upstream-6.18.36-on": ("intel-on", 1),
    "sec-upstream-6.18.44-on": ("intel-on", 0),
    "sec-upstream-6.19-eol-on": ("amd-on", 1),
    "sec-rhel8-on": ("intel-on", 0),
    "sec-rhel9-on": ("amd-on", 0),
    "sec-ubuntu-on": ("intel-on", 0),
}
EXPECTED.update(
    {name: {**EXPECTED[base], "exit_code": code} for name, (base, code) in SECURITY_TREES.items()}
)

REASONS = {
    "intel-on": "CPU flags include vmx and ept",
    "intel-off": "CPU flags include vmx and ept",
    "intel-unsupported": "CPU flags lack ept;",
    "amd-on": "CPU flags include svm and npt",
    "amd-unsupported": "CPU flags lack npt;",
    "ibmz-on": "CPU features include sie",
    "power8": "creating nested VMs is not possible on IBM POWER8 or older",
    "arm": "nested virtualization currently does not work on other architectures, such as ARM",
}

NAMES = sorted(EXPECTED)
FIELDS = {field.name for field in dataclasses.fields(HostReport)}


def check(name: str) -> HostReport:
    return host_check(HOSTS / name)


# A /dev/kvm everyone checked may use (root:kvm 0660, no qemu user in the tree).
KVM_NODE = {"dev/kvm.fixture-node": "kind = char\nrdev = 10:232\nmode = 0660\nuid = 0\ngid = 36\n"}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def fixture_text(name: str, relative: str = "proc/cpuinfo") -> str:
    return (HOSTS / name / relative).read_text()


# --- every fixture ---------------------------------------------------------------------


def test_every_fixture_tree_has_expectations() -> None:
    on_disk = {path.name for path in HOSTS.iterdir() if path.is_dir()}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", NAMES)
def test_report_fields(name: str) -> None:
    report = check(name)
    actual = {key: getattr(report, key) for key in EXPECTED[name]}
    assert actual == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(REASONS))
def test_support_reason(name: str) -> None:
    assert REASONS[name] in check(name).support_reason


@pytest.mark.parametrize("name", NAMES)
def test_render_text_lists_the_exact_commands(name: str) -> None:
    report = check(name)
    text = render_text(report)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert text.count("\n") >= 5
    assert f"(exit {EXPECTED[name]['exit_code']})\n" in text.splitlines(keepends=True)[-1]
    for command in EXPECTED[name]["enable_now"]:
        assert f"\n    {command}\n" in text
    if not EXPECTED[name]["enable_now"]:
        assert "To enable nesting now" not in text
        assert ("modprobe -r" in text) == ("To close CVE-" in text)  # only to turn it off


@pytest.mark.parametrize("name", ["amd-off", "ibmz-off", "ibmz-hpage", "power9-off"])
def test_stop_vms_caution_precedes_commands(name: str) -> None:
    text = render_text(check(name))
    assert STOP_VMS in text
    assert text.index(STOP_VMS) < text.index("    modprobe -r ")


def test_intel_gets_the_softer_note_not_the_documented_caution() -> None:
    text = render_text(check("intel-off"))
    assert STOP_VMS not in text
    assert INTEL_CAUTION in text


def test_intel_off_text_gives_the_permanent_line() -> None:
    text = render_text(check("intel-off"))
    expected = (
        "To keep it enabled after a reboot, add this line to /etc/modprobe.d/kvm.conf:\n"
        "    options kvm_intel nested=1\n"
    )
    assert expected in text
    assert "Persistent:   not set in modprobe.d or on the kernel command line\n" in text


def test_persisted_config_is_named_so_a_reload_is_enough() -> None:
    text = render_text(check("intel-off-persisted"))
    assert "Already permanent: /etc/modprobe.d/kvm.conf contains\n" in text
    assert "add this line" not in text
    assert "Persistent:   nested=1 set in /etc/modprobe.d/kvm.conf\n" in text


def test_module_not_loaded_is_said() -> None:
    report = check("intel-no-module")
    assert any("kvm_intel module is not loaded" in note for note in report.notes)
    assert "/sys/module/kvm_intel/parameters/nested: missing" in render_text(report)


def test_ibmz_hpage_reports_the_conflict() -> None:
    report = check("ibmz-hpage")
    notes = "\n".join(report.notes)
    assert "Invalid argument" in notes
    assert "A KVM host that supports nesting cannot back its KVM guests with huge pages" in notes
    assert "/etc/modprobe.d/kvm-hpage.conf sets 'options kvm hpage=1'" in notes
    assert "  Huge pages:   hpage=1\n" in render_text(report)


def test_ibmz_without_hpage_has_no_conflict_note() -> None:
    assert not any("huge" in note.lower() for note in check("ibmz-off").notes)


def test_power9_notes_xive() -> None:
    notes = check("power9-off").notes
    assert any("XIVE" in note and "emulated XIVE" in note for note in notes)


def test_amd_notes_migration_restriction() -> None:
    assert any("Migrating VMs does not work on AMD" in note for note in check("amd-on").notes)


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trip(name: str) -> None:
    report = check(name)
    text = render_json(report)
    data = json.loads(text)
    assert text.endswith("}\n")
    assert set(data) == FIELDS | {"exit_code"}
    assert list(data) == sorted(data)
    assert data["exit_code"] == EXPECTED[name]["exit_code"]
    for key in FIELDS:
        value = getattr(report, key)
        if dataclasses.is_dataclass(value):
            value = json.loads(json.dumps(dataclasses.asdict(value)))  # type: ignore[arg-type]
        elif isinstance(value, tuple):
            value = json.loads(
                json.dumps(
                    [
                        dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v  # type: ignore[arg-type]
                        for v in value
                    ]
                )
            )
        assert data[key] == value, key
    assert data["arch"] == str(EXPECTED[name]["arch"].value)


# --- host_check never writes --------------------------------------------------------------

Snapshot = dict[str, tuple[str, int, int, str]]


def snapshot(root: Path) -> Snapshot:
    state: Snapshot = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        kind = "file" if path.is_file() else "dir"
        state[str(path.relative_to(root))] = (kind, info.st_mtime_ns, info.st_mode, digest)
    return state


@contextlib.contextmanager
def forbid_writes() -> Iterator[list[str]]:
    """Make every write-capable call fail; yields the list of attempts."""
    attempts: list[str] = []
    real_open = io.open
    real_os_open = os.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(flag in mode for flag in "wax+"):
            attempts.append(f"open({file!r}, {mode!r})")
            raise AssertionError(f"write attempted: {file!r} {mode!r}")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & write_flags:
            attempts.append(f"os.open({path!r})")
            raise AssertionError(f"write attempted: {path!r}")
        return real_os_open(path, flags, *args, **kwargs)

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{name}{args!r}")
            raise AssertionError(f"{name} called")

        return refused

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(io, "open", guarded_open)
        patch.setattr(builtins, "open", guarded_open)
        patch.setattr(os, "open", guarded_os_open)
        for name in (
            "mkdir",
            "makedirs",
            "remove",
            "unlink",
            "rmdir",
            "rename",
            "replace",
            "utime",
            "chmod",
            "chown",
            "symlink",
            "link",
            "truncate",
        ):
            patch.setattr(os, name, refuse(name))
        yield attempts


def test_write_guard_trips() -> None:
    """The guard below must really catch writes, or the next test proves nothing."""
    with forbid_writes() as attempts, pytest.raises(AssertionError):
        (HOSTS / "never-created.txt").write_text("x")
    assert attempts and not (HOSTS / "never-created.txt").exists()


@pytest.mark.parametrize("name", NAMES)
def test_host_check_never_writes(name: str, tmp_path: Path) -> None:
    copy = tmp_path / name
    shutil.copytree(HOSTS / name, copy)
    for root in (copy, HOSTS / name):
        before = snapshot(root)
        with forbid_writes() as attempts:
            report = host_check(root)
            render_text(report)
            render_json(report)
        assert attempts == []
        assert snapshot(root) == before


def test_host_check_on_the_real_root_never_writes() -> None:
    """The real machine's paths (os.stat, os.access, /dev/kmsg, the MSR) only read too."""
    with forbid_writes() as attempts:
        report = host_check(Path("/"))
        render_text(report)
        render_json(report)
    assert attempts == []


# --- cpu_vendor ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_cpu_vendor_of_fixtures(name: str) -> None:
    assert cpu_vendor(HOSTS / name) == EXPECTED[name]["vendor"]


@pytest.mark.parametrize(
    ("cpuinfo", "vendor"),
    [
        ("vendor_id\t: HygonGenuine\nflags\t\t: fpu svm npt\n", "amd"),
        ("vendor_id\t: CentaurHauls\nflags\t\t: fpu vmx ept\n", "intel"),
        ("vendor_id\t: CentaurHauls\nflags\t\t: fpu sse2\n", None),
        ("processor\t: 0\nflags\t\t: fpu svm npt\n", "amd"),
        ("vendor_id\t: GenuineIntel\nflags\t\t: fpu sse2\n", "intel"),  # VT-x off in firmware
        ("vendor_id\t: AuthenticAMD\nflags\t\t: fpu vmx\n", "amd"),  # vendor_id wins
        ("", None),
    ],
)
def test_cpu_vendor_rules(tmp_path: Path, cpuinfo: str, vendor: str | None) -> None:
    write_tree(tmp_path, {"proc/cpuinfo": cpuinfo})
    assert cpu_vendor(tmp_path) == vendor


def test_cpu_vendor_without_cpuinfo(tmp_path: Path) -> None:
    assert cpu_vendor(tmp_path) is None


# --- architecture and support rules beyond the fixtures ---------------------------------


def test_missing_cpuinfo_is_unknown_and_unsupported(tmp_path: Path) -> None:
    report = host_check(tmp_path)
    assert (report.arch, report.supported, report.exit_code) == (Arch.UNKNOWN, False, 3)
    assert "cannot read /proc/cpuinfo" in report.support_reason


def test_risc_v_is_unknown(tmp_path: Path) -> None:
    cpuinfo = "processor\t: 0\nhart\t\t: 0\nisa\t\t: rv64imafdc\nmmu\t\t: sv39\n"
    report = host_check(write_tree(tmp_path, {"proc/cpuinfo": cpuinfo}))
    assert (report.arch, report.exit_code, report.module) == (Arch.UNKNOWN, 3, None)


def test_arm32_model_name_is_arm(tmp_path: Path) -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nBogoMIPS\t: 38.40\n"
    report = host_check(write_tree(tmp_path, {"proc/cpuinfo": cpuinfo}))
    assert report.arch is Arch.ARM
    assert report.cpu_model == "ARMv8 Processor rev 1 (v8l)"
    assert report.exit_code == 3


def test_intel_without_vmx_points_at_firmware(tmp_path: Path) -> None:
    cpuinfo = fixture_text("intel-off").replace(" vmx ", " ")
    report = host_check(write_tree(tmp_path, {"proc/cpuinfo": cpuinfo}))
    assert (report.vendor, report.supported, report.exit_code) == ("intel", False, 3)
    assert "lack vmx (absent or disabled in firmware)" in report.support_reason


def test_ept_in_vmx_flags_line_counts(tmp_path: Path) -> None:
    cpuinfo = "vendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\nvmx flags\t: vnmi ept vpid\n"
    report = host_check(write_tree(tmp_path, {"proc/cpuinfo": cpuinfo}))
    assert report.supported is True


def test_hypervisor_flag_says_this_is_a_vm(tmp_path: Path) -> None:
    cpuinfo = fixture_text("intel-on").replace(" ss ", " ss hypervisor ")
    report = host_check(write_tree(tmp_path, {"proc/cpuinfo": cpuinfo}))
    assert (report.place.kind, report.place.level) == ("vm", "L1")
    assert report.place.evidence == ("CPU flag hypervisor",)
    assert "vmx is visible but kvm_intel is not loaded" in report.place.view


def test_hygon_uses_kvm_amd(tmp_path: Path) -> None:
    cpuinfo = fixture_text("amd-off").replace("AuthenticAMD", "HygonGenuine")
    report = host_check(write_tree(tmp_path, {"proc/cpuinfo": cpuinfo}))
    assert (report.vendor, report.module, report.supported) == ("amd", "kvm_amd", True)


def test_ibmz_without_sie_is_unsupported(tmp_path: Path) -> None:
    cpuinfo = fixture_text("ibmz-off").replace(" sie", "")
    report = host_check(write_tree(tmp_path, {"proc/cpuinfo": cpuinfo}))
    assert (report.arch, report.supported, report.exit_code) == (Arch.S390X, False, 3)
    assert "lack sie" in report.support_reason
    assert report.enable_now == ()


@pytest.mark.parametrize(
    ("cpu", "supported"),
    [
        ("POWER10 (architected), altivec supported", True),
        ("POWER10 (raw), altivec supported", True),
        ("POWER9 (architected), altivec supported", True),
        ("POWER8E (raw), altivec supported", False),
        ("POWER8NVL (raw), altivec supported", False),
        ("POWER7+ (raw), altivec supported", False),
        ("PPC970MP, altivec supported", False),
    ],
)
def test_power_generations(tmp_path: Path, cpu: str, supported: bool) -> None:
    cpuinfo = fixture_text("power9-off").replace("POWER9 (raw), altivec supported", cpu)
    cpuinfo = cpuinfo.replace("PowerNV", "pSeries")
    report = host_check(write_tree(tmp_path, {"proc/cpuinfo": cpuinfo}))
    assert report.arch is Arch.POWER
    assert report.supported is supported
    assert report.exit_code == (EXIT_ACTION_NEEDED if supported else EXIT_UNSUPPORTED)


def test_power10_notes_it_is_untested(tmp_path: Path) -> None:
    cpuinfo = fixture_text("power9-on").replace("POWER9", "POWER10")
    files = {"proc/cpuinfo": cpuinfo, "sys/module/kvm_hv/parameters/nested": "Y\n", **KVM_NODE}
    report = host_check(write_tree(tmp_path, files))
    assert report.exit_code == EXIT_READY
    assert any("POWER10 is untested" in note for note in report.notes)


# --- sysfs values and modprobe.d -------------------------------------------------------


def intel_tree(root: Path, nested: str | None, confs: dict[str, str]) -> Path:
    files = {"proc/cpuinfo": fixture_text("intel-off"), **KVM_NODE, **confs}
    if nested is not None:
        files["sys/module/kvm_intel/parameters/nested"] = nested
    return write_tree(root, files)


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("Y\n", True), ("1\n", True), ("N\n", False), ("0\n", False), ("2\n", False)],
)
def test_nested_values(tmp_path: Path, value: str, enabled: bool) -> None:
    report = host_check(intel_tree(tmp_path, value, {}))
    assert report.nested_value == value.strip()
    assert report.enabled is enabled
    assert report.exit_code == (EXIT_READY if enabled else EXIT_ACTION_NEEDED)


def test_unrecognised_value_is_noted(tmp_path: Path) -> None:
    report = host_check(intel_tree(tmp_path, "2\n", {}))
    assert any("Unrecognised value '2'" in note for note in report.notes)


def test_loaded_module_without_nested_parameter(tmp_path: Path) -> None:
    root = intel_tree(tmp_path, None, {"sys/module/kvm_intel/parameters/ept": "Y\n"})
    report = host_check(root)
    assert report.nested_value is None and report.enabled is False
    assert report.enable_now == ("modprobe -r kvm_intel", "modprobe kvm_intel nested=1")
    assert any("may not offer nesting" in note for note in report.notes)


@pytest.mark.parametrize(
    ("confs", "persisted"),
    [
        ({"etc/modprobe.d/kvm.conf": "options kvm-intel nested=Y\n"}, "/etc/modprobe.d/kvm.conf"),
        ({"etc/modprobe.d/kvm.conf": "#options kvm_intel nested=1\n"}, None),
        ({"etc/modprobe.d/kvm.conf": "options kvm_amd nested=1\n"}, None),
        ({"etc/modprobe.d/kvm.txt": "options kvm_intel nested=1\n"}, None),
        (
            {"etc/modprobe.d/nest.conf": "options kvm_intel \\\n  ept=1 nested=1\n"},
            "/etc/modprobe.d/nest.conf",
        ),
        (
            {
                "etc/modprobe.d/kvm.conf": "options kvm_intel nested=1\n",
                "etc/modprobe.d/zz-local.conf": "options kvm_intel nested=0\n",
            },
            None,
        ),
        (
            {"usr/lib/modprobe.d/kvm.conf": "options kvm_intel nested=1\n"},
            "/usr/lib/modprobe.d/kvm.conf",
        ),
        (
            {
                "usr/lib/modprobe.d/kvm.conf": "options kvm_intel nested=1\n",
                "etc/modprobe.d/kvm.conf": "# disabled by the admin\n",
            },
            None,
        ),
    ],
)
def test_persistent_config(tmp_path: Path, confs: dict[str, str], persisted: str | None) -> None:
    report = host_check(intel_tree(tmp_path, "N\n", confs))
    assert report.persistent_config_file == persisted


def test_config_disabling_nesting_is_noted(tmp_path: Path) -> None:
    confs = {
        "etc/modprobe.d/kvm.conf": "options kvm_intel nested=1\n",
        "etc/modprobe.d/zz-local.conf": "options kvm_intel nested=0\n",
    }
    report = host_check(intel_tree(tmp_path, "N\n", confs))
    assert any(
        note.startswith("/etc/modprobe.d/zz-local.conf sets nested=0 for kvm_intel")
        for note in report.notes
    )


def test_hpage_only_in_config_still_gets_hpage_0(tmp_path: Path) -> None:
    files = {
        "proc/cpuinfo": fixture_text("ibmz-off"),
        "sys/module/kvm/parameters/nested": "0\n",
        "sys/module/kvm/parameters/hpage": "0\n",
        "etc/modprobe.d/kvm.conf": "options kvm hpage=1\n",
    }
    report = host_check(write_tree(tmp_path, files))
    assert report.hpage is False
    assert report.enable_now == ("modprobe -r kvm", "modprobe kvm nested=1 hpage=0")


# --- exit code -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("supported", "enabled", "hpage", "code"),
    [
        (True, True, None, 0),
        (True, True, False, 0),
        (True, False, None, 1),
        (True, True, True, 1),
        (False, True, None, 3),
        (False, False, None, 3),
    ],
)
def test_exit_code(supported: bool, enabled: bool, hpage: bool | None, code: int) -> None:
    base = check("intel-on")
    report = dataclasses.replace(base, supported=supported, enabled=enabled, hpage=hpage)
    assert report.exit_code == code


def test_report_is_frozen() -> None:
    report = check("intel-on")
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.enabled = False  # type: ignore[misc]
