"""Guarantees a one-line break once left unnoticed (issue 20): each test here fails when
its guarantee is broken.

* ``--strict`` holds under ``-i``: a warning refuses the file, which stays untouched;
* live XML is refused under ``--disable`` too (XN113, nothing on stdout);
* a domain ``--status`` cannot read makes the exit code 3, whatever the other rows say;
* an edited element whose attributes span several lines keeps them there (the golden
  cases ``amd/host-model*-attrs-on-two-lines``; checked here line by line as well).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.test_connection import FLEET, node_file
from xmlnest.libvirt import connection

SAMPLES = REPO / "samples"


def test_strict_refuses_in_place_and_leaves_the_file_untouched(tmp_path: Path) -> None:
    """samples/intel-l1.xml gets warnings (XN203: host-model switched to passthrough);
    with --strict, -i must refuse it like --check does, and write nothing."""
    vm = tmp_path / "vm.xml"
    vm.write_bytes((SAMPLES / "intel-l1.xml").read_bytes())
    before = vm.stat()
    warned = run_cli(["--arch", "intel", "--no-validate", "--check", str(vm)])
    assert warned.code == 1 and any(" XN203 " in ln for ln in warned.err_lines)
    r = run_cli(["--arch", "intel", "--no-validate", "--strict", "-i", str(vm)])
    assert r.code == 3 and r.out == b""
    assert r.err_lines and all(ln.endswith("(--strict)") for ln in r.err_lines), r.err
    assert any(" XN203 " in ln for ln in r.err_lines)
    after = vm.stat()
    assert vm.read_bytes() == (SAMPLES / "intel-l1.xml").read_bytes()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


LIVE = REPO / "tests" / "libvirt-xml" / "live" / "qemu-system-running.xml"


@pytest.mark.parametrize("mode", [[], ["--check"], ["-i"]], ids=["stdout", "check", "in-place"])
def test_disable_refuses_live_xml(mode: list[str], tmp_path: Path) -> None:
    """The live XML of a running domain is refused under --disable as when enabling:
    exit 3, one XN113 line, nothing on stdout, the file untouched."""
    live = tmp_path / "live.xml"
    live.write_bytes(LIVE.read_bytes())
    r = run_cli(["--disable", "--no-validate", *mode, str(live)])
    assert r.code == 3 and r.out == b""
    assert len(r.err_lines) == 1 and " XN113 " in r.err_lines[0], r.err
    assert live.read_bytes() == LIVE.read_bytes()
    enabling = run_cli(["--no-validate", *mode, str(live)])  # the same refusal, for contrast
    assert enabling.code == 3 and " XN113 " in enabling.err


def test_a_status_read_failure_exits_3(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One domain --status cannot read (no such name) is one line on stderr and exit 3,
    though the row it does print alone would give 1 (would change). Both backends (the
    conftest ``backend`` fixture)."""
    monkeypatch.setenv(connection.BACKEND_ENV, backend)
    uri = node_file(tmp_path, FLEET)
    alone = run_cli(["-c", uri, "--status", "--domain", "amd-off"])
    assert alone.code == 1, alone.err
    r = run_cli(["-c", uri, "--status", "--domain", "amd-off", "--domain", "no-such-domain"])
    assert r.code == 3, r.err
    *rows, counts = r.out.decode().splitlines()  # the exposure counts come last
    assert [ln.split()[0] for ln in rows] == ["NAME", "amd-off"]
    assert counts.startswith("0 of 1 domains expose vmx/svm")
    assert len(r.err_lines) == 1 and "no-such-domain" in r.err_lines[0], r.err
    as_json = run_cli(
        ["-c", uri, "--status", "--json", "--domain", "no-such-domain", "--domain", "amd-off"]
    )
    assert as_json.code == 3 and len(as_json.err_lines) == 1


GOLDEN = REPO / "tests" / "golden" / "amd"


@pytest.mark.parametrize(
    "case", ["host-model-attrs-on-two-lines", "host-model-flag-attrs-on-two-lines"]
)
def test_attributes_on_several_lines_stay_there(case: str) -> None:
    """The golden expectation itself: the <cpu> start tag the edit changes keeps its
    second line (``       check='partial'``) byte for byte, not joined onto the first."""
    src = (GOLDEN / case / "input.xml").read_bytes()
    args = (GOLDEN / case / "args").read_text().split()
    r = run_cli([*args, "--no-validate", "-"], src)
    assert r.code == 0, r.err
    out = r.out.splitlines()
    i = next(k for k, ln in enumerate(out) if ln.lstrip().startswith(b"<cpu "))
    assert out[i] == b"  <cpu mode='host-passthrough'" or out[i] == b"  <cpu mode='host-model'"
    assert out[i + 1].startswith(b"       check='partial'")
    assert r.out == (GOLDEN / case / "expected.xml").read_bytes()
