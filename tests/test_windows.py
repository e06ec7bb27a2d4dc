"""--windows (issue 24): an x86 L1 ready for the Windows hypervisor.

Goldens in tests/golden/windows/ (test_golden.py runs them); here: their coverage, the
no-op and fix tables of the transform, what the target libvirt accepts, --disable on a
Windows L1, the plain edit's XN225, the real daemon (``virsh define --validate`` and
``virsh domxml-to-native qemu-argv``; only with ``XMLNEST_SYSTEM_DAEMON=1``, domains named
``xn-win-*``, undefined after) and the Windows XML of the shared corpus.

QEMU refuses the ``hv-*`` flags under TCG, so no Windows guest is booted here: the real
daemon's word is its validation and the QEMU command line it would run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import (
    REPO,
    SCHEMA_DIR,
    consent_to_system_daemon,
    libvirt_tool,
    need,
    require_corpus,
    run_cli,
)
from xmlnest import api
from xmlnest.engine.transforms.windows import windows_release
from xmlnest.engine.validate import hyperv_children

WIN = REPO / "tests" / "golden" / "windows"
CASES = sorted(p for p in WIN.iterdir() if (p / "input.xml").is_file())
OUTPUTS = [c for c in CASES if (c / "expected.xml").is_file()]


def _args(case: Path) -> list[str]:
    return shlex.split((case / "args").read_text())


def _ids(p: Path) -> str:
    return p.name


def test_goldens_cover_every_release_on_both_vendors() -> None:
    """Windows 10, 11, Server 2016, 2019, 2022, 2025 x Intel/AMD; AMD before 11/2022 refused."""
    seen: dict[tuple[str, str], str] = {}
    for case in CASES:
        ident = re.search(rb'libosinfo:os id="([^"]+)"', (case / "input.xml").read_bytes())
        if ident is None or not ident.group(1).startswith(b"http://microsoft.com/win/"):
            continue
        vendor = "amd" if "--arch amd" in (case / "args").read_text() else "intel"
        err = case / "expected.err"
        seen[(ident.group(1).decode()[25:], vendor)] = (
            err.read_text().strip() if err.is_file() else "ok"
        )
    for release in ("10", "11", "2k16", "2k19", "2k22", "2k25"):
        assert seen.get((release, "intel")) == "ok", release
        old = release in ("10", "2k16", "2k19")
        assert seen.get((release, "amd")) == ("XN114" if old else "ok"), release


def test_goldens_start_from_virt_manager_shapes() -> None:
    """Inputs with their own <hyperv> set, with mode='passthrough', and with none."""
    inputs = [(c / "input.xml").read_text() for c in CASES]
    assert any("<hyperv mode='passthrough'/>" in x for x in inputs)
    assert any("<hyperv" not in x for x in inputs)
    assert any("<relaxed state=" in x and "<stimer" not in x for x in inputs)  # virt-install < 5
    assert any("<evmcs state=" in x and "<avic state=" in x for x in inputs)  # virt-manager 5


@pytest.mark.parametrize("case", OUTPUTS, ids=_ids)
def test_golden_outputs_validate(case: Path) -> None:
    validate = libvirt_tool("virt-xml-validate")
    r = subprocess.run([validate, str(case / "expected.xml"), "domain"], capture_output=True)
    assert r.returncode == 0, r.stderr.decode()


# The transform's tables: XML fragments -> what --windows does with them.

DOMAIN = """<domain type='kvm'>
  <name>w</name>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>
      <libosinfo:os id='http://microsoft.com/win/{release}'/>
    </libosinfo:libosinfo>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
{features}{cpu}{clock}</domain>
"""
FULL_INTEL = """  <features>
    <hyperv mode='custom'>
      <relaxed state='on'/>
      <vapic state='on'/>
      <spinlocks state='on' retries='8191'/>
      <vpindex state='on'/>
      <runtime state='on'/>
      <synic state='on'/>
      <stimer state='on'>
        <direct state='on'/>
      </stimer>
      <frequencies state='on'/>
      <tlbflush state='on'/>
      <ipi state='on'/>
      <evmcs state='on'/>
    </hyperv>
  </features>
"""
PT_INTEL = """  <cpu mode='host-passthrough' check='none' migratable='off'>
    <feature policy='require' name='vmx'/>
    <feature policy='disable' name='hle'/>
    <feature policy='disable' name='rtm'/>
  </cpu>
"""
CLOCK = "  <clock offset='utc'>\n    <timer name='hypervclock' present='yes'/>\n  </clock>\n"


def dom(features: str = FULL_INTEL, cpu: str = PT_INTEL, clock: str = CLOCK, r: str = "11") -> str:
    return DOMAIN.format(features=features, cpu=cpu, clock=clock, release=r)


def convert(xml: str, vendor: str = "intel") -> api.Result:
    return api.transform(xml, arch=vendor, windows=True, validate="rng")


# Already what --windows makes: no edit at all (the output is the input, byte for byte).
NO_OP = {
    "everything-on": dom(),
    "extras-kept": dom(
        FULL_INTEL.replace(
            "<evmcs state='on'/>",
            "<evmcs state='on'/>\n      <avic state='on'/>\n      <reset state='off'/>",
        )
    ),
    "passthrough-hyperv-left-alone": dom(
        "  <features>\n    <hyperv mode='passthrough'/>\n  </features>\n"
    ),
    "retries-of-the-user-kept": dom(FULL_INTEL.replace("8191", "4095")),
    "tsx-forbidden-is-stronger": dom(
        cpu=PT_INTEL.replace("'disable' name='hle'", "'forbid' name='hle'")
    ),
    "maximum-mode": dom(cpu=PT_INTEL.replace("host-passthrough", "maximum")),
    "custom-model-kept": dom(
        cpu="  <cpu mode='custom' match='exact' check='partial'>\n    <model>Skylake-Client</model>\n"
        "    <feature policy='require' name='vmx'/>\n    <feature policy='disable' name='hle'/>\n"
        "    <feature policy='disable' name='rtm'/>\n  </cpu>\n"
    ),
}


@pytest.mark.parametrize("name", sorted(NO_OP))
def test_no_op(name: str) -> None:
    result = convert(NO_OP[name])
    assert not result.changed and result.output == NO_OP[name].encode()


# Fix table: input -> (substring that must appear in the output, substring that must not).
FIX: dict[str, tuple[str, str, str, str]] = {
    "off-flipped-in-place": (
        "intel",
        dom(FULL_INTEL.replace("<synic state='on'/>", "<synic state='off'/>")),
        "<synic state='on'/>",
        "<synic state='off'/>",
    ),
    "direct-added-to-stimer": (
        "intel",
        dom(
            FULL_INTEL.replace(
                "<stimer state='on'>\n        <direct state='on'/>\n      </stimer>",
                "<stimer state='on'/>",
            )
        ),
        "<stimer state='on'>\n        <direct state='on'/>\n      </stimer>",
        "<stimer state='on'/>",
    ),
    "direct-off-flipped": (
        "intel",
        dom(FULL_INTEL.replace("<direct state='on'/>", "<direct state='off'/>")),
        "<direct state='on'/>",
        "<direct state='off'/>",
    ),
    "spinlocks-turned-on-gets-retries": (
        "intel",
        dom(
            FULL_INTEL.replace("<spinlocks state='on' retries='8191'/>", "<spinlocks state='off'/>")
        ),
        "<spinlocks state='on' retries='8191'/>",
        "state='off'",
    ),
    "evmcs-on-intel-only": (
        "amd",
        dom(FULL_INTEL.replace("      <evmcs state='on'/>\n", ""), cpu=""),
        "<feature policy='require' name='svm'/>",
        "evmcs",
    ),
    "tsx-required-becomes-disabled": (
        "intel",
        dom(cpu=PT_INTEL.replace("'disable' name='rtm'", "'require' name='rtm'")),
        "<feature policy='disable' name='rtm'/>",
        "'require' name='rtm'",
    ),
    "hypervclock-added-after-the-timers": (
        "intel",
        dom(
            clock="  <clock offset='localtime'>\n    <timer name='rtc' tickpolicy='catchup'/>\n  </clock>\n"
        ),
        "<timer name='rtc' tickpolicy='catchup'/>\n    <timer name='hypervclock' present='yes'/>",
        "offset='utc'",
    ),
    "migratable-on-becomes-off": (
        "intel",
        dom(cpu=PT_INTEL.replace("migratable='off'", "migratable='on'")),
        "migratable='off'",
        "migratable='on'",
    ),
    "hyperv-goes-before-kvm": (
        "intel",
        dom(
            "  <features>\n    <acpi/>\n    <kvm>\n      <hint-dedicated state='on'/>\n    </kvm>\n  </features>\n"
        ),
        "<acpi/>\n    <hyperv mode='custom'>",
        "</kvm>\n    <hyperv",
    ),
}


@pytest.mark.parametrize("name", sorted(FIX))
def test_fix(name: str) -> None:
    vendor, xml, wanted, gone = FIX[name]
    result = convert(xml, vendor)
    out = result.output.decode()
    assert result.changed
    assert wanted in out, out
    assert gone not in out, out
    again = convert(out, vendor)
    assert not again.changed  # a second --windows run changes nothing


def test_untouched_lines_stay_byte_identical() -> None:
    src = (WIN / "intel-win11-virt-manager-dquote" / "input.xml").read_bytes()
    out = (WIN / "intel-win11-virt-manager-dquote" / "expected.xml").read_bytes()
    before, after = src.splitlines(), out.splitlines()
    assert [ln for ln in before if ln not in after] == [
        b'      <stimer state="on"/>',
        b'  <cpu mode="host-passthrough" check="none" migratable="on"/>',
    ]


@pytest.mark.parametrize(
    ("ident", "amd_ok"),
    [
        ("http://microsoft.com/win/10", False),
        ("http://microsoft.com/win/8.1", False),
        ("http://microsoft.com/win/11", True),
        ("http://microsoft.com/win/2k16", False),
        ("http://microsoft.com/win/2k19", False),
        ("http://microsoft.com/win/2k22", True),
        ("http://microsoft.com/win/2k25", True),
        ("http://microsoft.com/win/2k12r2", False),
        ("http://microsoft.com/win/xp", False),
    ],
)
def test_release_from_libosinfo(ident: str, amd_ok: bool) -> None:
    release = windows_release(ident)
    assert release is not None and release.amd_nesting is amd_ok
    assert windows_release("http://redhat.com/rhel/9.4") is None


def test_amd_without_metadata_warns_xn229() -> None:
    xml = re.sub(r"  <metadata>.*?</metadata>\n", "", dom(cpu=""), flags=re.S)
    result = api.transform(xml, arch="amd", windows=True, validate="none")
    assert result.changed
    assert [f.rule for f in result.findings if f.rule == "XN229"] == ["XN229"]


def test_confidential_guest_refused_for_every_x86_edit() -> None:
    """XN115 also without --windows, and not for --disable."""
    xml = dom().replace("</domain>", "  <launchSecurity type='sev-snp'/>\n</domain>")
    for args in (["--arch", "intel"], ["--arch", "intel", "--windows"]):
        r = run_cli([*args, "-"], xml.encode())
        assert r.code == 3 and "XN115" in r.err and r.out == b""
    r = run_cli(["--arch", "intel", "--disable", "-"], xml.encode())
    assert r.code == 0, r.err


def test_windows_flag_usage_errors() -> None:
    r = run_cli(["--windows", "--arch", "power9", "-"], dom().encode())
    assert r.code == 2 and "--windows" in r.err
    with pytest.raises(ValueError, match="windows"):
        api.transform(dom(), arch="ibmz", windows=True)


def test_disable_on_a_windows_l1_turns_off_vmx_only() -> None:
    out = (WIN / "intel-win10-virt-install-old-host-model" / "expected.xml").read_bytes()
    for extra in ([], ["--windows"]):
        r = run_cli(["--arch", "intel", "--disable", *extra, "-"], out)
        assert r.code == 0, r.err
        changed = [ln for ln in r.out.splitlines() if ln not in out.splitlines()]
        assert changed == [b"    <feature policy='disable' name='vmx'/>"]


def test_plain_edit_on_windows_warns_xn225_with_what_is_missing() -> None:
    src = (WIN / "intel-win11-virt-manager-dquote" / "input.xml").read_bytes()
    r = run_cli(["--arch", "intel", "-"], src)
    (line,) = [ln for ln in r.err_lines if " XN225 " in ln]
    assert "stimer direct" in line and "--windows" in line
    done = (WIN / "intel-win11-virt-manager-dquote" / "expected.xml").read_bytes()
    assert "XN225" not in run_cli(["--arch", "intel", "-"], done).err


def test_xn225_never_advises_what_passthrough_gives() -> None:
    src = (WIN / "intel-win2k19-hyperv-passthrough" / "input.xml").read_bytes()
    r = run_cli(["--arch", "intel", "-"], src)
    (line,) = [ln for ln in r.err_lines if " XN225 " in ln]
    assert "enlightenment" not in line and "stimer" not in line and "evmcs" not in line


def test_notes_come_with_the_edit_only() -> None:
    case = WIN / "amd-win11-virt-manager"
    r = run_cli([*_args(case), "-"], (case / "input.xml").read_bytes())
    assert "XN227" in r.err and "bcdedit /set hypervisorlaunchtype off" in r.err
    r = run_cli([*_args(case), "-"], (case / "expected.xml").read_bytes())
    assert "XN227" not in r.err


def test_hidden_hypervisor_warned_never_added() -> None:
    case = WIN / "intel-win2k22-custom-model-off-enlightenments-hidden"
    r = run_cli([*_args(case), "-"], (case / "input.xml").read_bytes())
    assert len([ln for ln in r.err_lines if " XN226 " in ln]) == 2
    for case in OUTPUTS:
        added = set((case / "expected.xml").read_text().splitlines()) - set(
            (case / "input.xml").read_text().splitlines()
        )
        assert not [ln for ln in added if "vendor_id" in ln or "hidden" in ln], case


# What the target libvirt accepts: the installed schema, or a schema without some of it.


def test_the_installed_schema_accepts_the_whole_profile() -> None:
    if not (SCHEMA_DIR / "domain.rng").is_file():
        need("libvirt's schemas", "apt-get install libvirt-clients")
    accepted = hyperv_children(str(SCHEMA_DIR), {})
    assert accepted is not None
    assert {"relaxed", "stimer", "stimer.direct", "evmcs", "ipi", "tlbflush"} <= accepted


def _older_schema(folder: Path) -> Path:
    """A copy of libvirt's schemas whose <hyperv> lacks ipi and evmcs and whose <stimer>
    takes no <direct>: a libvirt older than both."""
    for f in SCHEMA_DIR.glob("*.rng"):
        shutil.copy(f, folder / f.name)
    common = folder / "domaincommon.rng"
    text = common.read_text()
    for name in ("ipi", "evmcs"):
        text, n = re.subn(
            rf'\s*<optional>\s*<element name="{name}">\s*<ref name="featurestate"/>\s*'
            r"</element>\s*</optional>",
            "",
            text,
            count=1,
        )
        assert n == 1, name
    text, n = re.subn(
        r'(<define name="stimer">).*?(</define>)',
        r'\1<optional><ref name="featurestate"/></optional>\2',
        text,
        count=1,
        flags=re.S,
    )
    assert n == 1
    common.write_text(text)
    return folder


def test_never_an_element_the_target_schema_refuses(tmp_path: Path) -> None:
    if not (SCHEMA_DIR / "domain.rng").is_file():
        need("libvirt's schemas", "apt-get install libvirt-clients")
    folder = _older_schema(tmp_path)
    case = WIN / "intel-win2k16-no-hyperv-no-cpu"
    r = run_cli([*_args(case), "--schema-dir", str(folder), "-"], (case / "input.xml").read_bytes())
    assert r.code == 0, r.err
    assert b"<ipi" not in r.out and b"<evmcs" not in r.out and b"<direct" not in r.out
    assert b"<tlbflush state='on'/>" in r.out
    (line,) = [ln for ln in r.err_lines if " XN228 " in ln]
    assert "ipi, evmcs, stimer direct" in line
    schema = etree.RelaxNG(etree.parse(str(folder / "domain.rng")))
    assert schema.validate(etree.fromstring(r.out)), schema.error_log
    # The whole profile, forced into the same schema, would be refused: the test can fail.
    full = (case / "expected.xml").read_bytes()
    assert not schema.validate(etree.fromstring(full))


def test_by_name_the_schema_dir_also_says_what_may_be_written(tmp_path: Path) -> None:
    """--schema-dir reaches the --windows profile by name too (the CLI's own options go to
    convert_domains, built once), not only the validation."""
    if not (SCHEMA_DIR / "domain.rng").is_file():
        need("libvirt's schemas", "apt-get install libvirt-clients")
    folder = _older_schema(tmp_path)
    case = WIN / "intel-win2k16-no-hyperv-no-cpu"
    node = tmp_path / "node.xml"
    node.write_bytes(b"<node>\n" + (case / "input.xml").read_bytes() + b"</node>\n")
    args = ["-c", f"test://{node}", "--domain", "win2k16", "--windows", "--arch", "intel"]
    r = run_cli([*args, "--schema-dir", str(folder)])
    assert r.code == 0, r.err
    assert b"<evmcs" not in r.out and b"<ipi" not in r.out and b"<tlbflush state='on'/>" in r.out
    assert "ipi, evmcs, stimer direct" in r.err
    assert b"<evmcs state='on'/>" in run_cli(args).out  # the installed schema takes it


# The real daemon: every golden output defined (qemu:///system), and the QEMU argv.


def _system_virsh() -> str:
    virsh = libvirt_tool("virsh")
    probe = subprocess.run([virsh, "-c", "qemu:///system", "version"], capture_output=True)
    if probe.returncode != 0:
        need("a running libvirtd (qemu:///system)", "libvirtd -d and virtlogd -d (.ci/run)")
    return virsh


def _named(xml: bytes, name: str) -> bytes:
    return re.sub(rb"<name>[^<]*</name>", f"<name>{name}</name>".encode(), xml, count=1)


@pytest.mark.parametrize("case", OUTPUTS, ids=_ids)
def test_real_daemon_defines_every_output(case: Path, tmp_path: Path) -> None:
    consent_to_system_daemon("define domains named xn-win-*")
    virsh = _system_virsh()
    name = f"xn-win-{os.getpid()}-{case.name}"[:60]
    path = tmp_path / "d.xml"
    path.write_bytes(_named((case / "expected.xml").read_bytes(), name))
    r = subprocess.run(
        [virsh, "-c", "qemu:///system", "define", "--validate", str(path)], capture_output=True
    )
    try:
        assert r.returncode == 0, r.stderr.decode()
    finally:
        subprocess.run(
            [virsh, "-c", "qemu:///system", "undefine", "--nvram", name], capture_output=True
        )


def _argv_input(xml: bytes) -> bytes:
    """What domxml-to-native is given: no firmware autoselection (this host has no OVMF;
    the loader does not touch -cpu), and checked CPUs made check='none', since libvirt
    compares a checked CPU with this host's (it lacks vmx) before writing any argv."""
    xml = re.sub(rb""" firmware=(['"])efi\1""", b"", xml)
    return re.sub(rb"""check=(['"])partial\1""", rb"check=\1none\1", xml)


def cpu_argv(xml: bytes, tmp_path: Path) -> str:
    consent_to_system_daemon("ask libvirtd for QEMU command lines (domxml-to-native)")
    virsh = _system_virsh()
    path = tmp_path / "argv.xml"
    path.write_bytes(_argv_input(xml))
    r = subprocess.run(
        [virsh, "-c", "qemu:///system", "domxml-to-native", "qemu-argv", str(path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    found = re.search(r"-cpu (\S+)", r.stdout)
    assert found, r.stdout
    return found.group(1)


@pytest.mark.parametrize("case", OUTPUTS, ids=_ids)
def test_qemu_argv_carries_the_profile(case: Path, tmp_path: Path) -> None:
    out = (case / "expected.xml").read_bytes()
    flags = cpu_argv(out, tmp_path).split(",")
    intel = "--arch intel" in (case / "args").read_text()
    assert ("vmx=on" if intel else "svm=on") in flags
    assert "hv-time=on" in flags
    if intel:
        assert {"hle=off", "rtm=off"} <= set(flags)
    if b"mode='passthrough'" in out or b'mode="passthrough"' in out:
        assert "hv-passthrough=on" in flags
        return
    assert "hv-stimer-direct=on" in flags
    assert ("hv-evmcs=on" in flags) is intel
    for hv in ("relaxed", "vapic", "vpindex", "runtime", "synic", "stimer", "frequencies",
               "tlbflush", "ipi"):  # fmt: skip
        assert f"hv-{hv}=on" in flags, hv


def test_qemu_argv_of_the_input_lacks_it(tmp_path: Path) -> None:
    """The control: virt-manager's own Windows 11 XML has no vmx and no direct stimers."""
    src = (WIN / "intel-win11-virt-manager-dquote" / "input.xml").read_bytes()
    flags = cpu_argv(src, tmp_path).split(",")
    assert "vmx=on" not in flags and "hv-stimer-direct=on" not in flags


# Windows XML nobody here wrote: the shared corpus.


def _corpus_windows() -> list[Path]:
    corpus = require_corpus()
    return sorted(
        p
        for p in corpus.rglob("*.xml")
        if b"http://microsoft.com/win/" in p.read_bytes() or b"<hyperv" in p.read_bytes()
    )


def test_corpus_windows_domains() -> None:
    """No crash; an output libvirt's schema accepts wherever the input was accepted; a
    second run changes nothing. Refusals are one-line rule errors."""
    files = _corpus_windows()
    assert len(files) >= 20
    changed = refused = 0
    for path in files:
        raw = path.read_bytes()
        for vendor in ("intel", "amd"):
            r = run_cli(["--windows", "--arch", vendor, "--schema-dir", str(SCHEMA_DIR), "-"], raw)
            assert r.code in (0, 3), (path, r.err)
            if r.code == 3:
                refused += 1
                assert len(r.err_lines) == 1 and re.search(r" XN1\d\d ", r.err), (path, r.err)
                continue
            changed += r.out != raw
            again = run_cli(["--windows", "--arch", vendor, "--no-validate", "--check", "-"], r.out)
            assert again.code == 0, (path, again.err)
    assert changed >= 10 and refused >= 1


# With a libvirt connection: what the host's domain capabilities list, too.

DOMCAPS = """<domainCapabilities><features>
  <hyperv supported='yes'>
    <enum name='features'>
      <value>relaxed</value><value>vapic</value><value>spinlocks</value>
      <value>vpindex</value><value>synic</value><value>stimer</value>
      <value>vendor_id</value>
    </enum>
  </hyperv>
</features></domainCapabilities>"""


def test_hyperv_from_domain_capabilities() -> None:
    from xmlnest.libvirt.connection.base import hyperv_from_domcaps

    assert hyperv_from_domcaps(DOMCAPS) == frozenset(
        ("relaxed", "vapic", "spinlocks", "vpindex", "synic", "stimer", "vendor_id")
    )
    assert hyperv_from_domcaps("<domainCapabilities><features/></domainCapabilities>") is None
    off = "<domainCapabilities><features><hyperv supported='no'/></features></domainCapabilities>"
    assert hyperv_from_domcaps(off) == frozenset()


def test_only_what_the_host_offers_is_written() -> None:
    from xmlnest.engine import core
    from xmlnest.libvirt.connection.base import hyperv_from_domcaps
    from xmlnest.model import HostFacts, Options

    offered = hyperv_from_domcaps(DOMCAPS)
    host = HostFacts("qemu:///system", offered=(("x86_64", None),), hyperv=(("x86_64", offered),))
    case = WIN / "intel-win2k16-no-hyperv-no-cpu"
    options = Options(arch="intel", windows=True)
    out = core.process((case / "input.xml").read_bytes(), options, host=host)
    text = out.output.decode()
    assert "<stimer state='on'>\n        <direct state='on'/>" in text
    for gone in ("runtime", "frequencies", "tlbflush", "ipi", "evmcs"):
        assert f"<{gone} " not in text, gone
    (xn228,) = [f for f in out.findings if f.rule == "XN228"]
    assert "runtime, frequencies, tlbflush, ipi, evmcs" in xn228.message
    again = core.process(out.output, options, host=host)
    assert not again.changed
    # Without the host's word, the same input gets the whole profile: the test can fail.
    assert b"<evmcs state='on'/>" in core.process(out.output, options).output


def test_by_name_on_the_real_daemon_uses_its_domain_capabilities(tmp_path: Path) -> None:
    """-c qemu:///system --domain NAME --windows -i: defined back, and what this host's
    domain capabilities leave out is named (XN228) rather than written."""
    consent_to_system_daemon("define domains named xn-win-*")
    virsh = _system_virsh()
    from xmlnest.libvirt.connection.base import hyperv_from_domcaps

    caps = subprocess.run(
        [virsh, "-c", "qemu:///system", "domcapabilities", "--virttype", "kvm", "--arch", "x86_64"],
        capture_output=True,
        check=True,
    ).stdout
    offered = hyperv_from_domcaps(caps)
    name = f"xn-win-{os.getpid()}-byname"
    case = WIN / "intel-win2k16-no-hyperv-no-cpu"
    path = tmp_path / "d.xml"
    path.write_bytes(_named((case / "input.xml").read_bytes(), name))
    subprocess.run(
        [virsh, "-c", "qemu:///system", "define", str(path)], check=True, capture_output=True
    )
    try:
        r = run_cli(
            ["-c", "qemu:///system", "--domain", name, "--windows", "--arch", "intel", "-i"]
        )
        assert r.code == 0, r.err
        stored = subprocess.run(
            [virsh, "-c", "qemu:///system", "dumpxml", "--inactive", name],
            capture_output=True,
            check=True,
        ).stdout
        hyperv = etree.fromstring(stored).find("features/hyperv")
        assert hyperv is not None
        written = {el.tag for el in hyperv}
        assert written
        if offered is not None:
            assert written <= offered | {"stimer"}
            left_out = {"relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer",
                        "frequencies", "tlbflush", "ipi", "evmcs"} - offered  # fmt: skip
            assert ("XN228" in r.err) is bool(left_out), r.err
        again = run_cli(
            ["-c", "qemu:///system", "--domain", name, "--windows", "--arch", "intel", "--check"]
        )
        assert again.code == 0, again.err
    finally:
        subprocess.run(
            [virsh, "-c", "qemu:///system", "undefine", "--nvram", name], capture_output=True
        )


def test_xn225_on_an_old_windows_on_amd_says_why_not_windows() -> None:
    src = (WIN / "amd-win10-refused" / "input.xml").read_bytes()
    r = run_cli(["--arch", "amd", "-"], src)
    assert r.code == 0, r.err
    (line,) = [ln for ln in r.err_lines if " XN225 " in ln]
    assert "Windows 10 on AMD" in line and "use xmlnest --windows" not in line


def test_the_windows_notes_are_said_without_v_and_never_refuse_under_strict(
    tmp_path: Path,
) -> None:
    """XN227 is a note: shown unless -q, but --strict does not turn it into a refusal (it
    comes with every --windows edit, so --strict --windows would otherwise never edit)."""
    from xmlnest.engine.plan import Level
    from xmlnest.engine.rules import RULES

    assert RULES["XN227"].level == Level.NOTE.value
    case = WIN / "intel-win11-virt-manager-dquote"
    args = (case / "args").read_text().split()
    f = tmp_path / "win.xml"
    f.write_bytes((case / "input.xml").read_bytes())
    r = run_cli([*args, "--strict", "-i", str(f)])
    assert r.code == 0, r.err
    assert ": note: XN227 " in r.err
    assert f.read_bytes() == (case / "expected.xml").read_bytes()
    quiet = run_cli([*args, "-q", "--check", str(case / "input.xml")])
    assert quiet.err_lines == [f"{case / 'input.xml'}: would change"]  # -q: the verdict only
