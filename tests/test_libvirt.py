"""Real libvirt: libvirt's own validator on outputs, and the documented virsh pipeline.

These need ``virsh`` and ``virt-xml-validate`` (Debian's libvirt-clients); CI installs
them and the tests fail there, rather than skip, if they are missing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import (
    REPO,
    DefineOnSystem,
    libvirt_tool,
    run_cli,
)

SAMPLES = {
    "intel": ("intel-l1.xml", "<cpu mode='host-passthrough'"),
    "amd": ("amd-l1.xml", "<feature policy='require' name='svm'/>"),
    "power9": ("power9-l1.xml", "<nested-hv state='on'/>"),
    "ibmz": ("ibmz-l1.xml", "<type arch='s390x'"),
}


def _name(xml: bytes) -> str:
    m = re.search(rb"<name>([^<]+)</name>", xml)
    assert m
    return m.group(1).decode()


@pytest.mark.parametrize("arch", sorted(SAMPLES))
def test_sample_output_passes_virt_xml_validate(arch: str, tmp_path: Path) -> None:
    validate = libvirt_tool("virt-xml-validate")
    sample = REPO / "samples" / SAMPLES[arch][0]
    r = run_cli(["--arch", arch, str(sample)])
    assert r.code == 0, r.err
    out = tmp_path / "out.xml"
    out.write_bytes(r.out)
    proc = subprocess.run([validate, str(out), "domain"], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()


@pytest.mark.parametrize("arch", sorted(SAMPLES))
def test_virsh_dumpxml_pipe_xmlnest_pipe_virsh_define(arch: str, tmp_path: Path) -> None:
    """`virsh dumpxml --inactive vm | xmlnest --arch X | virsh define --validate /dev/stdin`,
    on libvirt's test driver (whose node-file domains are running)."""
    virsh = libvirt_tool("virsh")
    sample_file, expect = SAMPLES[arch]
    sample = (REPO / "samples" / sample_file).read_bytes()
    node = tmp_path / "node.xml"
    node.write_bytes(b"<node>\n" + sample + b"</node>\n")
    uri = f"test://{node}"
    name = _name(sample)
    pipeline = (
        f"{virsh} -c {uri} dumpxml --inactive {name}"
        f" | {sys.executable} -m xmlnest --arch {arch}"
        f" | {virsh} -c {uri} 'define --validate /dev/stdin; dumpxml --inactive {name}'"
    )
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, cwd=REPO, check=False
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert f"Domain '{name}' defined from /dev/stdin" in out
    assert expect in out
    if arch == "amd":
        assert "name='svm'" in out and "policy='disable' name='svm'" not in out


@pytest.mark.parametrize("arch", sorted(SAMPLES))
def test_the_live_xml_of_a_running_domain_is_refused(arch: str, tmp_path: Path) -> None:
    """`virsh dumpxml vm` without --inactive prints the running domain's live XML: xmlnest
    refuses it (XN113, exit 3, nothing on stdout), so the pipe defines nothing; the same
    domain's --inactive XML converts."""
    virsh = libvirt_tool("virsh")
    sample = (REPO / "samples" / SAMPLES[arch][0]).read_bytes()
    node = tmp_path / "node.xml"
    node.write_bytes(b"<node>\n" + sample + b"</node>\n")
    uri = f"test://{node}"
    name = _name(sample)
    live = subprocess.run(
        [virsh, "-c", uri, "dumpxml", name], capture_output=True, check=True
    ).stdout
    assert re.search(rb"<domain [^>]*id='\d+'", live), "the test driver's domain is not running"
    refused = run_cli(["--arch", arch, "-"], live)
    assert refused.code == 3
    assert refused.out == b""
    assert len(refused.err_lines) == 1
    line = refused.err_lines[0]
    assert line.startswith("<stdin>:1: XN113 this is the live XML of a running domain (id='")
    assert f"virsh dumpxml --inactive --security-info {name}'" in line
    stored = subprocess.run(
        [virsh, "-c", uri, "dumpxml", "--inactive", name], capture_output=True, check=True
    ).stdout
    assert b" id='" not in stored.split(b">", 1)[0]
    assert run_cli(["--arch", arch, "-"], stored).code == 0


def test_virsh_rejects_what_xmlnest_never_emits(tmp_path: Path) -> None:
    """Ground truth for the duplicate rule: libvirt refuses two vmx features."""
    virsh = libvirt_tool("virsh")
    dup = (REPO / "tests" / "libvirt-xml" / "duplicate-vmx.xml").read_bytes()
    f = tmp_path / "dup.xml"
    f.write_bytes(dup)
    proc = subprocess.run(
        [virsh, "-c", "test:///default", "define", str(f)], capture_output=True, check=False
    )
    assert proc.returncode != 0
    assert b"specified more than once" in proc.stderr
    fixed = run_cli(["--arch", "intel", "--no-validate", str(f)])
    assert fixed.code == 0
    f.write_bytes(fixed.out)
    proc = subprocess.run(
        [virsh, "-c", "test:///default", "define", str(f)], capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_libvirts_own_stored_file_gets_a_warning(system_domains: DefineOnSystem) -> None:
    """A file libvirtd wrote (/etc/libvirt/qemu/NAME.xml, AUTO-GENERATED header): xmlnest
    converts it but says libvirtd will not see the change until it is defined (XN216)."""
    name = system_domains(
        "<domain type='kvm'>\n  <name>{name}</name>\n  <memory unit='MiB'>256</memory>\n"
        "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n"
        "  <cpu mode='host-model'/>\n</domain>\n",
        "stored",
    )
    stored = Path(f"/etc/libvirt/qemu/{name}.xml").read_bytes()
    assert stored.lstrip().startswith(b"<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE.")
    r = run_cli(["--arch", "intel", "--check", "-"], stored)
    assert r.code == 1
    assert any(
        "warning: XN216 this is libvirt's own stored copy (AUTO-GENERATED, 'use virsh edit')" in ln
        for ln in r.err_lines
    ), r.err
    plain = run_cli(["--arch", "intel", "--check", "-"], stored.split(b"-->", 1)[1])
    assert plain.code == 1 and "XN216" not in plain.err
