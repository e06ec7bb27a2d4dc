"""The README's virsh pipe, word for word, on the real daemon (qemu:///system).

The recipe must keep the domain's secrets (``virsh dumpxml --inactive`` leaves a VNC
``passwd`` out unless ``--security-info`` is given, and the define afterwards would erase
it), and must run ``virsh define`` only when xmlnest succeeded, so that a refusal shows
xmlnest's status and message. Only with ``XMLNEST_SYSTEM_DAEMON=1`` (conftest's
``system_domains``): it defines domains named ``xmlnest-test-pipe-*`` there and undefines
them after.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, DefineOnSystem

SYSTEM = "qemu:///system"

GUEST = """<domain type='{kind}'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <cpu mode='custom' match='exact' check='partial'>
    <model fallback='allow'>Opteron_G2</model>
    <feature policy='disable' name='svm'/>
  </cpu>
  <devices>
    <graphics type='vnc' port='-1' autoport='yes' passwd='{password}'/>
  </devices>
</domain>
"""


def readme_pipe() -> str:
    """The shell code block of README.md that holds the virsh pipe."""
    blocks: list[str] = re.findall(
        r"```sh\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL
    )
    pipes = [b for b in blocks if "virsh define" in b and "xmlnest" in b and "dumpxml" in b]
    assert len(pipes) == 1, pipes
    return pipes[0]


def _virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virsh", "-q", "-c", SYSTEM, *args], capture_output=True, text=True, check=False
    )


def _run_recipe(name: str) -> subprocess.CompletedProcess[str]:
    """The README's pipe for domain ``name`` under bash, virsh talking to qemu:///system
    (libvirt's default URI) and ``xmlnest`` this checkout's."""
    script = re.sub(r"\bvm\b", name, readme_pipe())
    env = {
        **os.environ,
        "LIBVIRT_DEFAULT_URI": SYSTEM,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def guest(system_domains: DefineOnSystem) -> Callable[[str], tuple[str, str]]:
    """Defines a domain of a given type on qemu:///system: (name, VNC password); every
    domain it defined is undefined after the test."""

    def define(kind: str) -> tuple[str, str]:
        password = secrets.token_hex(4)  # VNC allows 8 characters
        return system_domains(GUEST, "pipe", kind=kind, password=password), password

    return define


def test_the_readme_pipe_keeps_the_vnc_password(guest: Callable[[str], tuple[str, str]]) -> None:
    name, password = guest("kvm")
    assert "--security-info" in readme_pipe()
    r = _run_recipe(name)
    assert r.returncode == 0, r.stderr
    stored = _virsh("dumpxml", "--inactive", "--security-info", name).stdout
    assert "<feature policy='require' name='svm'/>" in stored  # the pipe did define
    assert f"passwd='{password}'" in stored, stored
    # what the recipe guards against: without --security-info the dump lacks the password
    assert "passwd=" not in _virsh("dumpxml", "--inactive", name).stdout


def test_the_readme_pipe_defines_nothing_when_xmlnest_refuses(
    guest: Callable[[str], tuple[str, str]],
) -> None:
    """A TCG domain (type='qemu') cannot nest: xmlnest refuses it (XN102), the define never
    runs, and the status and message are xmlnest's, not virsh's "Document is empty"."""
    name, _ = guest("qemu")
    before = _virsh("dumpxml", "--inactive", "--security-info", name).stdout
    r = _run_recipe(name)
    assert r.returncode == 3, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and " XN102 " in lines[0], r.stderr
    assert "error:" not in r.stderr  # virsh said nothing: it never ran define
    assert _virsh("dumpxml", "--inactive", "--security-info", name).stdout == before
