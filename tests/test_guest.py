"""Proof in a real guest: a domain xmlnest converted boots under libvirtd + QEMU and its
/proc/cpuinfo shows the nesting flag.

Guests run under TCG (tests/realvirt.py): xmlnest converts a ``type='kvm'`` domain, then
only that attribute becomes ``qemu``. QEMU's ``Opteron_G2``, ``qemu64`` and ``max`` show
``svm`` under TCG unless it is disabled, so each case also checks QEMU's ``-cpu`` argument
and the running domain's live XML, and its unconverted control (where one is booted) must
not show ``svm``. TCG has no VMX: the Intel case shows the trap XN201 warns about instead.
The boot tests are marked ``realguest`` (``-m 'not realguest'`` deselects them); without
libvirtd and QEMU they skip, under ``XMLNEST_REQUIRE_REAL=1`` they fail.
Not here yet: converting a domain by name (``--domain``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lxml import etree

from tests import realvirt as realvirt_module
from tests.conftest import REPO, Run, consent_to_system_daemon, libvirt_tool, need, run_cli
from tests.realvirt import (
    BEGIN,
    CAPTURE_CPU,
    CMDLINE,
    COUNT,
    END,
    FLAG,
    Booted,
    GuestError,
    RealVirt,
    cpu_argument,
    domain_name,
    guest_flags,
    to_tcg,
)

realguest = pytest.mark.realguest
LIVE = REPO / "tests" / "libvirt-xml" / "live"

AMD_SVM_DISABLED = """<cpu mode='custom' match='exact' check='partial'>
  <model fallback='allow'>Opteron_G2</model>
  <feature policy='disable' name='svm'/>
</cpu>"""
MAXIMUM_SVM_DISABLED = """<cpu mode='maximum' check='none'>
  <feature policy='disable' name='svm'/>
</cpu>"""
INTEL_VMX_DISABLED = """<cpu mode='custom' match='exact' check='none'>
  <model fallback='allow'>Haswell-noTSX</model>
  <feature policy='disable' name='vmx'/>
</cpu>"""


def _features(xml: bytes) -> dict[str, str]:
    """name -> policy of the <cpu> features in a domain XML."""
    cpu = etree.fromstring(xml).find("cpu")
    if cpu is None:
        return {}
    return {f.get("name", ""): f.get("policy", "require") for f in cpu.iter("feature")}


def _convert(virt: RealVirt, tmp_path: Path, label: str, cpu: str, args: list[str]) -> Run:
    """xmlnest ARGS on a file holding a bootable type='kvm' domain."""
    path = tmp_path / f"{label}.xml"
    path.write_bytes(virt.guest_xml(label, cpu))
    r = run_cli([*args, str(path)])
    assert r.code == 0, r.err
    return r


def _boot(virt: RealVirt, xml: bytes) -> Booted:
    return virt.boot(to_tcg(xml), domain_name(xml))


def _idempotent_and_valid(out: bytes, args: list[str], tmp_path: Path) -> None:
    path = tmp_path / "converted.xml"
    path.write_bytes(out)
    again = run_cli([*args, "--check", str(path)])
    assert again.code == 0, f"a second run would change the output: {again.err}"
    proc = subprocess.run(
        [libvirt_tool("virt-xml-validate"), str(path), "domain"], capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()


def _seen(booted: Booted) -> str:
    return f"guest flags {sorted(booted.flags)}, -cpu {booted.cpu_arg}; console:\n{booted.console}"


@realguest
def test_amd_named_model_with_svm_disabled(realvirt: RealVirt, tmp_path: Path) -> None:
    """Case 1: Opteron_G2 + disable svm -> xmlnest --arch amd -> the guest has svm."""
    args = ["--arch", "amd"]
    r = _convert(realvirt, tmp_path, "amd-model", AMD_SVM_DISABLED, args)
    booted = _boot(realvirt, r.out)
    assert "svm" in booted.flags, _seen(booted)
    assert booted.cpu_arg == "Opteron_G2,svm=on", _seen(booted)
    assert _features(booted.live_xml).get("svm") == "require"

    control = _boot(realvirt, realvirt.guest_xml("amd-model-control", AMD_SVM_DISABLED))
    assert control.flags == frozenset(), _seen(control)
    assert control.cpu_arg == "Opteron_G2,svm=off", _seen(control)
    assert _features(control.live_xml).get("svm") == "disable"
    _idempotent_and_valid(r.out, args, tmp_path)


@realguest
def test_amd_no_cpu_with_model(realvirt: RealVirt, tmp_path: Path) -> None:
    """Case 2: no <cpu> + --model Opteron_G2 -> svm required. Without <cpu> QEMU's default
    model shows svm under TCG too, so the proof is -cpu and the live XML."""
    args = ["--arch", "amd", "--model", "Opteron_G2"]
    r = _convert(realvirt, tmp_path, "amd-no-cpu", "", args)
    booted = _boot(realvirt, r.out)
    assert "svm" in booted.flags, _seen(booted)
    assert booted.cpu_arg == "Opteron_G2,svm=on", _seen(booted)
    assert _features(booted.live_xml).get("svm") == "require"
    _idempotent_and_valid(r.out, args, tmp_path)


@realguest
def test_amd_maximum_with_svm_disabled(realvirt: RealVirt, tmp_path: Path) -> None:
    """Case 3: mode='maximum' + disable svm -> the disable is removed -> svm."""
    args = ["--arch", "amd"]
    r = _convert(realvirt, tmp_path, "amd-maximum", MAXIMUM_SVM_DISABLED, args)
    booted = _boot(realvirt, r.out)
    assert "svm" in booted.flags, _seen(booted)
    assert booted.cpu_arg.split(",")[0] == "max", _seen(booted)
    assert "svm=off" not in booted.cpu_arg, _seen(booted)
    assert _features(booted.live_xml).get("svm") != "disable"

    control = _boot(realvirt, realvirt.guest_xml("amd-maximum-control", MAXIMUM_SVM_DISABLED))
    assert control.flags == frozenset(), _seen(control)
    assert control.cpu_arg == "max,svm=off", _seen(control)
    assert _features(control.live_xml).get("svm") == "disable"
    _idempotent_and_valid(r.out, args, tmp_path)


@realguest
def test_intel_check_none_hides_missing_vmx(realvirt: RealVirt, tmp_path: Path) -> None:
    """Case 4: TCG has no VMX. With check='none' libvirt starts the domain anyway, QEMU
    drops vmx with a warning, and the live XML says so: the trap XN201 warns about."""
    args = ["--arch", "intel"]
    r = _convert(realvirt, tmp_path, "intel-check-none", INTEL_VMX_DISABLED, args)
    assert "XN201" in r.err
    assert _features(r.out).get("vmx") == "require"
    booted = _boot(realvirt, r.out)
    assert "vmx" not in booted.flags, _seen(booted)
    assert booted.cpu_arg == "Haswell-noTSX,vmx=on", _seen(booted)
    assert "TCG doesn't support requested feature: CPUID.01H:ECX.vmx" in booted.qemu_log
    assert _features(booted.live_xml).get("vmx") == "disable"
    _idempotent_and_valid(r.out, args, tmp_path)


@realguest
def test_intel_check_partial_is_refused_under_tcg(realvirt: RealVirt, tmp_path: Path) -> None:
    """The same Intel domain with check='partial': libvirt refuses to start it under TCG
    rather than hide the missing vmx (no guest boots)."""
    args = ["--arch", "intel"]
    cpu = INTEL_VMX_DISABLED.replace("check='none'", "check='partial'")
    r = _convert(realvirt, tmp_path, "intel-check-partial", cpu, args)
    assert "XN201" not in r.err
    assert _features(r.out).get("vmx") == "require"
    xml = to_tcg(r.out)
    with pytest.raises(GuestError, match="Host CPU does not provide required features: vmx"):
        realvirt.boot(xml, domain_name(xml))
    _idempotent_and_valid(r.out, args, tmp_path)


@realguest
def test_hung_guest_is_destroyed_and_fails_with_its_console(
    realvirt: RealVirt, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeout fires: a guest that never powers off is destroyed, the boot fails with
    the console log."""
    monkeypatch.setattr(realvirt, "timeout", 20.0)
    cmdline = CMDLINE.replace("quiet", "xmlnest_e2e_hang")
    xml = realvirt.guest_xml("hang", AMD_SVM_DISABLED, domain_type="qemu", cmdline=cmdline)
    name = realvirt.prefix + "hang"
    with pytest.raises(GuestError, match="did not power off within 20 s") as caught:
        realvirt.boot(xml, name)
    assert realvirt.state(name) == "shut off"
    assert realvirt.console(name) in str(caught.value)


@realguest
def test_running_domain_xml_matches_the_committed_capture(realvirt: RealVirt) -> None:
    """running_domain_xml gives live XML (with an id) and inactive XML (without), shaped
    like tests/libvirt-xml/live/qemu-system-*.xml; the domain is gone afterwards."""
    xml = to_tcg(realvirt.guest_xml("live", CAPTURE_CPU))
    live, inactive = realvirt.running_domain_xml(xml)
    assert etree.fromstring(live).get("id") is not None
    assert etree.fromstring(inactive).get("id") is None
    recapture = "recapture with `python -m tests.realvirt capture tests/libvirt-xml/live`"
    for fresh, file in ((live, "running"), (inactive, "inactive")):
        committed = (LIVE / f"qemu-system-{file}.xml").read_bytes()
        assert _skeleton(fresh) == _skeleton(committed), recapture
    assert realvirt.virsh("domstate", realvirt.prefix + "live", check=False).returncode != 0


def _skeleton(xml: bytes) -> list[tuple[str, tuple[str, ...]]]:
    """Element paths and attribute names in document order (values vary between runs)."""
    root = etree.fromstring(xml)
    tree = root.getroottree()
    return [(tree.getpath(el), tuple(sorted(el.attrib))) for el in root.iter(etree.Element)]


@pytest.mark.parametrize("file", ["running", "inactive"])
def test_test_driver_capture_is_what_virsh_prints(file: str) -> None:
    extra = ["--inactive"] if file == "inactive" else []
    proc = subprocess.run(
        [libvirt_tool("virsh"), "-q", "-c", "test:///default", "dumpxml", *extra, "test"],
        capture_output=True,
        check=True,
    )
    assert proc.stdout == (LIVE / f"test-driver-{file}.xml").read_bytes()


def test_missing_libvirtd_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the skip (or, under XMLNEST_REQUIRE_REAL=1, the failure) says when libvirtd
    does not answer."""
    consent_to_system_daemon("ask its version")
    lack = realvirt_module.missing()
    if lack is not None:
        need(*lack)
    monkeypatch.setattr(realvirt_module, "URI", "qemu:///system?socket=/nonexistent/sock")
    lack = realvirt_module.missing()
    assert lack is not None and lack[0] == "a running libvirtd with QEMU", lack
    assert "libvirtd -d" in lack[1] and "\n" not in lack[1]


# --- the report parser and the one harness edit, without a guest ----------------------------


def _console(*report: str) -> str:
    return "\n".join(["[    0.1] booting", BEGIN, *report, END, "[    7.9] reboot: Power down"])


def test_guest_flags_reads_the_report() -> None:
    assert guest_flags(_console(f"{COUNT} 42", f"{FLAG} svm")) == {"svm"}
    assert guest_flags(_console(f"{COUNT} 42").replace("\n", "\r\n")) == frozenset()


@pytest.mark.parametrize(
    "console",
    [
        _console(),  # busybox aborted (5-level paging): no count, no flags
        _console(f"{COUNT} 0"),  # grep found no flags line
        _console(f"{COUNT} 3", f"{FLAG} svm"),
        f"{BEGIN}\n{COUNT} 42\n",  # cut short
        "",
    ],
)
def test_guest_flags_refuses_a_report_that_proves_nothing(console: str) -> None:
    with pytest.raises(GuestError):
        guest_flags(console)


def test_cpu_argument_is_the_last_start() -> None:
    log = "-machine pc\n-cpu Opteron_G2,svm=off \\\n-m 256\n...\n-cpu Opteron_G2,svm=on \\\n"
    assert cpu_argument(log) == "Opteron_G2,svm=on"
    with pytest.raises(GuestError):
        cpu_argument("-machine pc\n")


def test_to_tcg_changes_exactly_the_domain_type() -> None:
    xml = b"<domain type='kvm'>\n  <name>kvm</name>\n</domain>\n"
    assert to_tcg(xml) == b"<domain type='qemu'>\n  <name>kvm</name>\n</domain>\n"
    assert (
        to_tcg(b'<domain id="1" type="kvm">\n</domain>')
        == b'<domain id="1" type="qemu">\n</domain>'
    )
    with pytest.raises(GuestError):
        to_tcg(b"<domain type='qemu'>\n</domain>\n")


def _wait_for_report(virt: RealVirt, name: str, seconds: float = 90.0) -> frozenset[str]:
    """The flags a guest that stays up (xmlnest_e2e_hang) reported on its console."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        console = virt.console(name)
        if END in console:
            return guest_flags(console)
        time.sleep(0.5)
    raise GuestError(f"{name} printed no report within {seconds:.0f} s:\n{virt.console(name)}")


def _set_stored_type(virt: RealVirt, name: str, kind: str, tmp_path: Path) -> None:
    """The harness's one change to a stored definition: the domain type (TCG boots,
    xmlnest converts KVM domains); exactly that attribute differs."""
    stored = virt.virsh("dumpxml", "--inactive", name).stdout.encode()
    other = b"qemu" if kind == "kvm" else b"kvm"
    changed = stored.replace(
        b"<domain type='" + other + b"'", b"<domain type='" + kind.encode() + b"'", 1
    )
    assert changed != stored
    assert [
        a for a, b in zip(stored.splitlines(), changed.splitlines(), strict=True) if a != b
    ] == [stored.splitlines()[0]]
    path = tmp_path / f"{name}-{kind}.xml"
    path.write_bytes(changed)
    virt.virsh("define", "--validate", str(path))


def _status(name: str) -> dict[str, object]:
    import json

    r = run_cli(["-c", "qemu:///system", "--status", "--json", "--domain", name])
    (line,) = r.out.decode().splitlines()
    record: dict[str, object] = json.loads(line)
    return record


@realguest
def test_amd_by_name_on_a_running_domain_then_a_full_power_off(
    realvirt: RealVirt, tmp_path: Path
) -> None:
    """Case 5: `xmlnest -c qemu:///system --domain NAME -i` on a running guest defines the
    nesting edit for its next start and says a power-off is needed; --status says
    'restart pending' until the guest is powered off and started again, and the guest
    started from the new definition sees svm."""
    cmdline = CMDLINE.replace("quiet", "quiet xmlnest_e2e_hang")  # stays up after its report
    xml = realvirt.guest_xml("byname", AMD_SVM_DISABLED, cmdline=cmdline)
    name = realvirt.define(to_tcg(xml))
    realvirt.start(name)
    assert "svm" not in _wait_for_report(realvirt, name)
    _set_stored_type(realvirt, name, "kvm", tmp_path)  # the stored definition xmlnest reads

    r = run_cli(["-c", "qemu:///system", "--domain", name, "-i"])
    assert r.code == 0, r.err
    assert f"{name}: defined (restart pending)" in r.err_lines
    assert (
        f"qemu:///system: note: {name} is running: the new CPU takes effect after a full "
        f"power-off (virsh shutdown {name}; virsh start {name}); a reboot or reset is not enough"
    ) in r.err_lines
    stored = realvirt.virsh("dumpxml", "--inactive", name).stdout
    assert "<feature policy='require' name='svm'/>" in stored
    before = _status(name)
    assert before["state"] == "running" and before["stored"] == "nested"
    assert before["running"] == "not nested" and before["restart_pending"] is True

    realvirt.virsh("destroy", name)  # a full power-off (busybox init ignores ACPI shutdown)
    _set_stored_type(realvirt, name, "qemu", tmp_path)
    live = realvirt.start(name)
    assert "svm" in _wait_for_report(realvirt, name)
    assert _features(live).get("svm") == "require"
    assert cpu_argument(realvirt.qemu_log(name)) == "Opteron_G2,svm=on"
    after = _status(name)
    assert after["running"] == "nested" and after["restart_pending"] is False
    # the stored definition is TCG now (the harness's change): xmlnest refuses to convert it
    assert after["stored"] == "refused XN102"
    realvirt.remove(name)


@realguest
def test_amd_host_model_keeps_host_model_and_the_guest_sees_svm(
    realvirt: RealVirt, tmp_path: Path
) -> None:
    """--host-model (issue 15): host-model with svm disabled -> host-model requiring svm;
    under TCG libvirt expands host-model from QEMU's TCG CPU, which offers svm, and the
    guest sees it. Its control (svm disabled) does not."""
    host_model_off = (
        "<cpu mode='host-model' check='partial'>\n  <feature policy='disable' name='svm'/>\n</cpu>"
    )
    args = ["--arch", "amd", "--host-model"]
    r = _convert(realvirt, tmp_path, "amd-host-model", host_model_off, args)
    assert b"<cpu mode='host-model' check='partial'>" in r.out
    assert b"<feature policy='require' name='svm'/>" in r.out
    booted = _boot(realvirt, r.out)
    assert "svm" in booted.flags, _seen(booted)
    assert _features(booted.live_xml).get("svm") == "require"
    control = _boot(realvirt, realvirt.guest_xml("amd-host-model-control", host_model_off))
    assert "svm" not in control.flags, _seen(control)
    _idempotent_and_valid(r.out, args, tmp_path)
