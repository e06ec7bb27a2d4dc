"""xmlnest.libvirt.connection against real libvirt: its test driver (node files) and qemu:///system.

Every test that talks to libvirt runs once per backend (libvirt-python, virsh); under
XMLNEST_REQUIRE_REAL=1 neither may skip. Node files are built in tmp_path; the test
driver's state lasts one connection, which is what the virsh backend's single process is
for (a second connection sees the node file afresh).
"""

from __future__ import annotations

import ast
import os
import secrets
import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import TypedDict, TypeVar

import pytest

from tests.conftest import REPO, DefineOnSystem, need
from xmlnest.convert import Converter
from xmlnest.engine import core
from xmlnest.engine.document import parse
from xmlnest.errors import LibvirtError, UsageError
from xmlnest.files import Input
from xmlnest.libvirt import connection, status
from xmlnest.libvirt.connection import Connection, DomainInfo, DomainRead, Feature, redefine
from xmlnest.libvirt.connection import session as virsh_session
from xmlnest.libvirt.source import DomainSource
from xmlnest.model import Options

_X = TypeVar("_X")
_Y = TypeVar("_Y")
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
SYSTEM = "qemu:///system"
UNREACHABLE = "qemu+unix:///system?socket=/nonexistent"


class DomainArgs(TypedDict, total=False):
    """:func:`domain`'s keyword arguments, as the node-file tables spell them."""

    arch: str
    kind: str
    machine: str | None
    cpu: str
    features: str
    running: bool


def domain(
    name: str,
    uuid: str,
    *,
    arch: str = "x86_64",
    kind: str = "kvm",
    machine: str | None = None,
    cpu: str = "",
    features: str = "",
    running: bool = True,
) -> str:
    mach = f" machine='{machine}'" if machine else ""
    state = "" if running else "\n  <test:runstate>5</test:runstate>"
    return (
        f"<domain type='{kind}' xmlns:test='{TEST_NS}'>\n  <name>{name}</name>\n"
        f"  <uuid>{uuid}</uuid>\n  <memory unit='KiB'>1048576</memory>\n"
        f"  <os>\n    <type arch='{arch}'{mach}>hvm</type>\n  </os>\n"
        f"{features}{cpu}  <devices>\n  </devices>{state}\n</domain>\n"
    )


def uuid_of(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012x}"


Domains = Mapping[str, tuple[str, DomainArgs]]  # name: (uuid, domain XML keyword arguments)

FLEET: Domains = {
    "amd-off": (
        uuid_of(1),
        dict(
            cpu="  <cpu mode='custom' match='exact'>\n    <model>EPYC</model>\n"
            "    <feature policy='disable' name='svm'/>\n  </cpu>\n",
            running=False,
        ),
    ),
    "intel-run": (
        uuid_of(2),
        dict(
            cpu="  <cpu mode='custom' match='exact'>\n    <model>Haswell-noTSX</model>\n  </cpu>\n"
        ),
    ),
    "power9-run": (
        uuid_of(3),
        dict(
            arch="ppc64le",
            machine="pseries",
            features="  <features>\n    <nested-hv state='on'/>\n  </features>\n",
        ),
    ),
    "ibmz-off": (uuid_of(4), dict(arch="s390x", machine="s390-ccw-virtio", running=False)),
    "arm-run": (uuid_of(5), dict(arch="aarch64", machine="virt")),
    "tcg-off": (uuid_of(6), dict(kind="qemu", running=False)),
    "it's a café": (uuid_of(7), dict(cpu="  <cpu mode='host-model'/>\n", running=False)),
}
RUNNING = {"intel-run", "power9-run", "arm-run"}


def node_file(folder: Path, domains: Domains) -> str:
    body = "".join(domain(n, u, **kw) for n, (u, kw) in domains.items())
    path = folder / "node.xml"
    path.write_text(f"<node>\n{body}</node>\n", encoding="utf-8")
    return f"test://{path}"


@pytest.fixture
def fleet_uri(tmp_path: Path) -> str:
    return node_file(tmp_path, FLEET)


@pytest.fixture
def conn(backend: str, fleet_uri: str) -> Iterator[Connection]:
    with connection.connect(fleet_uri, backend=backend) as c:
        yield c


def create_transient(conn: Connection, xml: str, folder: Path) -> None:
    """createXML / ``virsh create`` on the connection itself (the protocol has no create:
    xmlnest never starts a domain)."""
    if isinstance(conn, connection.LibvirtPython):
        conn._conn.createXML(xml, 0)
    else:
        assert isinstance(conn, connection.Virsh)
        f = folder / "transient.xml"
        f.write_text(xml)
        conn._session.run(None, "create", "create", str(f))


# --- the test driver ------------------------------------------------------------------------


def test_persistent_names_are_sorted(conn: Connection, fleet_uri: str) -> None:
    assert conn.uri == fleet_uri
    assert conn.persistent_names() == sorted(FLEET)


@pytest.mark.parametrize("name", sorted(FLEET))
def test_lookup_by_name_and_by_uuid(conn: Connection, name: str) -> None:
    uuid = FLEET[name][0]
    running = name in RUNNING
    expected = DomainInfo(name, uuid, True, running, "running" if running else "shut off")
    assert conn.lookup(name) == expected
    assert conn.lookup(uuid) == expected
    assert conn.lookup(uuid.upper()) == expected


def test_stored_xml_is_the_inactive_definition_live_only_when_running(conn: Connection) -> None:
    for name in FLEET:
        info = conn.lookup(name)
        stored = conn.stored_xml(info)
        assert stored.startswith(b"<domain type=") and stored.endswith(b"</domain>\n")
        assert not connection.is_live(stored)
        live = conn.live_xml(info)
        if name in RUNNING:
            assert live is not None and connection.is_live(live)
        else:
            assert live is None


BIG_DESCRIPTION = (
    # text that looks like virsh's framing, 400 kB of it: answers span many reads
    "  <description>virsh # echo --err xmlnest-0-1\nxmlnest-0-1virsh # "
    + "é &amp; &lt;x&gt; " * 20000
    + "</description>\n"
)


def test_both_backends_read_the_same_bytes(tmp_path: Path) -> None:
    if not connection.libvirt_python_available():
        need("libvirt-python", "pip install 'xmlnest[libvirt]'")
    if not shutil.which("virsh"):
        need("virsh", "apt-get install libvirt-clients")
    big: Domains = {"big": (uuid_of(99), dict(features=BIG_DESCRIPTION))}
    uri = node_file(tmp_path, {**FLEET, **big})
    seen = {}
    for b in connection.BACKENDS:
        with connection.connect(uri, backend=b) as c:
            seen[b] = [(i, c.stored_xml(i), c.live_xml(i)) for i in map(c.lookup, [*FLEET, "big"])]
    assert seen["python"] == seen["virsh"]
    stored = seen["virsh"][-1][1]
    assert len(stored) > 300_000 and b"virsh # echo --err xmlnest-0-1" in stored


def _read(conn: Connection, name: str) -> DomainRead:
    """One domain through read_domains, its failure raised."""
    (got,) = conn.read_domains([name])
    if isinstance(got, LibvirtError):
        raise got
    return got


def _by_three_calls(conn: Connection, name: str) -> DomainRead | LibvirtError:
    """What read_domains must answer for ``name``: the three calls in turn."""
    try:
        info = conn.lookup(name)
        stored = conn.stored_xml(info)
        return DomainRead(info, stored, conn.live_xml(info) if info.active else None)
    except LibvirtError as exc:
        return exc


def test_read_domains_is_lookup_stored_and_live_at_once(conn: Connection, tmp_path: Path) -> None:
    """--status reads each domain with read_domain: the same answers as the three calls,
    by name or UUID, big answers included; the first failure is the one raised."""
    for name in [*FLEET]:
        info = conn.lookup(name)
        expected = (info, conn.stored_xml(info), conn.live_xml(info))
        assert _read(conn, name) == expected
        assert _read(conn, FLEET[name][0]) == expected
    with pytest.raises(LibvirtError, match="domain 'no-such-vm': no such domain"):
        _read(conn, "no-such-vm")
    create_transient(conn, domain("fleeting", uuid_of(77)), tmp_path)
    with pytest.raises(LibvirtError, match="domain 'fleeting': is transient"):
        _read(conn, "fleeting")
    assert _read(conn, "intel-run").info.active  # the stream is still in step


def test_read_domains_answers_each_name_in_order_failures_included(
    conn: Connection, tmp_path: Path
) -> None:
    """The --status loop: one answer per name, in order, a failure as its error, with
    other questions asked between the answers (virsh has the next domain in flight)."""
    create_transient(conn, domain("fleeting", uuid_of(77)), tmp_path)
    names = ["intel-run", "no-such-vm", "fleeting", *sorted(FLEET), "a\tb", FLEET["amd-off"][0]]
    got = []
    for read in conn.read_domains(names):
        got.append(read)
        assert conn.persistent_names() == sorted(FLEET)  # asked while the next is in flight
    assert len(got) == len(names)
    for name, read in zip(names, got, strict=True):
        expected = _by_three_calls(conn, name)
        if isinstance(expected, LibvirtError):
            assert isinstance(read, LibvirtError) and read.format() == expected.format()
        else:
            assert read == expected
    assert [type(r).__name__ for r in got[:3]] == ["DomainRead", "LibvirtError", "LibvirtError"]
    it = conn.read_domains(sorted(FLEET))
    first = next(it)
    it.close()  # closed early: what was in flight for the next one is dropped
    assert not isinstance(first, LibvirtError)
    assert _read(conn, "amd-off").info.name == "amd-off"  # and the stream is in step
    if isinstance(conn, connection.Virsh):  # nothing kept: no answer waits, none is held
        shell = conn._session.shell
        assert not shell._pending and not shell._ready and not shell._dropped


def _each(call: Callable[[_X], _Y], arg: _X) -> _Y | str:
    """``call(arg)``, or its failure's line."""
    try:
        return call(arg)
    except LibvirtError as exc:
        return exc.format()


def _answers(got: Iterator[_Y | LibvirtError]) -> list[_Y | str]:
    return [g.format() if isinstance(g, LibvirtError) else g for g in got]


def test_lookups_and_stored_xmls_answer_as_one_call_each(conn: Connection, tmp_path: Path) -> None:
    """By-name runs look every domain up, then read each stored definition, through these:
    the same answers as one call each, in order, failures included, with other
    questions asked between the answers (virsh has the next one in flight)."""
    create_transient(conn, domain("fleeting", uuid_of(77)), tmp_path)
    names = ["intel-run", "no-such-vm", "fleeting", *sorted(FLEET), "a\tb", FLEET["amd-off"][0]]
    looked: list[DomainInfo | str] = []
    for got in _answers(conn.lookups(names)):
        looked.append(got)
        assert conn.persistent_names() == sorted(FLEET)  # asked while the next is in flight
    assert looked == [_each(conn.lookup, n) for n in names]
    assert isinstance(looked[1], str) and "no such domain" in looked[1]
    doms = [d for d in looked if isinstance(d, DomainInfo)]
    assert [d.name for d in doms][:2] == ["intel-run", "fleeting"]
    stored: list[bytes | str] = []
    for xml in _answers(conn.stored_xmls(doms)):
        stored.append(xml)
        assert conn.lookup("amd-off").name == "amd-off"
    assert stored == [_each(conn.stored_xml, d) for d in doms]
    assert isinstance(stored[1], str) and "is transient" in stored[1]
    ahead: list[Iterator[object]] = [conn.lookups(sorted(FLEET)), conn.stored_xmls(doms[2:])]
    for it in ahead:
        assert not isinstance(next(it), LibvirtError)
        assert isinstance(it, Generator)
        it.close()  # closed early: what is in flight is dropped
        assert conn.lookup("amd-off").name == "amd-off"  # and the stream is in step
        if isinstance(conn, connection.Virsh):  # nothing kept: no answer waits, none is held
            shell = conn._session.shell
            assert not shell._pending and not shell._ready and not shell._dropped


def test_virsh_collecting_an_answer_never_asked_for_is_a_bug_not_a_hang(
    virsh_conn: connection.Virsh,
) -> None:
    with pytest.raises(KeyError):
        virsh_conn._session.shell.collect("xmlnest-never-sent")


def _sends(conn: connection.Virsh, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every write xmlnest makes to ``conn``'s virsh from now on, as sent."""
    sent: list[str] = []
    shell = conn._session.shell
    real_send = shell._send

    def send(text: str) -> None:
        sent.append(text)
        real_send(text)

    monkeypatch.setattr(shell, "_send", send)
    return sent


def test_virsh_reads_a_domain_in_one_round_trip(
    virsh_conn: connection.Virsh, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One write to virsh per domain, and answers that span many reads (a 400 kB stored
    definition before the live one) still come apart at the right place."""
    sent = _sends(virsh_conn, monkeypatch)
    got = _read(virsh_conn, "intel-run")
    assert len(sent) == 1 and sent[0].count("\necho --err ") == 3
    assert got.live is not None and connection.is_live(got.live)
    assert got.stored == virsh_conn.stored_xml(got.info)
    big: Domains = {"big": (uuid_of(99), dict(features=BIG_DESCRIPTION))}
    with connection.Virsh.open(node_file(tmp_path, {**FLEET, **big})) as c:
        read = _read(c, "big")
        assert len(read.stored) > 300_000 and read.live is not None
        assert read == (read.info, c.stored_xml(read.info), c.live_xml(read.info))
        with pytest.raises(LibvirtError, match="resolved it as a domain id"):
            _read(c, "1")  # ids first: refused before its XML is used
        assert _read(c, "big") == read


def test_unknown_name(conn: Connection, fleet_uri: str) -> None:
    with pytest.raises(LibvirtError) as exc:
        conn.lookup("no-such-vm")
    line = exc.value.format()
    assert line.startswith(f"{fleet_uri}: domain 'no-such-vm': no such domain")
    assert "\n" not in line and "Traceback" not in line
    assert exc.value.format("no-such-vm") == line  # as the CLI reports an input's error


def test_unknown_uuid(conn: Connection) -> None:
    with pytest.raises(LibvirtError, match="no such domain"):
        conn.lookup(uuid_of(999))


def test_unreachable_uri(backend: str) -> None:
    with pytest.raises(LibvirtError) as exc:
        connection.connect(UNREACHABLE, backend=backend)
    line = exc.value.format()
    assert line.startswith(f"{UNREACHABLE}: cannot connect: libvirt: ")
    assert "Failed to connect socket to '/nonexistent'" in line
    assert "\n" not in line


def test_default_uri_honours_libvirt_default_uri(
    backend: str, fleet_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", fleet_uri)
    monkeypatch.setenv("VIRSH_DEFAULT_CONNECT_URI", "test:///default")  # virsh's own: ignored
    with connection.connect(None, backend=backend) as c:
        assert c.uri == fleet_uri
        assert c.persistent_names() == sorted(FLEET)


def test_transient_domain_is_refused(conn: Connection, tmp_path: Path, fleet_uri: str) -> None:
    create_transient(conn, domain("fleeting", uuid_of(77)), tmp_path)
    info = conn.lookup("fleeting")
    assert info == DomainInfo("fleeting", uuid_of(77), False, True, "running")
    assert "fleeting" not in conn.persistent_names()
    with pytest.raises(LibvirtError) as exc:
        conn.stored_xml(info)
    assert exc.value.format().startswith(f"{fleet_uri}: domain 'fleeting': is transient")
    live = conn.live_xml(info)
    assert live is not None
    with pytest.raises(LibvirtError, match="is transient.*nothing defined"):
        conn.define(info, live.replace(b" id='", b" data-id='", 1))
    assert conn.lookup("fleeting").persistent is False


def _nested(raw: bytes, conn: Connection) -> bytes:
    out = Converter(Options(), lookup=DomainSource(conn)).process(raw).output
    assert out != raw
    return out


def test_define_then_read_back_in_the_same_connection(
    conn: Connection, backend: str, fleet_uri: str
) -> None:
    info = conn.lookup("it's a café")
    seen = conn.stored_xml(info)
    assert b"<cpu mode='host-model'/>" in seen
    new = core.process(seen, Options(arch="intel")).output
    done = redefine(conn, info, seen, new)
    assert b"<cpu mode='host-passthrough'/>" in done.stored
    assert done.stored == conn.stored_xml(info)
    assert done.domain == info  # still shut off, still persistent
    assert core.process(done.stored, Options(arch="intel")).plan.empty  # libvirt kept it
    with connection.connect(fleet_uri, backend=backend) as fresh:  # a new connection…
        assert fresh.stored_xml(fresh.lookup(info.uuid)) == seen  # …sees the node file again


def test_redefine_refuses_when_the_stored_definition_changed_meanwhile(conn: Connection) -> None:
    info = conn.lookup("amd-off")
    seen = conn.stored_xml(info)
    edited = seen.replace(
        b"<memory unit='KiB'>1048576</memory>", b"<memory unit='KiB'>2097152</memory>"
    )
    assert edited != seen
    conn.define(info, edited)  # "virsh edit" between our read and our define
    new = core.process(seen, Options()).output
    with pytest.raises(LibvirtError, match="changed since xmlnest read it; nothing defined"):
        redefine(conn, info, seen, new)
    assert conn.stored_xml(info) == edited


def test_define_validates(conn: Connection) -> None:
    info = conn.lookup("tcg-off")
    seen = conn.stored_xml(info)
    bogus = seen.replace(b"  <devices>", b"  <bogus/>\n  <devices>", 1)
    with pytest.raises(LibvirtError) as exc:
        conn.define(info, bogus)
    assert "libvirt refused the new definition; nothing defined" in exc.value.format()
    assert "extra content: bogus" in exc.value.format()
    assert conn.stored_xml(info) == seen


def test_define_refuses_a_definition_of_another_domain(conn: Connection) -> None:
    info = conn.lookup("amd-off")
    other = conn.stored_xml(conn.lookup("tcg-off"))
    with pytest.raises(LibvirtError, match="names another domain"):
        conn.define(info, other)
    gone = DomainInfo("ghost", uuid_of(404), True, False, "shut off")
    with pytest.raises(LibvirtError, match="no such domain"):
        conn.define(gone, domain("ghost", uuid_of(404)).encode())
    assert "ghost" not in conn.persistent_names()


def test_the_test_driver_cannot_say_what_its_host_offers(conn: Connection) -> None:
    assert conn.host_vendor() is None  # its capabilities name no vendor
    assert conn.host_model_features("x86_64") is None
    host = DomainSource(conn)
    assert host.uri == conn.uri and host.offered("x86_64") is None  # so no XN219


def test_status_over_the_fleet(conn: Connection) -> None:
    """The --status computation end to end on the test driver (the CLI's loop, by hand)."""
    rows = {}
    for name in conn.persistent_names():
        info = conn.lookup(name)
        stored = conn.stored_xml(info)
        try:
            out = core.process(stored, Options(arch=ARCH.get(name, "auto")))
            verdict = status.stored_verdict(changed=out.changed)
        except Exception as exc:  # noqa: BLE001 - a rule's refusal
            verdict = status.stored_verdict(changed=False, refused=getattr(exc, "rule", None))
        live = conn.live_xml(info)
        running = None
        if live is not None:
            root = parse(live).root
            cpu = status.cpu_to_expand(root)
            feats = conn.cpu_features(cpu, status.arch_of(root)) if cpu else None
            running = status.running_verdict(
                root, host_vendor=conn.host_vendor(), host_features=None, cpu_features=feats
            )
        rows[name] = status.row(
            name, status.arch_of(parse(stored).root), info.state, verdict, running
        )
    assert rows["power9-run"] == status.StatusRow(
        "power9-run", "ppc64le", "running", "nested", "nested", False
    )
    assert rows["intel-run"].stored == "would change"  # Haswell without vmx
    assert rows["intel-run"].running == "not nested" and not rows["intel-run"].restart_pending
    assert rows["arm-run"].stored == "refused XN101" and rows["arm-run"].running == "not nested"
    assert rows["tcg-off"].stored == "refused XN102" and rows["tcg-off"].running is None
    assert rows["amd-off"].state == "shut off" and rows["amd-off"].stored == "would change"
    assert status.exit_code(rows.values()) == 3


ARCH = {"amd-off": "amd", "intel-run": "intel", "tcg-off": "intel", "it's a café": "intel"}


def _loop(conn: Connection, names: list[str]) -> None:
    for name in names:
        info = conn.lookup(name)
        conn.stored_xml(info)
        conn.live_xml(info)


def test_500_domains_through_one_connection(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many: Domains = {
        f"vm{i:03d}": (
            uuid_of(1000 + i),
            dict(running=i % 2 == 0, cpu="  <cpu mode='host-model'/>\n"),
        )
        for i in range(500)
    }
    uri = node_file(tmp_path, many)
    spawned: list[object] = []
    real_popen = subprocess.Popen

    def counting(*args: object, **kwargs: object) -> object:
        spawned.append(args)
        return real_popen(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "Popen", counting)
    with connection.connect(uri, backend=backend) as c:
        t0 = time.perf_counter()
        names = c.persistent_names()
        _loop(c, names)
        elapsed = time.perf_counter() - t0
        assert names == sorted(many)
        # memory: walking 500 domains holds no more than walking 50
        peaks = []
        for count in (50, 500):
            tracemalloc.start()
            _loop(c, names[:count])
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    print(
        f"\n{backend}: 500 domains listed, looked up, stored+live XML read in {elapsed:.2f} s; "
        f"peak traced memory 50 vs 500: {peaks[0]} vs {peaks[1]} bytes"
    )
    assert len(spawned) == (1 if backend == "virsh" else 0)
    assert peaks[1] < peaks[0] + 64 * 1024
    assert elapsed < 60


# --- virsh backend only --------------------------------------------------------------------


@pytest.fixture
def virsh_conn(fleet_uri: str) -> Iterator[connection.Virsh]:
    if not shutil.which("virsh"):
        need("virsh", "apt-get install libvirt-clients")
    with connection.Virsh.open(fleet_uri) as c:
        yield c


def test_virsh_numeric_name_resolved_as_an_id_is_refused(virsh_conn: connection.Virsh) -> None:
    # running domains get ids 1, 2, 3 in node order: "1" is intel-run's id, not a name
    with pytest.raises(LibvirtError, match="resolved it as a domain id, to 'intel-run'"):
        virsh_conn.lookup("1")


def test_virsh_answers_are_the_same_whatever_readline_makes_of_the_terminal(
    fleet_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TERM=dumb (or unknown) readline echoes long command lines in its
    horizontal-scroll form; the answers must not change."""
    if not shutil.which("virsh"):
        need("virsh", "apt-get install libvirt-clients")

    def read_all() -> list[tuple[DomainInfo, bytes, bytes | None]]:
        with connection.Virsh.open(fleet_uri) as c:
            return [(i, c.stored_xml(i), c.live_xml(i)) for i in map(c.lookup, sorted(FLEET))]

    normal = read_all()
    plain_env = virsh_session._virsh_env
    for term in ("dumb", "no-such-terminal"):
        seen: list[str] = []  # proves the virsh process really ran under that terminal

        def env(folder: str, t: str = term, seen: list[str] = seen) -> dict[str, str]:
            out = {**plain_env(folder), "TERM": t}
            seen.append(out["TERM"])
            return out

        monkeypatch.setattr(virsh_session, "_virsh_env", env)
        assert read_all() == normal
        assert seen == [term]


def test_virsh_refuses_control_characters(virsh_conn: connection.Virsh) -> None:
    with pytest.raises(LibvirtError, match="control character"):
        virsh_conn.lookup("a\tb")


def test_virsh_keeps_its_history_out_of_the_users(virsh_conn: connection.Virsh) -> None:
    env = Path(f"/proc/{virsh_conn.pid}/environ").read_bytes().split(b"\0")
    cache = [e for e in env if e.startswith(b"XDG_CACHE_HOME=")]
    assert cache and b"xmlnest-virsh-" in cache[0]


def test_virsh_close_ends_the_process_and_removes_its_folder(fleet_uri: str) -> None:
    if not shutil.which("virsh"):
        need("virsh", "apt-get install libvirt-clients")
    c = connection.Virsh.open(fleet_uri)
    pid = c.pid
    folder = c._session.folder
    assert Path(folder).is_dir()
    c.close()
    assert not Path(folder).exists()
    assert (
        not Path(f"/proc/{pid}").exists() or b"zombie" in Path(f"/proc/{pid}/status").read_bytes()
    )


FAKE_VIRSH = """\
import sys
sys.stdout.write("virsh # "); sys.stdout.flush()
def answer(out, mark):
    sys.stderr.write("error: " + mark + "\\n"); sys.stderr.flush()
    sys.stdout.write(out + "virsh # echo --err " + mark + "\\nvirsh # echo " + mark + "\\n"
                     + mark + "virsh # ")
    sys.stdout.flush()
first = sys.stdin.readline(); second = sys.stdin.readline()  # the handshake
mark = second.split()[1]
sys.stdout.write("echo --err " + mark + "\\nvirsh # echo " + mark + "\\n" + mark + "virsh # ")
sys.stderr.write("error: " + mark + "\\n"); sys.stdout.flush(); sys.stderr.flush()
while True:
    command = sys.stdin.readline()
    if not command or command.startswith("quit"):
        break
    sys.stdin.readline(); mark = sys.stdin.readline().split()[1]
    MODE
"""


def fake_virsh(tmp_path: Path, mode: str) -> str:
    """A stand-in for virsh that frames its handshake right and then answers as ``mode``."""
    exe = tmp_path / "virsh"
    exe.write_text(f"#!{sys.executable}\n" + FAKE_VIRSH.replace("MODE", mode))
    exe.chmod(0o755)
    return str(exe)


def test_virsh_that_exits_at_once_is_a_connect_error(tmp_path: Path) -> None:
    exe = tmp_path / "virsh"
    exe.write_text(
        "#!/bin/sh\necho 'error: failed to connect to the hypervisor' >&2\n"
        "echo 'error: authentication failed: no agent' >&2\nexit 1\n"
    )
    exe.chmod(0o755)
    with pytest.raises(LibvirtError) as exc:
        connection.Virsh.open("qemu+ssh://nowhere/system", virsh=str(exe))
    assert exc.value.format().startswith(
        'qemu+ssh://nowhere/system: cannot connect: libvirt: "authentication failed: no agent"'
    )


def test_the_fake_virsh_is_understood_when_it_frames_its_answers(tmp_path: Path) -> None:
    """Control for the two tests below: the same stand-in, answering properly."""
    exe = fake_virsh(tmp_path, 'answer(command + "test:///fake\\n", mark)')
    with connection.Virsh.open("test:///fake", virsh=exe) as c:
        assert c.uri == "test:///fake"


def test_virsh_answer_in_an_unknown_shape_is_refused_not_guessed(tmp_path: Path) -> None:
    """An answer not framed as expected is an error, never a wrong XML."""
    exe = fake_virsh(tmp_path, 'answer("GARBAGE WITHOUT A NEWLINE ", mark)')
    with pytest.raises(
        LibvirtError, match="cannot ask virsh for its URI: virsh's answer was not understood"
    ):
        connection.Virsh.open("test:///fake", virsh=exe)


def test_virsh_that_dies_with_answers_in_flight_says_only_its_last_words(
    tmp_path: Path,
) -> None:
    """virsh answers the URI question, then half-answers the first lookup (its error on
    stderr, no stdout) and exits with a last word: each domain in flight is told virsh
    exited, with only what it said after its last answer, and never another domain's
    message or xmlnest's own markers."""
    mode = """if command.startswith("uri"):
        answer(command + "test:///fake\\n", mark)
    else:
        sys.stderr.write("error: failed to get domain 'ghost'\\nerror: " + mark + "\\n")
        sys.stderr.write("error: Disconnected from test:///fake\\n"); sys.stderr.flush()
        sys.exit(1)"""
    exe = fake_virsh(tmp_path, mode)
    with connection.Virsh.open("test:///fake", virsh=exe) as c:
        got = list(c.lookups(["one", "two", "three"]))
    lines = [g.format() for g in got if isinstance(g, LibvirtError)]
    assert len(lines) == 3, got
    assert lines[0] == (
        "test:///fake: domain 'one': cannot look it up: virsh exited: "
        'libvirt: "error: Disconnected from test:///fake"'
    )
    for line in lines[1:]:
        assert line.endswith("cannot look it up: virsh exited"), line
    assert not any("ghost" in ln or "xmlnest-" in ln for ln in lines), lines


def test_virsh_that_stops_answering_times_out(tmp_path: Path) -> None:
    exe = fake_virsh(tmp_path, "import time; time.sleep(30)")
    t0 = time.monotonic()
    with pytest.raises(LibvirtError, match="virsh did not answer within 0.5 s"):
        connection.Virsh.open("test:///fake", virsh=exe, timeout=0.5)
    assert time.monotonic() - t0 < 10


# --- choosing a backend --------------------------------------------------------------------


def test_choose_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(connection.BACKEND_ENV, raising=False)
    assert connection.choose_backend("virsh") == "virsh"
    monkeypatch.setenv(connection.BACKEND_ENV, "virsh")
    assert connection.choose_backend() == "virsh"
    assert connection.choose_backend("python") == "python"  # the argument wins
    monkeypatch.setenv(connection.BACKEND_ENV, "auto")
    monkeypatch.setattr(connection, "libvirt_python_available", lambda: False)
    assert connection.choose_backend() == "virsh"
    monkeypatch.setattr(connection, "libvirt_python_available", lambda: True)
    assert connection.choose_backend() == "python"
    monkeypatch.setenv(connection.BACKEND_ENV, "libvirtd")
    with pytest.raises(UsageError, match="expected python, virsh or auto"):
        connection.choose_backend()


def test_python_backend_without_libvirt_python_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)  # import libvirt -> ImportError
    with pytest.raises(LibvirtError) as exc:
        connection.LibvirtPython.open("test:///default")
    assert exc.value.format().startswith("test:///default: libvirt-python cannot be imported")
    assert "pip install 'xmlnest[libvirt]'" in exc.value.format()


# --- start-up: the file and pipe paths never import libvirt ---------------------------------

PROBE = """\\
import sys
import xmlnest.cli
rc = xmlnest.cli.main(sys.argv[1:])
sys.stdout.flush()
before = sorted(m for m in ("libvirt", "xmlnest.libvirt.connection") if m in sys.modules)
import xmlnest.libvirt.connection, xmlnest.libvirt.status
after_import = "libvirt" in sys.modules
if {connect!r}:
    xmlnest.libvirt.connection.connect("test:///default", backend="python").close()
print("PROBE=" + repr([rc, before, after_import, "libvirt" in sys.modules]), file=sys.stderr)
"""


def _probe(connect: bool) -> tuple[int, list[str], bool, bool]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sample = (REPO / "samples" / "intel-l1.xml").read_bytes()
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE.format(connect=connect),
            "--arch",
            "intel",
            "--no-validate",
            "-",
        ],
        input=sample,
        capture_output=True,
        env=env,
        timeout=120,
    )
    lines = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("PROBE=")]
    assert lines, r.stderr.decode()
    rc, before, after_import, after = ast.literal_eval(lines[-1][len("PROBE=") :])
    assert b"host-passthrough" in r.stdout
    return rc, before, after_import, after


def test_cli_and_a_pipe_run_never_import_libvirt() -> None:
    # neither libvirt nor the connection module; importing the latter loads no libvirt
    assert _probe(connect=False) == (0, [], False, False)


def test_the_probe_sees_libvirt_when_a_connection_loads_it() -> None:
    if not connection.libvirt_python_available():
        need("libvirt-python", "pip install 'xmlnest[libvirt]'")
    assert _probe(connect=True) == (0, [], False, True)


# --- the real daemon: qemu:///system --------------------------------------------------------


def _virsh(
    *args: str, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["virsh", "-q", "-c", SYSTEM, *args], capture_output=True, check=check, input=stdin
    )


KVM_GUEST = """<domain type='{kind}'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <cpu mode='host-model' check='partial'/>
  <devices>
  </devices>
</domain>
"""


@pytest.fixture
def system_domain(system_domains: DefineOnSystem) -> str:
    """A shut-off KVM domain defined on qemu:///system for one test, undefined after."""
    return system_domains(KVM_GUEST, kind="kvm")


@pytest.fixture
def system(backend: str, daemon: None) -> Iterator[Connection]:
    with connection.connect(SYSTEM, backend=backend) as c:
        yield c


def _local_vendor() -> str | None:
    text = Path("/proc/cpuinfo").read_text()
    if "GenuineIntel" in text:
        return "intel"
    if "AuthenticAMD" in text or "HygonGenuine" in text:
        return "amd"
    return None


def _local_kvm_nests(vendor: str | None) -> bool:
    module = {"intel": "kvm_intel", "amd": "kvm_amd"}.get(vendor or "")
    p = Path(f"/sys/module/{module}/parameters/nested")
    return module is not None and p.is_file() and p.read_text().strip() in ("1", "Y", "y")


def test_system_host_vendor_and_nesting_offer(system: Connection) -> None:
    assert system.uri == SYSTEM
    vendor = system.host_vendor()
    assert vendor == _local_vendor()
    features = system.host_model_features("x86_64")
    assert features is not None and len(features) > 10  # the model's features, expanded
    feature = {"intel": "vmx", "amd": "svm"}[vendor or "intel"]
    offers = status.host_offers(features, feature)
    assert offers is _local_kvm_nests(vendor)  # here: kvm_pvm offers no nesting
    offered = DomainSource(system).offered("x86_64")
    assert offered is not None and (feature in offered) is offers


# Arches and the emulator each needs; the case takes the first whose emulator is absent.
_FOREIGN = (
    ("ppc64le", "qemu-system-ppc64"),
    ("aarch64", "qemu-system-aarch64"),
    ("s390x", "qemu-system-s390x"),
    ("riscv64", "qemu-system-riscv64"),
)


def test_system_cannot_answer_for_an_arch_it_has_no_emulator_for(system: Connection) -> None:
    lacking = [arch for arch, emulator in _FOREIGN if not shutil.which(emulator)]
    if not lacking:
        pytest.skip("this host has an emulator for every arch the case could ask about")
    assert system.host_model_features(lacking[0]) is None  # no XN219 then: nothing to go by
    assert system.host_model_features("x86_64", virttype="xen") is None


def test_system_convert_a_shut_off_kvm_domain_by_name(
    system: Connection, system_domain: str
) -> None:
    info = system.lookup(system_domain)
    assert (info.persistent, info.active, info.state) == (True, False, "shut off")
    assert system.live_xml(info) is None
    seen = system.stored_xml(info)
    assert b"<cpu mode='host-model' check='partial'/>" in seen
    new = _nested(seen, system)
    done = redefine(system, info, seen, new)
    # libvirt writes it back its own way (migratable='on' added): compare meanings
    assert b"<cpu mode='host-passthrough' check='partial' migratable='on'/>" in done.stored
    assert done.stored != new
    outside = _virsh("dumpxml", "--inactive", "--security-info", system_domain).stdout
    assert outside == done.stored  # what any other client now reads
    assert Converter(Options(), lookup=DomainSource(system)).process(done.stored).plan.empty


def test_system_define_time_validation_refuses_an_unknown_element(
    system: Connection, system_domain: str, tmp_path: Path
) -> None:
    info = system.lookup(system_domain)
    seen = system.stored_xml(info)
    bogus = seen.replace(b"  <devices>", b"  <bogus/>\n  <devices>", 1)
    with pytest.raises(LibvirtError) as exc:
        system.define(info, bogus)
    line = exc.value.format()
    assert line.startswith(
        f"{SYSTEM}: domain '{system_domain}': libvirt refused the new definition"
    )
    assert "Element domain has extra content: bogus" in line
    assert _virsh("dumpxml", "--inactive", system_domain).stdout == seen
    # Ground truth for why: without validation libvirt drops the element silently.
    f = tmp_path / "bogus.xml"
    f.write_bytes(bogus)
    _virsh("define", str(f))
    assert b"bogus" not in _virsh("dumpxml", "--inactive", system_domain).stdout


def test_system_concurrent_edit_is_detected(
    system: Connection, system_domain: str, tmp_path: Path
) -> None:
    info = system.lookup(system_domain)
    seen = system.stored_xml(info)
    f = tmp_path / "edited.xml"
    f.write_bytes(
        seen.replace(b"<memory unit='KiB'>65536</memory>", b"<memory unit='KiB'>131072</memory>")
    )
    _virsh("define", str(f))  # another client, between our read and our define
    with pytest.raises(LibvirtError, match="changed since xmlnest read it; nothing defined"):
        redefine(system, info, seen, _nested(seen, system))
    assert b"host-model" in _virsh("dumpxml", "--inactive", system_domain).stdout


def test_system_running_transient_tcg_domain(system: Connection, tmp_path: Path) -> None:
    """A real running guest (TCG, no disk: it idles in the firmware) started outside."""
    name = f"xmlnest-test-{secrets.token_hex(4)}"
    f = tmp_path / "tcg.xml"
    f.write_text(KVM_GUEST.format(kind="qemu", name=name))
    _virsh("create", str(f))
    try:
        info = system.lookup(name)
        assert (info.persistent, info.active, info.state) == (False, True, "running")
        assert name not in system.persistent_names()
        live = system.live_xml(info)
        assert live is not None and connection.is_live(live)
        root = parse(live).root
        verdict = status.running_verdict(
            root,
            host_vendor=system.host_vendor(),
            host_features=system.host_model_features("x86_64"),
        )
        assert verdict == status.NOT_NESTED  # TCG
        # Its live CPU is host-model made custom (EPYC… on AMD, …): the model's own
        # features are not listed, the hypervisor expands them.
        cpu = status.cpu_to_expand(root)
        assert cpu is not None
        listed = connection.features_of(cpu)
        expanded = system.cpu_features(cpu, "x86_64", "qemu")
        assert expanded is not None and listed < expanded
        if system.host_vendor() == "amd":
            assert ("svm", "require") not in listed and ("svm", "require") in expanded
            as_kvm = parse(live.replace(b"<domain type='qemu'", b"<domain type='kvm'", 1)).root
            assert status.running_verdict(as_kvm, host_vendor="amd") == status.NOT_NESTED
            assert (
                status.running_verdict(as_kvm, host_vendor="amd", cpu_features=expanded)
                == status.NESTED
            )
        with pytest.raises(LibvirtError, match="is transient"):
            system.stored_xml(info)
    finally:
        _virsh("destroy", name, check=False)


def test_system_status_of_a_shut_off_domain(system: Connection, system_domain: str) -> None:
    info = system.lookup(system_domain)
    stored = system.stored_xml(info)
    out = Converter(Options(), lookup=DomainSource(system)).process(stored)
    r = status.row(
        info.name,
        status.arch_of(out.source.root),
        info.state,
        status.stored_verdict(changed=out.changed),
        None,
    )
    assert r == status.StatusRow(system_domain, "x86_64", "shut off", "would change", None, False)
    assert r.exit_code == 1


def test_feature_is_a_plain_pair() -> None:
    assert Feature("svm", "require") == ("svm", "require")


def test_a_folder_called_libvirt_is_not_libvirt_python(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """/etc/libvirt (python -m xmlnest run in /etc) or a test-data folder on sys.path is a
    namespace package: neither counts as the binding, so the virsh backend is chosen."""
    import importlib.machinery
    import importlib.util

    from xmlnest.libvirt.connection import python as lvpy

    namespace = importlib.machinery.ModuleSpec("libvirt", None, is_package=True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: namespace)
    assert lvpy.libvirt_python_available() is False
    monkeypatch.delenv(connection.BACKEND_ENV, raising=False)
    assert connection.choose_backend() == "virsh"
    (tmp_path / "libvirt").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "libvirt", raising=False)
    import types

    fake = types.ModuleType("libvirt")  # what importing the folder gives: no binding
    monkeypatch.setitem(sys.modules, "libvirt", fake)
    with pytest.raises(connection.LibvirtError, match="not libvirt-python"):
        connection.LibvirtPython.open("test:///default")


def test_virsh_by_name_has_the_next_lookup_and_read_in_flight(
    virsh_conn: connection.Virsh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A by-name run over many domains: when one domain's lookup or stored definition is
    handed out, the next one's command has been sent already (over qemu+ssh:// that is
    one round trip saved per domain and question)."""
    names = sorted(FLEET)
    expected = {n: virsh_conn.stored_xml(virsh_conn.lookup(n)) for n in names}
    sent = _sends(virsh_conn, monkeypatch)
    shell = virsh_conn._session.shell
    line = virsh_conn._session.line
    source = DomainSource(virsh_conn)
    items = []
    for k, item in enumerate(source.inputs(names)):
        assert isinstance(item, Input)
        if k + 1 < len(names):
            assert sent[-1].startswith(line(None, "dominfo", names[k + 1]) + "\n")
        items.append(item)
    for k, item in enumerate(items):
        assert source.read(item) == expected[item.name]
        if k + 1 < len(items):
            ahead = line(None, "dumpxml", "--inactive", "--security-info", FLEET[names[k + 1]][0])
            assert sent[-1].startswith(ahead + "\n")
    assert not shell._pending and not shell._ready


def test_by_name_reads_out_of_order_are_each_their_own(conn: Connection) -> None:
    """The read-ahead follows the inputs' order; a read out of it stops the read-ahead
    (what is in flight is dropped) and is answered on its own, as is every later one."""
    expected = {n: conn.stored_xml(conn.lookup(n)) for n in FLEET}
    source = DomainSource(conn)
    items = [i for i in source.inputs(sorted(FLEET)) if isinstance(i, Input)]
    order = [items[0], items[2], items[1], *items[3:]]
    assert [source.read(item) for item in order] == [expected[i.name] for i in order]
    if isinstance(conn, connection.Virsh):
        shell = conn._session.shell
        assert not shell._pending and not shell._ready and not shell._dropped
