"""XN113: the live XML of a running domain is refused; its stored (--inactive) XML converts.

On XML libvirt itself wrote (tests/libvirt-xml/live/, captured from a running TCG guest on
qemu:///system and from the test driver), and on a guest running now on the real daemon.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO, run_cli

LIVE = REPO / "tests" / "libvirt-xml" / "live"


def _as_kvm(xml: bytes) -> bytes:
    """The one edit a TCG or test-driver capture needs before xmlnest accepts it."""
    out = re.sub(rb"<domain type='(qemu|test)'", b"<domain type='kvm'", xml, count=1)
    assert out != xml
    return out


def _refused(xml: bytes) -> str:
    r = run_cli(["--arch", "amd", "-"], xml)
    assert r.code == 3 and r.out == b""
    (line,) = r.err_lines
    return line


def test_a_running_qemu_domains_live_xml_is_refused_naming_its_runtime_state() -> None:
    line = _refused((LIVE / "qemu-system-running.xml").read_bytes())
    assert line == (
        "<stdin>:1: XN113 this is the live XML of a running domain (id='6'); defining it "
        "would store its runtime state: an expanded CPU (check='full', fallback='forbid'), "
        "device aliases (usb, pci.0, serial0, …), a dynamic dac security label, a runtime "
        "<resource> partition; read the stored definition with 'virsh dumpxml --inactive --security-info "
        "xmlnest-e2e-capture-amd'"
    )
    # refused whatever else is asked of it, and as a kvm domain too
    assert "XN113" in _refused(_as_kvm((LIVE / "qemu-system-running.xml").read_bytes()))
    r = run_cli(["--check", "--json", str(LIVE / "qemu-system-running.xml")])
    assert r.code == 3 and b'"rule": "XN113"' in r.out


def test_the_test_drivers_running_domain_is_refused() -> None:
    line = _refused((LIVE / "test-driver-running.xml").read_bytes())
    assert line.startswith("<stdin>:1: XN113 this is the live XML of a running domain (id='1')")
    assert line.endswith("read the stored definition with 'virsh dumpxml --inactive --security-info test'")


@pytest.mark.parametrize("name", ["qemu-system-inactive.xml", "test-driver-inactive.xml"])
def test_the_same_domains_inactive_xml_converts(name: str) -> None:
    raw = _as_kvm((LIVE / name).read_bytes())
    r = run_cli(["--arch", "amd", "-"], raw)
    assert r.code == 0, r.err
    assert "XN113" not in r.err
    assert b"<feature policy='require' name='svm'/>" in r.out or (
        b"<cpu mode='host-passthrough'" in r.out
    )


def test_a_domain_running_now_on_the_real_daemon(realvirt: object) -> None:
    """Live and stored XML of a TCG guest running on qemu:///system right now."""
    from tests.realvirt import RealVirt, to_tcg

    assert isinstance(realvirt, RealVirt)
    cpu = "<cpu mode='custom' match='exact' check='partial'>\n  <model fallback='allow'>Opteron_G2</model>\n</cpu>"
    live, inactive = realvirt.running_domain_xml(to_tcg(realvirt.guest_xml("live113", cpu)))
    assert re.match(rb"<domain type='qemu' id='\d+'>", live)
    line = _refused(live)
    assert "XN113 this is the live XML of a running domain" in line
    assert "an expanded CPU" in line and "device aliases" in line
    stored = run_cli(["--arch", "amd", "-"], _as_kvm(inactive))
    assert stored.code == 0, stored.err
    assert b"<feature policy='require' name='svm'/>" in stored.out
    assert b" id='" not in stored.out.split(b">", 1)[0]
