"""The Ansible collection against the real qemu:///system daemon that .ci/run starts:
enable, read back with ``virsh dumpxml --inactive``, a second run that changes nothing,
disable. Only with the owner's consent (``XMLNEST_SYSTEM_DAEMON=1``)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import consent_to_system_daemon, need
from tests.test_ansible import nested_task, playbook, registered

SYSTEM = "qemu:///system"


def system_consent() -> None:
    """The one gate of this file's qemu:///system tests (they define a domain there and
    undefine it after): the owner's consent (``XMLNEST_SYSTEM_DAEMON=1``, set by .ci/run),
    then a libvirtd that answers."""
    consent_to_system_daemon("define domains named xn-ansible-* (and undefine them)")
    if not shutil.which("virsh"):
        need("virsh", "apt-get install libvirt-clients")
    r = subprocess.run(["virsh", "-c", SYSTEM, "version"], capture_output=True, check=False)
    if r.returncode != 0:
        need("a running libvirtd (qemu:///system)", "libvirtd -d and virtlogd -d as root")


SYSTEM_GUEST = """<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <cpu mode='custom' match='exact' check='partial'>
    <model fallback='allow'>Opteron_G2</model>
    <feature policy='disable' name='svm'/>
  </cpu>
</domain>
"""


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virsh", "-c", SYSTEM, *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def system_guest(tmp_path: Path) -> Iterator[str]:
    system_consent()
    name = f"xn-ansible-{secrets.token_hex(4)}"
    f = tmp_path / "guest.xml"
    f.write_text(SYSTEM_GUEST.format(name=name))
    assert virsh("define", "--validate", str(f)).returncode == 0
    try:
        yield name
    finally:
        virsh("undefine", name)


def test_enable_then_disable_on_qemu_system(tmp_path: Path, system_guest: str) -> None:
    stored = virsh("dumpxml", "--inactive", "--security-info", system_guest).stdout
    check = registered(playbook(tmp_path, nested_task(SYSTEM, name=[system_guest], arch="amd"),
                                  "--check", json_out=True))[0]  # fmt: skip
    assert check["changed"] and check["domains"][0]["status"] == "would change"
    assert virsh("dumpxml", "--inactive", "--security-info", system_guest).stdout == stored
    on = registered(playbook(tmp_path, nested_task(SYSTEM, name=[system_guest], arch="amd"),
                               "--diff", json_out=True))[0]  # fmt: skip
    assert on["changed"], on
    now = virsh("dumpxml", "--inactive", system_guest).stdout
    assert "<feature policy='require' name='svm'/>" in now and "policy='disable'" not in now
    virsh_said = virsh("dumpxml", "--inactive", "--security-info", system_guest).stdout
    assert on["diff"][0]["after"] + "\n" == virsh_said  # virsh prints one newline more
    again = registered(playbook(tmp_path, nested_task(SYSTEM, name=[system_guest], arch="amd"),
                                  json_out=True))[0]  # fmt: skip
    assert again["changed"] is False
    off = registered(playbook(tmp_path, nested_task(SYSTEM, name=[system_guest], arch="amd",
                                                      state="disabled"), json_out=True))[0]  # fmt: skip
    assert off["changed"]
    assert (
        "<feature policy='disable' name='svm'/>"
        in virsh("dumpxml", "--inactive", system_guest).stdout
    )
