"""The Ansible collection against the real qemu:///system daemon that .ci/run starts:
enable, read back with ``virsh dumpxml --inactive``, a second run that changes nothing,
disable. Only with the owner's consent (``XMLNEST_SYSTEM_DAEMON=1``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import AMD_NESTING_OFF, DefineOnSystem
from tests.test_ansible import nested_task, playbook, registered

SYSTEM = "qemu:///system"


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virsh", "-c", SYSTEM, *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def system_guest(system_domains: DefineOnSystem) -> str:
    return system_domains(AMD_NESTING_OFF, "ansible")


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
