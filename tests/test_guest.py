"""Proof in a real guest: a domain xmlnest converted boots under libvirtd + QEMU, is a
hypervisor, and runs a guest of its own (an L2).

Guests run under TCG (tests/realvirt.py): xmlnest converts a ``type='kvm'`` domain, then
only that attribute becomes ``qemu``. QEMU's TCG emulates AMD's SVM, so an AMD L1 from
xmlnest's output loads ``kvm_amd``, gets ``/dev/kvm`` and runs a minimal L2 through it
(tests/guest/l2.c); its control (unconverted, or ``--disable``-d) shows no ``svm``,
``kvm_amd`` refuses to load and no L2 runs. After each AMD L1, the facts it printed are
laid out as a host tree and ``xmlnest --host-check --host-root`` must agree with what the
L1 did. QEMU's ``Opteron_G2``, ``qemu64`` and ``max`` show ``svm`` under TCG unless it is
disabled, so each case also checks QEMU's ``-cpu`` argument and the running domain's live
XML. TCG has no VMX: the Intel case shows the trap XN201 warns about instead.
POWER9: TCG implements nested-HV, so a pseries L1 from ``--arch power9`` output loads
``kvm-hv``; the untouched input is refused by the L1 kernel itself.
A failing case prints the guest's console, the QEMU log and its -cpu/-machine arguments.
The boot tests are marked ``realguest`` (``-m 'not realguest'`` deselects them); without
libvirtd and QEMU they skip, under ``XMLNEST_REQUIRE_REAL=1`` they fail.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
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
    FILE,
    FLAG,
    KMSG,
    LINE,
    MODULE,
    NODE,
    Booted,
    DeviceNode,
    GuestError,
    L1Report,
    RealVirt,
    cpu_argument,
    domain_name,
    guest_flags,
    host_tree,
    l1_report,
    machine_argument,
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
    return booted.why()


L2_SAYS = "hello from L2"  # what tests/guest/l2.c's guest writes to its I/O port


def _host_check(report: L1Report, root: Path) -> Run:
    """``xmlnest --host-check --host-root`` on the L1's facts laid out as a host tree."""
    return run_cli(["--host-check", "--host-root", str(host_tree(report, root))])


def _runs_l2(booted: Booted, tmp_path: Path) -> None:
    """The L1 is an AMD hypervisor: kvm_amd loaded with nesting on, /dev/kvm is there, the
    L2 ran to its hlt and its output reached the console; --host-check on its facts says
    L2 guests can run."""
    l1 = booted.l1
    assert l1.loaded("kvm-amd"), booted.why()
    assert l1.logged("kvm: Nested Virtualization enabled"), booted.why()
    assert l1.files.get("/sys/module/kvm_amd/parameters/nested") == "1\n", booted.why()
    assert l1.dev_kvm is not None and (l1.dev_kvm.major, l1.dev_kvm.minor) == (10, 232)
    assert l1.l2_output == L2_SAYS, booted.why()
    assert f"XMLNEST-L2-OUT {L2_SAYS}" in booted.console
    # without nested paging (Opteron_G2, qemu64) KVM shadows the L2's page tables: slower
    npt = l1.files.get("/sys/module/kvm_amd/parameters/npt")
    assert npt in ("Y\n", "N\n"), booted.why()
    paging = "enabled" if npt == "Y\n" else "disabled"
    assert l1.logged(f"SVM: kvm: Nested Paging {paging}"), booted.why()
    check = _host_check(l1, tmp_path / f"{booted.name}-tree")
    said = f"{check.out.decode()}{check.err}\n{booted.why()}"
    assert check.code == 0, said
    assert "Where:        VM (L1): CPU flag hypervisor" in said
    slowly = "" if npt == "Y\n" else ", slowly (see Speed)"
    assert f"Status: ready: L2 guests can run{slowly} (exit 0)" in said


def _runs_no_l2(booted: Booted, tmp_path: Path) -> None:
    """The L1 is no hypervisor: kvm_amd refuses to load (the kernel says why), there is no
    /dev/kvm and no L2; --host-check on its facts says nesting is not supported."""
    l1 = booted.l1
    assert "svm" not in booted.flags, booted.why()
    assert not l1.loaded("kvm-amd"), booted.why()
    assert "Operation not supported" in l1.modules.get("kvm-amd", ""), booted.why()
    assert l1.logged("has_svm: svm not available"), booted.why()
    assert l1.logged("kvm: no hardware support for 'kvm_amd'"), booted.why()
    assert l1.dev_kvm is None and l1.l2_output is None, booted.why()
    assert "XMLNEST-L2-FAIL open /dev/kvm: No such file or directory" in l1.l2, booted.why()
    check = _host_check(l1, tmp_path / f"{booted.name}-tree")
    assert check.code == 3, f"{check.out.decode()}{check.err}\n{booted.why()}"
    assert "CPU flags lack svm" in check.out.decode(), check.out.decode()


@realguest
def test_amd_named_model_with_svm_disabled(realvirt: RealVirt, tmp_path: Path) -> None:
    """Case 1: Opteron_G2 + disable svm -> xmlnest --arch amd -> the guest has svm and
    runs an L2; the unconverted control has no svm and runs none."""
    args = ["--arch", "amd"]
    r = _convert(realvirt, tmp_path, "amd-model", AMD_SVM_DISABLED, args)
    control_xml = to_tcg(realvirt.guest_xml("amd-model-control", AMD_SVM_DISABLED))
    booted, control = realvirt.boot_all([to_tcg(r.out), control_xml])
    assert "svm" in booted.flags, _seen(booted)
    assert booted.cpu_arg == "Opteron_G2,svm=on", _seen(booted)
    assert _features(booted.live_xml).get("svm") == "require"
    _runs_l2(booted, tmp_path)

    assert control.flags == frozenset(), _seen(control)
    assert control.cpu_arg == "Opteron_G2,svm=off", _seen(control)
    assert _features(control.live_xml).get("svm") == "disable"
    _runs_no_l2(control, tmp_path)
    _idempotent_and_valid(r.out, args, tmp_path)


@realguest
def test_amd_no_cpu_with_model(realvirt: RealVirt, tmp_path: Path) -> None:
    """Case 2: no <cpu> + --model Opteron_G2 -> svm required, and the L1 runs an L2.
    Without <cpu> QEMU's default model shows svm under TCG too, so the proof is -cpu and
    the live XML. The negative control is the same output through --disable: svm
    disabled, kvm_amd refuses to load, no L2."""
    args = ["--arch", "amd", "--model", "Opteron_G2"]
    r = _convert(realvirt, tmp_path, "amd-no-cpu", "", args)
    on = _convert(realvirt, tmp_path, "amd-no-cpu-disabled", "", args)  # the same, renamed
    assert _features(on.out).get("svm") == "require"
    off = run_cli(["--arch", "amd", "--disable", "-"], on.out)
    assert off.code == 0, off.err
    assert _features(off.out).get("svm") == "disable"
    booted, disabled = realvirt.boot_all([to_tcg(r.out), to_tcg(off.out)])
    assert "svm" in booted.flags, _seen(booted)
    assert booted.cpu_arg == "Opteron_G2,svm=on", _seen(booted)
    assert _features(booted.live_xml).get("svm") == "require"
    _runs_l2(booted, tmp_path)

    assert disabled.cpu_arg == "Opteron_G2,svm=off", _seen(disabled)
    _runs_no_l2(disabled, tmp_path)
    _idempotent_and_valid(r.out, args, tmp_path)


@realguest
def test_amd_maximum_with_svm_disabled(realvirt: RealVirt, tmp_path: Path) -> None:
    """Case 3: mode='maximum' + disable svm -> the disable is removed -> svm, an L2 runs
    (TCG's max CPU also offers nested paging); the control runs none."""
    args = ["--arch", "amd"]
    r = _convert(realvirt, tmp_path, "amd-maximum", MAXIMUM_SVM_DISABLED, args)
    control_xml = to_tcg(realvirt.guest_xml("amd-maximum-control", MAXIMUM_SVM_DISABLED))
    booted, control = realvirt.boot_all([to_tcg(r.out), control_xml])
    assert "svm" in booted.flags, _seen(booted)
    assert booted.cpu_arg.split(",")[0] == "max", _seen(booted)
    assert "svm=off" not in booted.cpu_arg, _seen(booted)
    assert _features(booted.live_xml).get("svm") != "disable"
    _runs_l2(booted, tmp_path)

    assert control.flags == frozenset(), _seen(control)
    assert control.cpu_arg == "max,svm=off", _seen(control)
    assert _features(control.live_xml).get("svm") == "disable"
    _runs_no_l2(control, tmp_path)
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
    assert booted.l1.dev_kvm is None and booted.l1.l2_output is None, _seen(booted)
    check = _host_check(booted.l1, tmp_path / "intel-tree")
    assert check.code == 3 and "CPU flags lack vmx" in check.out.decode(), check.out.decode()
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


CPUINFO_L1 = (
    "processor\t: 0",
    "vendor_id\t: AuthenticAMD",
    "model name\t: AMD Opteron 22xx (Gen 2 Class Opteron)",
    "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 "
    "clflush mmx fxsr sse sse2 syscall nx lm rep_good nopl cpuid extd_apicid pni cx16 "
    "hypervisor lahf_lm svm",
    "",
)


def _l1_console(*, loaded: bool) -> str:
    """An L1's report shaped like a real one (tests/realvirt.py INIT), the kernel still
    printing when BEGIN came."""
    cpuinfo = CPUINFO_L1 if loaded else tuple(ln.replace(" svm", "") for ln in CPUINFO_L1)
    files = {"/proc/cpuinfo": cpuinfo, "/sys/class/dmi/id/sys_vendor": ("QEMU",)}
    if loaded:
        files |= {
            "/proc/modules": ("kvm_amd 163840 0 - Live 0xffffffffc06b9000",),
            "/sys/module/kvm_amd/initstate": ("live",),
            "/sys/module/kvm_amd/parameters/nested": ("1",),
            "/sys/module/kvm_amd/parameters/npt": ("N",),
        }
    body = [f"{FLAG} svm", f"{COUNT} 42"] if loaded else [f"{COUNT} 41"]
    body.append(f"{MODULE} loaded kvm-amd" if loaded else f"{MODULE} failed kvm-amd: nope")
    body.append(f"{KMSG} [   10.9] kvm: Nested Virtualization enabled")
    for path, lines in files.items():
        body += [f"{FILE} {path}", *(f"{LINE} {ln}" for ln in lines)]
    body.append(f"{NODE} /dev/kvm a e8 660 0 36" if loaded else f"{NODE} /dev/kvm missing")
    body += ["XMLNEST-L2-OUT hello from L2", "XMLNEST-L2-EXIT hlt after 13 port writes"]
    glued = _console(*body).replace(f"booting\n{BEGIN}", f"booting Linux 6.{BEGIN}")
    return glued.replace("\n", "\r\n")


def test_l1_report_reads_modules_log_files_node_and_l2() -> None:
    report = l1_report(_l1_console(loaded=True))
    assert report.loaded("kvm-amd") and report.logged("Nested Virtualization enabled")
    assert report.files["/proc/cpuinfo"] == "\n".join(CPUINFO_L1) + "\n"  # tabs, blank line
    assert report.files["/sys/module/kvm_amd/parameters/nested"] == "1\n"
    assert report.dev_kvm == DeviceNode(10, 232, 0o660, 0, 36)
    assert report.l2_output == "hello from L2"
    refused = l1_report(_l1_console(loaded=False))
    assert refused.modules == {"kvm-amd": "nope"} and refused.dev_kvm is None


@pytest.mark.parametrize(
    "cut",
    [
        lambda c: c.replace(f"{NODE} /dev/kvm a e8 660 0 36", ""),  # no word on /dev/kvm
        lambda c: c.replace(END, ""),  # cut short
        lambda c: c.replace(f"{FILE} /proc/cpuinfo", ""),  # a line of no file
    ],
)
def test_l1_report_refuses_a_report_that_proves_nothing(cut: Callable[[str], str]) -> None:
    with pytest.raises(GuestError):
        l1_report(cut(_l1_console(loaded=True)))


def test_l2_output_needs_the_hlt() -> None:
    console = _l1_console(loaded=True).replace("XMLNEST-L2-EXIT hlt after 13 port writes", "")
    assert l1_report(console).l2_output is None


def test_host_tree_is_what_host_check_reads(tmp_path: Path) -> None:
    """The L1's facts as a host tree: --host-check sees a VM whose kvm_amd runs L2s slowly,
    and, without kvm_amd and /dev/kvm, one that cannot."""
    ready = _host_check(l1_report(_l1_console(loaded=True)), tmp_path / "ready")
    assert ready.code == 0, ready.out.decode()
    out = ready.out.decode()
    assert "Where:        VM (L1): CPU flag hypervisor" in out
    assert "/sys/module/kvm_amd/parameters/nested = 1 (enabled)" in out
    assert "character device 10:232" in out
    assert "Status: ready: L2 guests can run, slowly (see Speed) (exit 0)" in out
    assert (tmp_path / "ready" / "dev" / "kvm.fixture-node").is_file()
    assert not (tmp_path / "ready" / "dev" / "kvm").exists()
    cannot = _host_check(l1_report(_l1_console(loaded=False)), tmp_path / "cannot")
    assert cannot.code == 3, cannot.out.decode()
    assert "/dev/kvm:     missing" in cannot.out.decode()
    assert "CPU flags lack svm" in cannot.out.decode()


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
    host, line, summary = r.out.decode().splitlines()  # the host record, the row, the counts
    assert '"record": "host"' in host and '"record": "summary"' in summary
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
    log = realvirt.qemu_log(name)
    assert cpu_argument(log) == "Opteron_G2,svm=on"
    console = realvirt.console(name)
    running = Booted(
        name, guest_flags(console), console, cpu_argument(log), log, live,
        l1_report(console), machine_argument(log),
    )  # fmt: skip
    _runs_l2(running, tmp_path)
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
    control_xml = to_tcg(realvirt.guest_xml("amd-host-model-control", host_model_off))
    booted, control = realvirt.boot_all([to_tcg(r.out), control_xml])
    assert "svm" in booted.flags, _seen(booted)
    assert _features(booted.live_xml).get("svm") == "require"
    _runs_l2(booted, tmp_path)
    assert "svm" not in control.flags, _seen(control)
    _runs_no_l2(control, tmp_path)
    _idempotent_and_valid(r.out, args, tmp_path)


# --- POWER9: a pseries L1 becomes a hypervisor (kvm-hv) -------------------------------------

NOT_NESTING = "kvm-hv: Parent hypervisor does not support nesting (rc=-2)"


def _nested_hv(xml: bytes) -> str | None:
    found = etree.fromstring(xml).find("features/nested-hv")
    return None if found is None else found.get("state")


@realguest
def test_power9_l1_loads_kvm_hv_and_the_untouched_input_cannot(
    power9: RealVirt, tmp_path: Path
) -> None:
    """POWER9: --arch power9 adds <nested-hv state='on'/>, libvirt passes cap-nested-hv=on
    and the pseries L1 loads kvm-hv (with nested=Y). The untouched input boots too, but its
    kernel refuses kvm-hv with its own message. The --level l2 output (for an L2 that is
    itself nested, where nested-hv is for speed) is accepted by libvirt and boots. The
    three boot side by side."""
    args = ["--arch", "power9"]
    l2_args = [*args, "--level", "l2"]
    converted, l2 = (tmp_path / "p9.xml", tmp_path / "p9-l2.xml")
    converted.write_bytes(power9.pseries_xml("p9"))
    l2.write_bytes(power9.pseries_xml("p9-l2"))
    r, r2 = run_cli([*args, str(converted)]), run_cli([*l2_args, str(l2)])
    assert r.code == 0 and r2.code == 0, r.err + r2.err
    assert _nested_hv(r.out) == "on" and _nested_hv(r2.out) == "on"
    untouched = power9.pseries_xml("p9-untouched")
    assert _nested_hv(untouched) is None

    booted, control, level2 = power9.boot_all([to_tcg(r.out), to_tcg(untouched), to_tcg(r2.out)])
    assert "cap-nested-hv=on" in booted.machine_arg.split(","), booted.why()
    assert booted.cpu_arg == "POWER9", booted.why()
    assert _nested_hv(booted.live_xml) == "on"
    assert booted.l1.loaded("kvm"), booted.why()
    assert booted.l1.loaded("kvm-hv"), booted.why()
    assert booted.l1.files.get("/sys/module/kvm_hv/parameters/nested") == "Y\n", booted.why()
    assert "kvm_hv " in booted.l1.files.get("/proc/modules", ""), booted.why()
    assert not booted.l1.logged("does not support nesting"), booted.why()

    assert "cap-nested-hv=on" not in control.machine_arg.split(","), control.why()
    assert control.l1.loaded("kvm"), control.why()
    assert not control.l1.loaded("kvm-hv"), control.why()
    assert "No such device" in control.l1.modules.get("kvm-hv", ""), control.why()
    assert control.l1.logged(NOT_NESTING), control.why()
    assert "kvm_hv " not in control.l1.files.get("/proc/modules", ""), control.why()

    assert "cap-nested-hv=on" in level2.machine_arg.split(","), level2.why()
    assert _nested_hv(level2.live_xml) == "on"
    assert level2.l1.loaded("kvm-hv"), level2.why()
    _idempotent_and_valid(r.out, args, tmp_path)
    _idempotent_and_valid(r2.out, l2_args, tmp_path)
