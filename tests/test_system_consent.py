"""The suite leaves the machine's own ``qemu:///system`` alone unless asked (issue 20).

Tests that define domains or boot guests there run only with ``XMLNEST_SYSTEM_DAEMON=1``
(tests/conftest.py, set by .ci/run); ``XMLNEST_REQUIRE_REAL=1`` alone is no consent. The
end-to-end check runs the modules that use the daemon in a child pytest without the
variable, with ``virsh`` and libvirt-python's ``open*`` wrapped to log every connection
to a system daemon, and requires the log to stay empty.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, REQUIRE_REAL, SYSTEM_DAEMON, consent_to_system_daemon

# Every test module that names qemu:///system (the daemon and realvirt fixtures, ...).
MODULES = sorted(
    str(p.relative_to(REPO))
    for p in (REPO / "tests").glob("test_*.py")
    if "qemu:///system" in p.read_text() and p.name != Path(__file__).name
)

FAKE_VIRSH = """#!/bin/sh
# virsh, logging every connection to a system daemon: a qemu URI given with -c, or none
# given (libvirt's default URI then, qemu:///system for root, unless LIBVIRT_DEFAULT_URI
# names another). Deliberately unreachable sockets (socket=/nonexistent) reach nothing.
case " $* " in
  *socket=/nonexistent*) ;;
  *" -c qemu"*|*" --connect qemu"*|*" --connect=qemu"*) echo "virsh $*" >> "$XMLNEST_AUDIT_LOG" ;;
  *" -c "*|*" --connect "*|*" --connect="*) ;;
  *) case "$LIBVIRT_DEFAULT_URI" in
       test:*) ;;
       *) echo "virsh $* (LIBVIRT_DEFAULT_URI=$LIBVIRT_DEFAULT_URI)" >> "$XMLNEST_AUDIT_LOG" ;;
     esac ;;
esac
exec {real} "$@"
"""

SITECUSTOMIZE = """
import os

try:
    import libvirt
except ImportError:
    libvirt = None


def _audited(name, real):
    def opened(uri=None, *args, **kwargs):
        said = os.environ.get("LIBVIRT_DEFAULT_URI", "") if uri is None else str(uri)
        if not said.startswith("test:") and "socket=/nonexistent" not in said:
            with open(os.environ["XMLNEST_AUDIT_LOG"], "a") as log:
                log.write(f"libvirt.{name}({uri!r})\\n")
        return real(uri, *args, **kwargs)

    return opened


if libvirt is not None:
    for _name in ("open", "openAuth", "openReadOnly"):
        setattr(libvirt, _name, _audited(_name, getattr(libvirt, _name)))
"""


def test_without_consent_a_daemon_test_skips_even_when_real_components_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SYSTEM_DAEMON, raising=False)
    monkeypatch.setenv(REQUIRE_REAL, "1")
    with pytest.raises(pytest.skip.Exception) as skipped:
        consent_to_system_daemon("define domains named xmlnest-test-*")
    assert str(skipped.value) == (
        "would define domains named xmlnest-test-* on this machine's qemu:///system; "
        "XMLNEST_SYSTEM_DAEMON=1 allows it"
    )
    for value in ("0", ""):
        monkeypatch.setenv(SYSTEM_DAEMON, value)
        with pytest.raises(pytest.skip.Exception):
            consent_to_system_daemon("boot guests")
    monkeypatch.setenv(SYSTEM_DAEMON, "1")
    consent_to_system_daemon("boot guests")  # consent given: no skip


def test_the_suite_touches_no_system_daemon_without_the_variable(tmp_path: Path) -> None:
    assert "tests/test_guest.py" in MODULES and "tests/test_pipe_recipe.py" in MODULES
    real = shutil.which("virsh")
    if real is None:
        pytest.skip("virsh is not installed, so nothing could reach a daemon through it")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "virsh"
    fake.write_text(FAKE_VIRSH.format(real=real))
    fake.chmod(0o755)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "audit.log"
    env = {k: v for k, v in os.environ.items() if k != SYSTEM_DAEMON}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")])),
        XMLNEST_AUDIT_LOG=str(log),
    )
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *MODULES],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    touched = log.read_text() if log.exists() else ""
    assert touched == "", f"the suite reached a system daemon without consent:\n{touched}"
    skips = [ln for ln in r.stdout.splitlines() if "XMLNEST_SYSTEM_DAEMON=1 allows it" in ln]
    assert any("boot TCG guests" in ln for ln in skips), r.stdout[-4000:]
    assert any("define domains named xmlnest-test-*" in ln for ln in skips), r.stdout[-4000:]
