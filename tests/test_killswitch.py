"""The fleet kill switch and its exact undo: --status --json > before.jsonl, --disable -i,
then --domains-from before.jsonl --where stored=nested -i. Names files as a table; the
CLI on libvirt's test driver; and on the real qemu:///system daemon, both backends, byte
for byte, with the XN223 warning once per run where --host-root stands for the host.

Tests that define domains on qemu:///system run only with XMLNEST_SYSTEM_DAEMON=1 (the
``daemon`` fixture; .ci/run sets it); the one that turns nesting off in *every* domain of
the daemon also needs XMLNEST_REAL_FLEET=1 (.ci/run's machine has no domains but the
tests'), and puts back any domain it did not make exactly as it found it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_connection import FLEET, SYSTEM, node_file
from xmlnest.cli.names import names_from
from xmlnest.errors import UsageError
from xmlnest.libvirt import connection

HOSTS = Path(__file__).parent / "hosts"
VULNERABLE = str(HOSTS / "sec-debian12-unpatched-on")
PATCHED = str(HOSTS / "sec-debian12-patched-on")
STATUS = (
    '{"kernel": {}, "record": "host"}\n'
    '{"arch": "x86_64", "name": "a", "restart_pending": false, "running": null, '
    '"state": "shut off", "stored": "nested"}\n'
    '{"arch": "x86_64", "name": "b", "restart_pending": true, "running": "nested", '
    '"state": "running", "stored": "would change"}\n'
    '{"arch": "x86_64", "name": "c", "restart_pending": false, "running": "nested", '
    '"state": "running", "stored": "nested"}\n'
    '{"domains": 3, "record": "summary"}\n'
)


# --- names files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "names"),
    [
        ("a\nb\n", (), ("a", "b")),
        ("# saved 2026-07-07\n\n a \nb\na\n", (), ("a", "b")),  # comments, blanks, repeats
        ("it's a café\n", (), ("it's a café",)),
        (STATUS, (), ("a", "b", "c")),
        (STATUS, ("stored=nested",), ("a", "c")),
        (STATUS, ("stored=nested", "state=running"), ("c",)),
        (STATUS, ("restart_pending=true",), ("b",)),
        (STATUS, ("running=null",), ("a",)),
        (STATUS, ("stored=refused XN102",), ()),
        ('{"path": "x", "status": "changed", "findings": []}\n', ("status=changed",), ("x",)),
        ("", (), ()),
    ],
)
def test_names_from(text: str, where: tuple[str, ...], names: tuple[str, ...]) -> None:
    assert names_from(text, where, "f") == names


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ('{"name": "a"}\n{oops\n', (), "f:2: not a JSON object"),
        ('{"name": "a"}\n[1]\n', (), "f:2: not a JSON object"),
        ('{"state": "running"}\n', (), "f:1: no 'name' (or 'path') key"),
        ("a\n", ("stored=nested",), "f: --where needs JSON Lines"),
        (STATUS, ("stored",), "--where stored: not KEY=VALUE"),
    ],
)
def test_bad_names_files_are_one_line(text: str, where: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        names_from(text, where, "f")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "stored=nested", "--all-domains", "--check"], "--where filters the records"),
        (["--domains-from", "F", "--all-domains", "--check"], "--domains-from and --all-domains"),
        (["--domains-from", "F", "--domain", "a", "--check"], "--domains-from and --domain"),
        (["--domains-from", "/nonexistent/x", "--check"], "--domains-from /nonexistent/x: No such"),
        (["--domains-from", "F"], "several domains need --check, --diff or --in-place"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    f = tmp_path / "names.txt"
    f.write_text("a\n")
    r = run_cli(["-c", "test:///default", *[str(f) if a == "F" else a for a in args]])
    assert r.code == 2 and r.out == b""
    assert r.err_lines == [r.err_lines[0]] and message in r.err_lines[0]


# --- on libvirt's test driver ---------------------------------------------------------------


@pytest.fixture
def backend_env(monkeypatch: pytest.MonkeyPatch, backend: str) -> str:
    monkeypatch.setenv(connection.BACKEND_ENV, backend)
    return backend


@pytest.mark.usefixtures("backend_env")
def test_the_kill_switch_names_each_domain_it_defined(tmp_path: Path) -> None:
    uri = node_file(tmp_path, FLEET)
    r = run_cli(["-c", uri, "--all-domains", "--disable", "-i"])
    assert r.code == 3  # arm and tcg cannot be judged; the others are done
    defined = sorted(ln.split(":")[0] for ln in r.err_lines if ": defined" in ln)
    assert defined == ["intel-run", "power9-run"]  # amd-off and ibmz-off had nothing to do
    assert r.err_lines[-1].startswith("xmlnest: 2 changed, 1 already off, 1 left to the host")


@pytest.mark.usefixtures("backend_env")
def test_the_undo_selects_exactly_the_nested_domains(tmp_path: Path) -> None:
    uri = node_file(tmp_path, FLEET)
    before = run_cli(["-c", uri, "--status", "--json"]).out
    saved = tmp_path / "before.jsonl"
    saved.write_bytes(before)
    r = run_cli(["-c", uri, "--domains-from", str(saved), "--where", "stored=nested", "--status"])
    rows = [ln.split()[0] for ln in r.out.decode().splitlines()[1:-1]]
    assert rows == ["ibmz-off", "power9-run"]
    piped = run_cli(["-c", uri, "--domains-from", "-", "--check"], stdin=b"amd-off\nintel-run\n")
    assert piped.code == 1 and "amd-off: would change" in piped.err_lines
    assert "intel-run: would change" in piped.err_lines
    nothing = run_cli(["-c", uri, "--domains-from", str(saved), "--where", "stored=gone", "-i"])
    assert nothing.code == 0 and nothing.err_lines == [
        f"xmlnest: {saved} names no domain (none kept by --where?); nothing to do"
    ]


def test_the_documented_jq_line_agrees_with_where(tmp_path: Path) -> None:
    """docs/host-security.md offers jq as the other way to pick the names."""
    import shutil

    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (the --where form needs nothing)")
    picked = subprocess.run(
        [jq, "-r", 'select(.stored == "nested") | .name'],
        input=STATUS.encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert names_from(picked) == names_from(STATUS, ("stored=nested",)) == ("a", "c")


# --- on the real daemon ---------------------------------------------------------------------

PREFIX = "xmlnest-test-hostsec-"
GUESTS = {
    # suffix: (<cpu> element, nested before?)
    "pass": ("<cpu mode='host-passthrough' check='none' migratable='on'/>", True),
    "req": (
        "<cpu mode='custom' match='exact' check='partial'>\n"
        "    <model fallback='allow'>{model}</model>\n"
        "    <feature policy='require' name='{feature}'/>\n  </cpu>",
        True,
    ),
    "off": (
        "<cpu mode='custom' match='exact' check='partial'>\n"
        "    <model fallback='allow'>{model}</model>\n"
        "    <feature policy='disable' name='{feature}'/>\n  </cpu>",
        False,
    ),
    # libvirt stores qemu64 for it, and --disable writes an explicit "disable" into that
    # model: the one line the undo (which re-enables only the nested) leaves in place
    "nocpu": ("", False),
}
DISABLE_LINE = "    <feature policy='disable' name='{feature}'/>\n"
GUEST = """<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  {cpu}
</domain>
"""


def _virsh(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["virsh", "-q", "-c", SYSTEM, *args], capture_output=True, check=False, input=stdin
    )


def _stored(name: str) -> bytes:
    r = _virsh("dumpxml", "--inactive", "--security-info", name)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def guests(daemon: None, tmp_path: Path) -> Iterator[dict[str, bool]]:
    """Four shut-off x86 KVM domains of this test's own, two nested and two not; {name:
    nested before}. Undefined after, whatever happened."""
    from tests.test_connection import _local_vendor

    vendor = _local_vendor()
    if vendor is None:
        pytest.skip("needs an Intel or AMD host behind qemu:///system")
    feature, model = ("svm", "Opteron_G2") if vendor == "amd" else ("vmx", "Haswell-noTSX")
    run = secrets.token_hex(3)
    made: dict[str, bool] = {}
    try:
        for suffix, (cpu, nested) in GUESTS.items():
            name = f"{PREFIX}{run}-{suffix}"
            f = tmp_path / f"{name}.xml"
            f.write_text(GUEST.format(name=name, cpu=cpu.format(model=model, feature=feature)))
            r = _virsh("define", "--validate", str(f))
            assert r.returncode == 0, r.stderr
            made[name] = nested
        yield made
    finally:
        for name in made:
            _virsh("undefine", name)


@pytest.mark.usefixtures("backend_env")
def test_off_and_on_again_on_the_real_daemon_byte_for_byte(
    guests: dict[str, bool], tmp_path: Path
) -> None:
    names = tmp_path / "mine.txt"
    names.write_text("".join(f"{n}\n" for n in guests))
    original = {n: _stored(n) for n in guests}
    status = run_cli(["-c", SYSTEM, "--status", "--json", "--domains-from", str(names)])
    before = tmp_path / "before.jsonl"
    before.write_bytes(status.out)
    rows = {r["name"]: r for r in map(json.loads, status.out.decode().splitlines()) if "name" in r}
    assert {n: rows[n]["stored"] == "nested" for n in guests} == guests
    off = run_cli(["-c", SYSTEM, "--domains-from", str(names), "--disable", "-i"])
    assert off.code == 0, off.err
    nested = sorted(n for n, was in guests.items() if was)
    nocpu = next(n for n in guests if n.endswith("-nocpu"))
    changed = sorted([*nested, nocpu])
    assert sorted(ln.split(": defined")[0] for ln in off.err_lines if ": defined" in ln) == changed
    for name in guests:
        assert (_stored(name) == original[name]) is (name not in changed), name
    check = run_cli(["-c", SYSTEM, "--status", "--domains-from", str(names)])
    assert check.out.decode().splitlines()[-1].startswith(f"0 of {len(guests)} domains expose")
    on = run_cli(["-c", SYSTEM, "--domains-from", str(before), "--where", "stored=nested", "-i"])
    assert on.code == 0, on.err
    assert sorted(ln.split(": defined")[0] for ln in on.err_lines if ": defined" in ln) == nested
    after = {n: _stored(n) for n in guests}
    assert {n: after[n] for n in guests if n != nocpu} == {
        n: original[n] for n in guests if n != nocpu
    }  # byte for byte
    added = [
        ln for ln in after[nocpu].decode().splitlines(True) if ln not in original[nocpu].decode()
    ]
    feature = "svm" if b"svm" in after[nocpu] else "vmx"
    assert added == [DISABLE_LINE.format(feature=feature)]


@pytest.mark.usefixtures("backend_env")
def test_the_warning_on_the_real_daemon(guests: dict[str, bool]) -> None:
    name = next(n for n, nested in guests.items() if n.endswith("-off"))
    seen = _stored(name)
    args = ["-c", SYSTEM, "--domain", name]
    warned = run_cli([*args, "--check", "--host-root", VULNERABLE])
    assert warned.code == 1, warned.err
    assert [ln for ln in warned.err_lines if " XN223 " in ln] == [
        f"{SYSTEM}: warning: XN223 the host's kernel 6.1.170 (Debian 6.1.170-1) has "
        "CVE-2026-53359 and CVE-2026-46113, guest-to-host escapes reachable only through "
        "nesting; fixed in 6.1.177; upgrade the host kernel first, or keep nesting off "
        "(xmlnest --host-check)"
    ]
    refused = run_cli([*args, "-i", "--strict", "--host-root", VULNERABLE])
    assert refused.code == 3 and " XN223 " in refused.err and "(--strict)" in refused.err
    assert _stored(name) == seen  # nothing defined
    quiet = run_cli([*args, "--check", "--host-root", PATCHED])
    assert quiet.code == 1 and "XN223" not in quiet.err


@pytest.mark.usefixtures("backend_env")
def test_every_domain_of_the_daemon_off_and_on_again(
    guests: dict[str, bool], tmp_path: Path
) -> None:
    """The issue's own commands over --all-domains. Any domain this test did not make is
    put back as it was (virsh define of its saved definition) if the round trip changed
    it, and the test says which."""
    if os.environ.get("XMLNEST_REAL_FLEET", "") in ("", "0"):
        pytest.skip("turns nesting off in every domain of qemu:///system: XMLNEST_REAL_FLEET=1")
    everyone = _virsh("list", "--all", "--persistent", "--name").stdout.decode().split()
    original = {n: _stored(n) for n in everyone}
    before = tmp_path / "before.jsonl"
    before.write_bytes(run_cli(["-c", SYSTEM, "--status", "--json"]).out)
    off = run_cli(["-c", SYSTEM, "--all-domains", "--disable", "-i"])
    defined = {ln.split(": defined")[0] for ln in off.err_lines if ": defined" in ln}
    assert {n for n, was in guests.items() if was} <= defined
    on = run_cli(["-c", SYSTEM, "--domains-from", str(before), "--where", "stored=nested", "-i"])
    assert on.code in (0, 3), on.err  # 3: someone else's domain xmlnest refuses
    after = {n: _stored(n) for n in everyone}
    foreign_changed = [n for n in everyone if n not in guests and after[n] != original[n]]
    for name in foreign_changed:
        f = tmp_path / f"{name}.restore.xml"
        f.write_bytes(original[name])
        _virsh("define", str(f))
    nested = [n for n, was in guests.items() if was]
    assert {n: after[n] for n in nested} == {n: original[n] for n in nested}
