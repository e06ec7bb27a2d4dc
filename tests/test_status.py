"""xmlnest.libvirt.status: the --status verdicts as tables (pure: XML and host facts in, words out)."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from xmlnest.libvirt import status
from xmlnest.libvirt.connection import Feature
from xmlnest.libvirt.status import NESTED, NOT_NESTED, StatusRow
from xmlnest.model import Vendor


def live(
    cpu: str = "", *, arch: str = "x86_64", kind: str = "kvm", features: str = ""
) -> etree._Element:
    xml = (
        f"<domain type='{kind}' id='7'><name>vm</name><os><type arch='{arch}'>hvm</type></os>"
        f"{features}{cpu}</domain>"
    )
    return etree.fromstring(xml)


def feats(*pairs: str) -> frozenset[Feature]:
    """``feats("svm=require", "vmx=disable")``"""
    return frozenset(Feature(*p.split("=")) for p in pairs)


PASS = "<cpu mode='host-passthrough'/>"
PASS_SVM_OFF = "<cpu mode='host-passthrough'><feature policy='disable' name='svm'/></cpu>"
HASWELL = "<cpu mode='custom' match='exact'><model>Haswell-noTSX</model>{f}</cpu>"
EPYC = "<cpu mode='custom' match='exact' check='full'><model fallback='forbid'>EPYC</model><vendor>AMD</vendor><feature policy='require' name='x2apic'/></cpu>"
OFFERS_SVM = feats("svm=require", "x2apic=require")
LACKS_SVM = feats("svm=disable", "x2apic=require")

X86 = [
    # (case, cpu, host vendor, host-model features, expanded live CPU features, verdict)
    ("passthrough, host offers svm", PASS, "amd", OFFERS_SVM, None, NESTED),
    ("passthrough, host lacks svm", PASS, "amd", LACKS_SVM, None, NOT_NESTED),
    ("passthrough, host cannot say", PASS, "amd", None, None, NESTED),
    ("passthrough, vendor unknown", PASS, None, None, None, NESTED),
    ("passthrough, vendor unknown, host lacks both", PASS, None, LACKS_SVM, None, NOT_NESTED),
    ("passthrough disabling svm", PASS_SVM_OFF, "amd", OFFERS_SVM, None, NOT_NESTED),
    (
        "passthrough disabling svm on Intel",
        PASS_SVM_OFF,
        "intel",
        feats("vmx=require"),
        None,
        NESTED,
    ),
    ("maximum, host offers", "<cpu mode='maximum'/>", "amd", OFFERS_SVM, None, NESTED),
    ("host-model, host lacks", "<cpu mode='host-model'/>", "amd", LACKS_SVM, None, NOT_NESTED),
    (
        "custom requires vmx",
        HASWELL.format(f="<feature policy='require' name='vmx'/>"),
        "intel",
        None,
        None,
        NESTED,
    ),
    (
        "custom forces vmx",
        HASWELL.format(f="<feature policy='force' name='vmx'/>"),
        "intel",
        None,
        None,
        NESTED,
    ),
    (
        "custom policy-less vmx",
        HASWELL.format(f="<feature name='vmx'/>"),
        "intel",
        None,
        None,
        NESTED,
    ),
    (
        "custom disables vmx",
        HASWELL.format(f="<feature policy='disable' name='vmx'/>"),
        "intel",
        None,
        None,
        NOT_NESTED,
    ),
    (
        "custom optional vmx",
        HASWELL.format(f="<feature policy='optional' name='vmx'/>"),
        "intel",
        None,
        None,
        NOT_NESTED,
    ),
    ("custom without vmx", HASWELL.format(f=""), "intel", None, None, NOT_NESTED),
    ("EPYC listed only", EPYC, "amd", None, None, NOT_NESTED),
    (
        "EPYC expanded: svm from the model",
        EPYC,
        "amd",
        None,
        feats("svm=require", "x2apic=require"),
        NESTED,
    ),
    (
        "EPYC expanded: svm disabled",
        EPYC,
        "amd",
        None,
        feats("svm=disable", "x2apic=require"),
        NOT_NESTED,
    ),
    ("no cpu", "", "intel", feats("vmx=require"), None, NOT_NESTED),
]


@pytest.mark.parametrize(
    ("cpu", "vendor", "host", "expanded", "verdict"),
    [pytest.param(*c[1:], id=c[0]) for c in X86],
)
def test_x86_running_verdict(
    cpu: str,
    vendor: Vendor | None,
    host: frozenset[Feature] | None,
    expanded: frozenset[Feature] | None,
    verdict: str,
) -> None:
    got = status.running_verdict(
        live(cpu),
        host_vendor=vendor,
        host_features=host,
        cpu_features=expanded,
    )
    assert got == verdict


def test_x86_tcg_is_judged_by_the_cpu_it_emulates() -> None:
    """TCG emulates SVM for its guest (tests/test_guest.py shows svm in a TCG guest's
    /proc/cpuinfo): a required feature counts; a host mode says nothing under TCG; a
    domain type with no x86 CPU of its own never nests."""
    cpu = HASWELL.format(f="<feature policy='require' name='vmx'/>")
    assert status.running_verdict(live(cpu)) == NESTED
    assert status.running_verdict(live(cpu, kind="qemu")) == NESTED
    off = HASWELL.format(f="<feature policy='disable' name='vmx'/>")
    assert status.running_verdict(live(off, kind="qemu")) == NOT_NESTED
    assert status.running_verdict(live("<cpu mode='maximum'/>", kind="qemu")) == NOT_NESTED
    assert status.running_verdict(live(cpu, kind="xen")) == NOT_NESTED


@pytest.mark.parametrize(
    ("features", "verdict"),
    [
        ("<features><nested-hv state='on'/></features>", NESTED),
        ("<features><nested-hv state='off'/></features>", NOT_NESTED),
        ("<features><acpi/></features>", NOT_NESTED),
        ("", NOT_NESTED),
    ],
)
def test_power9_running_verdict(features: str, verdict: str) -> None:
    assert status.running_verdict(live(arch="ppc64le", features=features)) == verdict


@pytest.mark.parametrize(
    ("cpu", "kind", "expanded", "verdict"),
    [
        ("", "kvm", None, NESTED),
        ("<cpu mode='host-model'/>", "kvm", None, NESTED),
        (
            "<cpu mode='host-model'><feature policy='disable' name='sief2'/></cpu>",
            "kvm",
            None,
            NOT_NESTED,
        ),
        ("<cpu mode='custom'><model>z14.2-base</model></cpu>", "kvm", None, NOT_NESTED),
        (
            "<cpu mode='custom'><model>z14.2-base</model></cpu>",
            "kvm",
            feats("sief2=require"),
            NESTED,
        ),
        ("<cpu mode='custom'><model>z14</model><feature name='sief2'/></cpu>", "kvm", None, NESTED),
        ("<cpu mode='host-model'/>", "qemu", None, NOT_NESTED),
    ],
)
def test_ibmz_running_verdict(
    cpu: str, kind: str, expanded: frozenset[Feature] | None, verdict: str
) -> None:
    root = live(cpu, arch="s390x", kind=kind)
    assert status.running_verdict(root, cpu_features=expanded) == verdict


@pytest.mark.parametrize("arch", ["aarch64", "armv7l", "riscv64", ""])
def test_other_arches_are_never_nested(arch: str) -> None:
    assert status.running_verdict(live(PASS, arch=arch), host_features=OFFERS_SVM) == NOT_NESTED


def test_cpu_to_expand_only_for_a_named_custom_model() -> None:
    assert status.cpu_to_expand(live(PASS)) is None
    assert status.cpu_to_expand(live("")) is None
    assert status.cpu_to_expand(live("<cpu mode='custom'><topology sockets='1'/></cpu>")) is None
    cpu = status.cpu_to_expand(live(EPYC))
    assert cpu is not None
    assert etree.fromstring(cpu).findtext("model") == "EPYC"
    assert cpu.startswith("<cpu mode='custom'") or cpu.startswith('<cpu mode="custom"')


@pytest.mark.parametrize(
    ("stored", "running", "pending"),
    [
        ("nested", "nested", False),
        ("nested", "not nested", True),  # defined nested, still runs the old CPU
        # Never converted (a host-model guest on a host that offers vmx runs nested): a
        # restart would change nothing; the edit is what is missing, not a power-off.
        ("would change", "nested", False),
        ("would change", "not nested", False),
        ("refused XN101", "not nested", False),
        ("refused XN102", "nested", False),
        ("nested", None, False),  # not running
        ("would change", None, False),
        # --disable: the stored definition is "not nested" once disabled
        ("not nested", "nested", True),  # disabled, still runs with vmx
        ("not nested", "not nested", False),
        ("host setting", "nested", False),  # IBM Z: no XML edit, no restart settles it
    ],
)
def test_restart_pending(stored: str, running: str | None, pending: bool) -> None:
    assert status.restart_pending(stored, running) is pending
    assert status.row("vm", "x86_64", "running", stored, running).restart_pending is pending


def test_stored_verdict() -> None:
    assert status.stored_verdict(changed=False) == "nested"
    assert status.stored_verdict(changed=True) == "would change"
    assert status.stored_verdict(changed=False, refused="XN102") == "refused XN102"


def test_stored_verdict_under_disable_says_what_is_true() -> None:
    """--disable: an already disabled definition is "not nested", never "nested"."""
    assert status.stored_verdict(changed=False, disable=True) == "not nested"
    assert status.stored_verdict(changed=True, disable=True) == "would change"
    assert status.stored_verdict(changed=False, disable=True, host_setting=True) == "host setting"
    rows = [
        status.row("a", "x86_64", "running", "not nested", "nested"),
        status.row("b", "s390x", "running", "host setting", "nested"),
        status.row("c", "x86_64", "shut off", "not nested", None),
    ]
    assert [r.exit_code for r in rows] == [1, 0, 0]


@pytest.mark.parametrize(
    ("stored", "running", "code"),
    [
        ("nested", "nested", 0),
        ("nested", None, 0),
        ("would change", None, 1),
        ("nested", "not nested", 1),  # restart pending
        ("refused XN101", None, 3),
    ],
)
def test_row_exit_codes(stored: str, running: str | None, code: int) -> None:
    assert status.row("vm", "x86_64", "shut off", stored, running).exit_code == code


def test_exit_code_is_the_highest() -> None:
    rows = [status.row("a", "x86_64", "shut off", "nested", None)]
    assert status.exit_code(rows) == 0
    rows.append(status.row("b", "x86_64", "running", "nested", "not nested"))
    assert status.exit_code(rows) == 1
    rows.append(status.row("c", "aarch64", "running", "refused XN101", "not nested"))
    assert status.exit_code(rows) == 3
    assert status.exit_code([]) == 0


def test_json_line() -> None:
    r = status.row("café", "x86_64", "running", "nested", "not nested")
    line = r.json_line()
    assert line == (
        '{"arch": "x86_64", "name": "café", "restart_pending": true, "running": "not nested", '
        '"state": "running", "stored": "nested"}'
    )
    assert json.loads(line)["restart_pending"] is True


def test_table_lines_align_and_stream() -> None:
    rows = [
        status.row("web", "x86_64", "running", "nested", "not nested"),
        status.row("a-long-name", "ppc64le", "shut off", "would change", None),
    ]
    width = max(len(r.name) for r in rows)
    lines = [status.header(width), *(status.table_line(r, width) for r in rows)]
    assert lines == [
        "NAME         ARCH      STATE         STORED          RUNNING",
        "web          x86_64    running       nested          not nested    restart pending",
        "a-long-name  ppc64le   shut off      would change    -",
    ]


def test_running_note_is_the_issues_text() -> None:
    assert status.running_note("web1") == (
        "web1 is running: the new CPU takes effect after a full power-off "
        "(virsh shutdown web1; virsh start web1); a reboot or reset is not enough"
    )


def test_row_is_frozen() -> None:
    r = StatusRow("a", "x86_64", "running", "nested", "nested", False)
    with pytest.raises(AttributeError):
        r.name = "b"  # type: ignore[misc]


def test_exposure_counts_stored_running_and_pending() -> None:
    rows = [
        status.row("a", "x86_64", "running", NESTED, NESTED),
        status.row("b", "x86_64", "running", NESTED, NOT_NESTED),  # restart pending
        status.row("c", "x86_64", "shut off", NESTED, None),
        status.row("d", "x86_64", "shut off", "would change", None),
        status.row("e", "x86_64", "running", "refused XN102", NOT_NESTED),
    ]
    counts = status.exposure(rows)
    assert counts == status.Exposure(5, 3, 3, 1, 1)
    assert counts.line() == (
        "3 of 5 domains expose vmx/svm in their stored definition; 1 of 3 running domains "
        "have it now; 1 restart pending"
    )
    assert json.loads(counts.json_line()) == {
        "record": "summary", "domains": 5, "stored_nested": 3, "running": 3,
        "running_nested": 1, "restart_pending": 1,
    }  # fmt: skip
    assert status.exposure([]).line().startswith("0 of 0 domains")
    # under --disable, a stored definition that still exposes it is one that would change
    assert status.exposure(rows, disable=True).stored_nested == 1
