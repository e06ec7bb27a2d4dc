"""Enabling runs over a host whose kernel xmlnest can read say XN223 once (``--strict``
refuses and defines nothing); a remote host gets the XN224 note; files, pipes, --disable
and --status stay silent. On libvirt's test driver with --host-root standing in for the
host (a captured tree), on both backends."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.test_connection import FLEET, node_file
from xmlnest.cli.config import RunConfig
from xmlnest.cli.run import _host_kernel_allows
from xmlnest.cli.sink import Sink
from xmlnest.hostcheck.enabling import kernel_root
from xmlnest.libvirt import connection

pytestmark = pytest.mark.usefixtures("backend_env")

HOSTS = Path(__file__).parent / "hosts"
VULNERABLE = str(HOSTS / "sec-debian12-unpatched-on")
PATCHED = str(HOSTS / "sec-debian12-patched-on")
CANNOT_TELL = str(HOSTS / "sec-rhel9-on")
WARNING = (
    ": warning: XN223 the host's kernel 6.1.170 (Debian 6.1.170-1) has CVE-2026-53359 and "
    "CVE-2026-46113, guest-to-host escapes reachable only through nesting; fixed in 6.1.177; "
    "upgrade the host kernel first, or keep nesting off (xmlnest --host-check)"
)


@pytest.fixture
def backend_env(monkeypatch: pytest.MonkeyPatch, backend: str) -> str:
    monkeypatch.setenv(connection.BACKEND_ENV, backend)
    return backend


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return node_file(tmp_path, FLEET)


def xn223(err_lines: list[str]) -> list[str]:
    return [ln for ln in err_lines if " XN223 " in ln]


def test_the_warning_is_said_once_per_run_with_the_issues_text(uri: str) -> None:
    args = ["-c", uri, "--domain", "amd-off", "--domain", "intel-run", "--check"]
    r = run_cli([*args, "--host-root", VULNERABLE])
    assert r.code == 1, r.err
    assert xn223(r.err_lines) == [uri + WARNING]
    assert r.err_lines[0] == uri + WARNING  # before any domain
    assert "amd-off: would change" in r.err_lines and "intel-run: would change" in r.err_lines


def test_strict_refuses_the_run_and_defines_nothing(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    defined: list[str] = []
    for cls in (connection.LibvirtPython, connection.Virsh):
        monkeypatch.setattr(cls, "define", lambda self, dom, xml: defined.append(dom.name))
    r = run_cli(["-c", uri, "--all-domains", "-i", "--strict", "--host-root", VULNERABLE])
    assert r.code == 3 and r.out == b""
    assert r.err_lines == [uri + WARNING.replace(": warning:", ":") + " (--strict)"]
    assert defined == []
    j = run_cli(
        ["-c", uri, "--all-domains", "--check", "--json", "--strict", "--host-root", VULNERABLE]
    )
    assert j.code == 3 and b'"rule": "XN223"' in j.out and b'"status": "rejected"' in j.out


@pytest.mark.parametrize(
    ("extra", "root"),
    [
        pytest.param([], PATCHED, id="patched-kernel"),
        pytest.param([], CANNOT_TELL, id="cannot-tell-is-no-warning"),
        pytest.param(["--disable"], VULNERABLE, id="disable"),
        pytest.param(["--ignore", "XN223"], VULNERABLE, id="ignored"),
        pytest.param(["-q"], VULNERABLE, id="quiet"),
    ],
)
def test_no_warning(uri: str, extra: list[str], root: str) -> None:
    r = run_cli(["-c", uri, "--domain", "amd-off", "--check", *extra, "--host-root", root])
    assert r.code in (0, 1), r.err
    assert xn223(r.err_lines) == []


def test_status_is_not_an_enabling_run(uri: str) -> None:
    r = run_cli(["-c", uri, "--status", "--domain", "amd-off", "--host-root", VULNERABLE])
    assert xn223(r.err_lines) == [] and b"XN223" not in r.out


def test_the_test_driver_without_host_root_names_no_host(uri: str) -> None:
    r = run_cli(["-c", uri, "--domain", "amd-off", "--check", "-v"])
    assert not [ln for ln in r.err_lines if " XN22" in ln and ("XN223" in ln or "XN224" in ln)]


def test_files_and_pipes_stay_silent() -> None:
    sample = str(REPO / "samples" / "intel-l1.xml")
    r = run_cli(["--check", "--host-root", VULNERABLE, sample])
    assert r.code == 1 and "XN223" not in r.err
    p = run_cli(["--host-root", VULNERABLE], stdin=(REPO / "samples" / "intel-l1.xml").read_bytes())
    assert p.code == 0 and "XN223" not in p.err


@pytest.mark.parametrize(
    ("uri", "given", "root"),
    [
        ("qemu:///system", None, "/"),
        ("qemu:///session", None, "/"),
        ("qemu+unix:///system?socket=/run/x", None, "/"),
        ("qemu+ssh://host.example/system", None, None),
        ("qemu+tcp://10.0.0.2/system", None, None),
        ("qemu://host.example/system", None, None),
        ("test:///default", None, None),
        ("qemu+ssh://host.example/system", "/captured", "/captured"),
        ("test:///default", "/captured", "/captured"),
    ],
)
def test_kernel_root(uri: str, given: str | None, root: str | None) -> None:
    assert kernel_root(uri, given) == root


@pytest.mark.parametrize("verbose", [False, True])
def test_a_remote_host_gets_one_info_note(verbose: bool) -> None:
    err = io.StringIO()
    sink = Sink(io.BytesIO(), err, verbose=verbose)
    assert _host_kernel_allows(RunConfig(verbose=verbose), "qemu+ssh://h.example/system", sink)
    expected = (
        "qemu+ssh://h.example/system: info: XN224 xmlnest cannot read the kernel of the host "
        "behind qemu+ssh://h.example/system, so it cannot say whether it has a guest-to-host "
        "escape reachable only through nesting (XN223); run xmlnest --host-check on that host\n"
    )
    assert err.getvalue() == (expected if verbose else "")
