"""Every rule: a case that triggers it and one that does not; --explain; README lists all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from xmlnest.rules import RULES

X86 = """<domain type='kvm'{ns}>
  <name>r</name>
  <memory unit='KiB'>1048576</memory>
  {metadata}<os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <features>
    <acpi/>{features}
  </features>
  {cpu}
  <clock offset='utc'/>{extra}
</domain>
"""
RHEL86 = (
    "<metadata><libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/"
    "domain/1.0'><libosinfo:os id='http://redhat.com/rhel/{v}'/></libosinfo:libosinfo>"
    "</metadata>\n  "
)
POWER = """<domain type='kvm'>
  <name>p</name>
  <memory unit='KiB'>1048576</memory>
  {metadata}<os>
    <type arch='ppc64le' machine='{machine}'>hvm</type>
  </os>
  <features>{features}
  </features>
  {cpu}
</domain>
"""
S390 = """<domain type='kvm'>
  <name>z</name>
  <memory unit='KiB'>1048576</memory>
  {backing}<os>
    <type arch='s390x' machine='s390-ccw-virtio'>hvm</type>
  </os>
  {extra}
</domain>
"""


def x86(
    cpu: str = "<cpu mode='host-passthrough'/>",
    features: str = "",
    extra: str = "",
    os: str = "8.6",
    ns: str = "",
    dom: str = "kvm",
) -> str:
    meta = RHEL86.format(v=os) if os else ""
    return X86.format(cpu=cpu, features=features, extra=extra, metadata=meta, ns=ns).replace(
        "type='kvm'", f"type='{dom}'", 1
    )


def power(machine: str = "pseries", features: str = "", cpu: str = "", os: str = "8.6") -> str:
    meta = RHEL86.format(v=os) if os else ""
    return POWER.format(machine=machine, features=features, cpu=cpu, metadata=meta)


CUSTOM = (
    "<cpu mode='custom' match='exact' check='{check}'>\n    <model>Haswell-noTSX</model>\n"
    "    <feature policy='{policy}' name='{name}'/>\n  </cpu>"
)
QEMU_NS = " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"
QEMU_CPU = (
    "\n  <qemu:commandline>\n    <qemu:arg value='-cpu'/>\n    <qemu:arg value='host'/>\n"
    "  </qemu:commandline>"
)
QEMU_OTHER = QEMU_CPU.replace("-cpu", "-no-hpet").replace("'host'", "'x'")

# rule -> (args, triggering XML, similar XML that must not trigger)
CASES: dict[str, tuple[list[str], str, str]] = {
    "XN101": ([], x86().replace("x86_64", "aarch64").replace("q35", "virt"), x86()),
    "XN102": ([], x86(dom="qemu"), x86()),
    "XN103": (["--arch", "power9"], x86(), power()),
    "XN104": (
        ["--arch", "intel"],
        x86(CUSTOM.format(check="partial", policy="forbid", name="vmx")),
        x86(CUSTOM.format(check="partial", policy="disable", name="vmx")),
    ),
    "XN105": (
        [],
        power(cpu="<cpu mode='host-model'><model>power8</model></cpu>"),
        power(cpu="<cpu mode='host-model'><model>power9</model></cpu>"),
    ),
    "XN106": (
        [],
        S390.format(backing="<memoryBacking><hugepages/></memoryBacking>\n  ", extra=""),
        S390.format(backing="<memoryBacking><locked/></memoryBacking>\n  ", extra=""),
    ),
    "XN107": (
        [],
        S390.format(backing="", extra="<launchSecurity type='s390-pv'/>"),
        S390.format(backing="", extra=""),
    ),
    "XN108": ([], x86().replace(" arch='x86_64'", ""), x86()),
    "XN109": ([], power(machine="powernv9"), power(machine="pseries-rhel8.2.0")),
    "XN111": (["--arch", "intel"], x86("<cpu mode='host-modl'/>"), x86("<cpu mode='host-model'/>")),
    "XN112": (["--level", "l2"], x86(), power()),
    "XN201": (
        ["--arch", "intel"],
        x86(CUSTOM.format(check="none", policy="require", name="vmx")),
        x86(CUSTOM.format(check="partial", policy="require", name="vmx")),
    ),
    "XN202": (["--arch", "amd"], x86(), x86()),
    "XN203": (  # a warning where xmlnest switches host-model (a note for host-passthrough)
        ["--arch", "intel"],
        x86("<cpu mode='host-model' check='partial'/>"),
        x86(CUSTOM.format(check="partial", policy="require", name="vmx")),
    ),
    "XN204": (
        ["--arch", "intel"],
        x86(ns=QEMU_NS, extra=QEMU_CPU),
        x86(ns=QEMU_NS, extra=QEMU_OTHER),
    ),
    "XN205": (["--arch", "intel"], x86(os="8.1"), x86(os="7.9")),
    "XN206": (["--arch", "intel", "-v"], x86(os=""), x86()),
    "XN207": (
        ["--arch", "intel"],
        x86(features="\n    <hyperv mode='custom'>\n      <vapic state='on'/>\n    </hyperv>"),
        x86(
            features="\n    <hyperv mode='custom'>\n      <vapic state='on'/>\n      <stimer state='on'>\n        <direct state='on'/>\n      </stimer>\n      <evmcs state='on'/>\n    </hyperv>"
        ),
    ),
    "XN208": (
        ["--arch", "intel"],
        x86(
            "<cpu mode='host-passthrough'>\n    <feature policy='require' name='vmx'/>\n    <feature policy='require' name='svm'/>\n  </cpu>"
        ),
        x86(
            "<cpu mode='host-passthrough'>\n    <feature policy='require' name='vmx'/>\n    <feature policy='optional' name='svm'/>\n  </cpu>"
        ),
    ),
    "XN215": (
        ["--arch", "intel", "--model", "Skylake-Client"],
        x86(
            "<cpu mode='custom' match='exact' check='partial'>\n    <model fallback='allow'>EPYC-Rome</model>\n    <feature policy='require' name='npt'/>\n  </cpu>"
        ),
        x86(
            "<cpu mode='custom' match='exact' check='partial'>\n    <model fallback='allow'>EPYC-Rome</model>\n    <feature policy='optional' name='npt'/>\n  </cpu>"
        ),
    ),
    "XN209": (
        [],
        power(features="\n    <hpt resizing='enabled'/>"),
        power(features="\n    <htm state='on'/>"),
    ),
    "XN210": (["-v"], power(), power().replace("<nested", "<nested")),
    "XN211": (
        ["--arch", "intel"],
        x86(
            CUSTOM.format(check="partial", policy="require", name="pcid").replace(
                "<model>Haswell-noTSX</model>", "<model>Haswell-noTSX</model>\n    <bogus/>"
            )
        ),
        x86(CUSTOM.format(check="partial", policy="require", name="pcid")),
    ),
    "XN212": (
        [],
        S390.format(backing="", extra="<cpu mode='custom'><model>z14</model></cpu>"),
        S390.format(backing="", extra="<cpu mode='host-model'/>"),
    ),
    "XN214": (["--level", "l2"], power(os="7.6"), power(os="8.6")),
    "XN220": (["--arch", "intel", "--disable", "-v"], x86(cpu=""), x86()),
    "XN221": (["--disable", "-v"], S390.format(backing="", extra="<cpu mode='host-model'/>"), ""),
    "XN222": (
        ["--arch", "intel", "--host-model", "-v"],
        x86(),
        x86(CUSTOM.format(check="partial", policy="require", name="vmx")),
    ),
    "XN213": ([], power(features="\n    <nested-hv state='off'/>"), power()),
}


def test_every_rule_has_a_case() -> None:
    # XN223 needs what a libvirt connection tells about the host: tests/test_disable.py
    assert set(CASES) | {"XN110", "XN223"} == set(RULES)


NO_CPU_RNG = """<grammar xmlns="http://relaxng.org/ns/structure/1.0">
  <start><ref name="any"/></start>
  <define name="any">
    <element><anyName><except><name>cpu</name></except></anyName>
      <zeroOrMore><choice><attribute><anyName/></attribute><text/><ref name="any"/></choice>
      </zeroOrMore>
    </element>
  </define>
</grammar>
"""


def test_xn110_output_that_breaks_a_valid_input_is_refused(tmp_path: Path) -> None:
    """A schema that forbids <cpu>: the input passes it, the nested output cannot."""
    (tmp_path / "domain.rng").write_text(NO_CPU_RNG)
    xml = x86(cpu="").encode()
    r = run_cli(["--arch", "intel", "--schema-dir", str(tmp_path), "-"], xml)
    assert r.code == 3 and r.out == b""
    assert "XN110" in r.err and "nothing was written" in r.err
    invalid_already = x86(cpu="<cpu mode='host-model'/>").encode()
    r = run_cli(["--arch", "intel", "--schema-dir", str(tmp_path), "-"], invalid_already)
    assert r.code == 0 and "XN211" in r.err


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_triggers_and_does_not(rule: str) -> None:
    args, bad, good = CASES[rule]
    level = RULES[rule].level
    hit = run_cli([*args, "--schema-dir", "/usr/share/libvirt/schemas", "-"], bad.encode())
    lines = [ln for ln in hit.err_lines if f" {rule} " in ln]
    assert lines, hit.err
    assert re.match(r"^<stdin>(:\d+)?: ", lines[0])
    if level == "error":
        assert hit.code == 3 and hit.out == b""
    else:
        assert hit.code == 0, hit.err
        assert f"{level}: {rule}" in lines[0]
    if rule in ("XN202", "XN210", "XN221"):  # every AMD / POWER9 L1, IBM Z --disable
        quiet = run_cli([*args, "-q", "-"], bad.encode())
        assert rule not in quiet.err
        return
    miss = run_cli([*args, "--schema-dir", "/usr/share/libvirt/schemas", "-"], good.encode())
    assert rule not in miss.err, miss.err


def test_strict_turns_warnings_into_errors() -> None:
    args, bad, _ = CASES["XN201"]
    r = run_cli([*args, "--strict", "-"], bad.encode())
    assert r.code == 3 and r.out == b""
    assert "XN201" in r.err and "(--strict)" in r.err


def test_info_notes_need_verbose() -> None:
    r = run_cli(["--arch", "intel", "-"], x86(os="").encode())
    assert "XN206" not in r.err and "XN203" not in r.err


@pytest.mark.parametrize("rule", sorted(RULES))
def test_explain_prints_the_rule(rule: str) -> None:
    r = run_cli(["--explain", rule])
    assert r.code == 0
    text = r.out.decode()
    assert text.startswith(f"{rule} ({RULES[rule].level}): {RULES[rule].title}")
    assert "Source: " in text and "Hint: " in text


def test_explain_unknown_rule_is_a_usage_error() -> None:
    assert run_cli(["--explain", "XN999"]).code == 2


def test_readme_lists_every_rule() -> None:
    readme = (REPO / "README.md").read_text()
    for rule in RULES:
        assert f"| {rule} |" in readme, rule


def test_level_l2_on_power_applies_the_same_edit_without_l1_notes() -> None:
    r = run_cli(["--level", "l2", "-v", "--no-validate", "-"], power().encode())
    assert r.code == 0
    assert b"<nested-hv state='on'/>" in r.out
    assert "XN210" not in r.err


def test_level_l2_with_explicit_x86_arch_is_a_usage_error() -> None:
    assert run_cli(["--level", "l2", "--arch", "intel", "-"], x86().encode()).code == 2


def test_xn215_also_flags_vmx_sub_features_on_amd() -> None:
    cpu = (
        "<cpu mode='host-passthrough'>\n    <feature policy='require' name='vmx-ept'/>\n"
        "    <feature policy='disable' name='vmx-apicv-xapic'/>\n  </cpu>"
    )
    r = run_cli(["--arch", "amd", "-"], x86(cpu).encode())
    assert r.code == 0, r.err
    flagged = [ln for ln in r.err_lines if "XN215" in ln]
    assert len(flagged) == 1 and "'vmx-ept'" in flagged[0] and "Intel's VMX" in flagged[0]


def test_svm_sub_features_are_libvirts_cpuid_leaf_0x8000000a() -> None:
    """The list is libvirt's own: every feature its cpu_map puts in CPUID 0x8000000A."""
    from lxml import etree

    from tests.conftest import require_libvirt_schema
    from xmlnest.transforms.advice import SVM_FEATURES

    cpu_map = require_libvirt_schema().parent / "cpu_map" / "x86_features.xml"
    names = {
        f.get("name")
        for f in etree.parse(str(cpu_map)).iter("feature")
        if any(c.get("eax_in") == "0x8000000a" for c in f.iter("cpuid"))
    }
    assert names == SVM_FEATURES
