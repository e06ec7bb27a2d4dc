"""Never lose a file, part 1: hostile, malformed, oversized and odd inputs, and odd paths.

Every refusal is one ``PATH[:LINE]: problem; hint`` line, exit 3, nothing written, and
the rest of the batch is still processed. Each test here fails if its protection goes.
"""

from __future__ import annotations

import codecs
import errno
import gc
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli
from xmlnest import files as sources
from xmlnest.engine import core
from xmlnest.errors import InputError
from xmlnest.files import atomic
from xmlnest.files import inputs as files
from xmlnest.model import Options

# A domain that needs the nesting edit, and the exact bytes it must become.
PLAIN = b"""<domain type='kvm'>
  <name>l1</name>
  <description>Caf\xc3\xa9 M\xc3\xbcller</description>
  <memory unit='KiB'>1048576</memory>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <clock offset='utc'/>
</domain>
"""
CPU_LINE = b"  <cpu mode='host-passthrough'/>\n"
NESTED = PLAIN.replace(b"  <clock", CPU_LINE + b"  <clock")
ARGS = ["--arch", "intel", "--no-validate"]
ERROR_LINE = re.compile(r"^(?P<path>.+?)(?::(?P<line>\d+))?: (?P<problem>[^;]+); (?P<hint>.+)$")


def _one_error(err_lines: list[str], path: str) -> re.Match[str]:
    """Exactly one stderr line about ``path``, in the ``PATH[:LINE]: problem; hint`` form."""
    mine = [ln for ln in err_lines if ln.startswith(f"{path}:")]
    assert len(mine) == 1, err_lines
    m = ERROR_LINE.match(mine[0])
    assert m and m.group("path") == path, mine[0]
    assert "Traceback" not in "\n".join(err_lines)
    return m


# --------------------------------------------------------------------------- hostile input

LAUGHS = (
    b"<?xml version='1.0'?>\n<!DOCTYPE domain [\n <!ENTITY lol 'lol'>\n"
    + b"".join(
        b" <!ENTITY lol%d '%s'>\n" % (i, (b"&lol%s;" % (b"" if i == 1 else b"%d" % (i - 1))) * 10)
        for i in range(1, 10)
    )
    + b"]>\n<domain type='kvm'><name>&lol9;</name></domain>\n"
)
QUADRATIC = (
    b"<!DOCTYPE domain [<!ENTITY a '"
    + b"x" * 200_000
    + b"'>]>\n<domain type='kvm'><name>"
    + b"&a;" * 500_000
    + b"</name></domain>\n"
)


def _entity_cases(port: int, secret: Path) -> dict[str, bytes]:
    return {
        "doctype": b"<!DOCTYPE domain>\n" + PLAIN,
        "ext-file": b"<?xml version='1.0'?>\n<!DOCTYPE domain [<!ENTITY s SYSTEM 'file://%s'>]>\n"
        % str(secret).encode()
        + PLAIN.replace(b"<name>l1", b"<name>&s;"),
        "ext-http": b"<!DOCTYPE domain [<!ENTITY s SYSTEM 'http://127.0.0.1:%d/s'>]>\n" % port
        + PLAIN.replace(b"<name>l1", b"<name>&s;"),
        "param-entity": b"<!DOCTYPE domain [<!ENTITY %% p SYSTEM 'http://127.0.0.1:%d/p.dtd'> %%p;"
        b"]>\n" % port + PLAIN,
        "ext-dtd": b"<!DOCTYPE domain SYSTEM 'http://127.0.0.1:%d/domain.dtd'>\n" % port + PLAIN,
        "doctype-after-comment": b"<!-- hi -->\n<!DOCTYPE domain [<!ENTITY s SYSTEM 'file://%s'>]>"
        % str(secret).encode()
        + PLAIN.replace(b"<name>l1", b"<name>&s;"),
        "billion-laughs": LAUGHS,
        "quadratic-blowup": QUADRATIC,
    }


@pytest.fixture
def listener() -> Iterator[tuple[int, list[object]]]:
    """A loopback TCP port that records every connection attempt."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.05)
    hits: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, addr = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            hits.append(addr)
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1], hits
    stop.set()
    t.join(2)
    srv.close()


def test_entities_and_doctypes_are_refused_fast_without_io(
    tmp_path: Path, listener: tuple[int, list[object]]
) -> None:
    port, hits = listener
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOPSECRET")
    cases = _entity_cases(port, secret)
    assert len(QUADRATIC) > 1_500_000  # generous: 100 GB if it were expanded
    for name, raw in cases.items():
        started = time.perf_counter()
        r = run_cli([*ARGS, "-"], raw)
        elapsed = time.perf_counter() - started
        assert r.code == 3, (name, r.err)
        assert r.out == b"", name
        m = _one_error(r.err_lines, "<stdin>")
        assert "DOCTYPE" in m.group("problem"), (name, r.err)
        assert m.group("line"), (name, r.err)
        assert b"TOPSECRET" not in r.out and "TOPSECRET" not in r.err
        assert elapsed < 1.0, (name, elapsed)  # a safety bound, not a benchmark
    time.sleep(0.1)
    assert hits == [], "xmlnest connected to the network"


def test_undeclared_entity_is_malformed_not_fetched() -> None:
    r = run_cli([*ARGS, "-"], PLAIN.replace(b"<name>l1", b"<name>&ext;"))
    assert r.code == 3
    assert "not well-formed" in _one_error(r.err_lines, "<stdin>").group("problem")


MALFORMED: dict[str, bytes] = {
    "truncated": PLAIN[: len(PLAIN) // 2],
    "mismatched-tags": PLAIN.replace(b"</name>", b"</nam>"),
    "unquoted-attribute": PLAIN.replace(b"type='kvm'", b"type=kvm"),
    "attribute-without-value": PLAIN.replace(b"type='kvm'", b"type"),
    "duplicate-attribute": PLAIN.replace(b"type='kvm'", b"type='kvm' type='qemu'"),
    "unterminated-comment": PLAIN.replace(b"<clock", b"<!-- <clock"),
    "empty": b"",
    "whitespace-only": b" \n\t\r\n  \n",
    "binary-garbage": bytes(range(256)) * 8,
    "random-bytes": bytes((i * 7919 + 13) % 256 for i in range(4096)),
    "nul-byte": PLAIN.replace(b"<name>l1", b"<name>l\x001"),
    "invalid-utf8": PLAIN.replace(b"Caf\xc3\xa9", b"Caf\xe9\xff"),
    "overlong-utf8": PLAIN.replace(b"Caf\xc3\xa9", b"Caf\xc0\xaf"),
    "declared-utf8-latin1-bytes": b"<?xml version='1.0' encoding='UTF-8'?>\n"
    + PLAIN.replace(b"Caf\xc3\xa9", b"Caf\xe9"),
    "declared-ascii-utf8-bytes": b"<?xml version='1.0' encoding='US-ASCII'?>\n" + PLAIN,
    "declared-utf16-no-bom": b"<?xml version='1.0' encoding='UTF-16'?>\n" + PLAIN,
    "declared-unknown": b"<?xml version='1.0' encoding='klingon-8'?>\n" + PLAIN,
    "utf8-bom-declared-latin1": codecs.BOM_UTF8
    + b"<?xml version='1.0' encoding='ISO-8859-1'?>\n"
    + PLAIN,
    "utf16-bom-declared-utf8": (
        "\ufeff<?xml version='1.0' encoding='UTF-8'?>\n" + PLAIN.decode()
    ).encode("utf-16-le"),
    "utf16-without-bom": PLAIN.decode().encode("utf-16-le"),
    "declaration-not-first": b"\n" + b"<?xml version='1.0'?>\n" + PLAIN,
    "text-only": b"just some text\n",
    "two-roots-concatenated": PLAIN + PLAIN,
    "two-documents-with-declarations": b"<?xml version='1.0'?>\n"
    + PLAIN
    + b"<?xml version='1.0'?>\n"
    + PLAIN,
    "trailing-garbage": PLAIN + b"garbage\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_is_one_clear_line_and_exit_3(name: str) -> None:
    r = run_cli([*ARGS, "-"], MALFORMED[name])
    assert r.code == 3, r.err
    assert r.out == b""
    _one_error(r.err_lines, "<stdin>")


def test_hostile_batch_reports_each_file_and_goes_on(
    tmp_path: Path, listener: tuple[int, list[object]]
) -> None:
    port, hits = listener
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOPSECRET")
    bad = {**_entity_cases(port, secret), **MALFORMED}
    paths: list[Path] = []
    good: list[Path] = []
    for i, (name, raw) in enumerate(sorted(bad.items())):
        if i % 9 == 0:  # good files interleaved with the bad ones
            g = tmp_path / f"good-{i:02}.xml"
            g.write_bytes(PLAIN)
            paths.append(g)
            good.append(g)
        p = tmp_path / f"bad-{name}.xml"
        p.write_bytes(raw)
        paths.append(p)
    before = {p: p.read_bytes() for p in paths}

    r = run_cli([*ARGS, "--check", *map(str, paths)])
    assert r.code == 3
    for p in paths:
        if p in good:
            assert f"{p}: would change" in r.err_lines
        else:
            _one_error(r.err_lines, str(p))
    assert {p: p.read_bytes() for p in paths} == before  # --check writes nothing

    r = run_cli([*ARGS, "-i", *map(str, paths)])
    assert r.code == 3
    for p in paths:
        if p in good:
            assert p.read_bytes() == NESTED
        else:
            _one_error(r.err_lines, str(p))
            assert p.read_bytes() == before[p]
    assert sources.stale_temp_files(tmp_path) == []
    assert hits == []


# ------------------------------------------------------------------------------ encodings


def _encoded(codec: str, bom: bytes, declaration: str | None) -> tuple[bytes, bytes]:
    """(input, expected output) of the PLAIN domain in ``codec``."""
    text = PLAIN.decode()
    expected = NESTED.decode()
    if declaration is not None:
        text = declaration + "\n" + text
        expected = declaration + "\n" + expected
    return bom + text.encode(codec), bom + expected.encode(codec)


ENCODINGS = {
    "utf-8": ("utf-8", b"", None),
    "utf-8-declared": ("utf-8", b"", "<?xml version='1.0' encoding='UTF-8'?>"),
    "utf-8-bom": ("utf-8", codecs.BOM_UTF8, None),
    "utf-8-bom-declared": ("utf-8", codecs.BOM_UTF8, '<?xml version="1.0" encoding="utf-8"?>'),
    "utf-16-le-bom": ("utf-16-le", codecs.BOM_UTF16_LE, None),
    "utf-16-be-bom-declared": (
        "utf-16-be",
        codecs.BOM_UTF16_BE,
        "<?xml version='1.0' encoding='UTF-16'?>",
    ),
    "latin-1": ("latin-1", b"", "<?xml version='1.0' encoding='ISO-8859-1'?>"),
}


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_supported_encodings_round_trip_byte_for_byte(name: str, tmp_path: Path) -> None:
    codec, bom, declaration = ENCODINGS[name]
    raw, expected = _encoded(codec, bom, declaration)
    r = run_cli([*ARGS, "-"], raw)
    assert r.code == 0, r.err
    assert r.out == expected
    assert r.out.startswith(bom + (declaration or "").encode(codec))
    text = r.out[len(bom) :].decode(codec)  # decodes strictly
    assert "Café Müller" in text
    lines_in = raw[len(bom) :].decode(codec).splitlines(keepends=True)
    lines_out = text.splitlines(keepends=True)
    lines_out.remove(CPU_LINE.decode())
    assert lines_out == lines_in  # every other line identical
    # and in place, through a file
    f = tmp_path / "enc.xml"
    f.write_bytes(raw)
    assert run_cli([*ARGS, "-i", str(f)]).code == 0
    assert f.read_bytes() == expected
    assert run_cli([*ARGS, "--check", str(f)]).code == 0  # idempotent


# ------------------------------------------------------------------------------ size limits


def test_default_size_limit_is_16_mib(tmp_path: Path) -> None:
    limit = 16 * 1024 * 1024
    chunk = b"<!--" + b"x" * (1 << 20) + b"-->\n"  # libxml2 caps one node at 10 MB
    raw = PLAIN + chunk * 15
    raw += b"<!--" + b"x" * (limit + 1 - len(raw) - 8) + b"-->\n"
    assert len(raw) == limit + 1
    f = tmp_path / "big.xml"
    f.write_bytes(raw)
    ok = tmp_path / "ok.xml"
    ok.write_bytes(PLAIN)
    r = run_cli([*ARGS, "--check", str(f), str(ok)])
    assert r.code == 3
    m = _one_error(r.err_lines, str(f))
    assert str(limit) in m.group("problem") and "--max-bytes" in m.group("hint")
    assert f"{ok}: would change" in r.err_lines
    r = run_cli([*ARGS, "-"], raw)
    assert r.code == 3 and r.out == b""
    r = run_cli([*ARGS, "--max-bytes", str(limit + 1), "-"], raw)
    assert r.code == 0, r.err
    assert r.out.count(CPU_LINE) == 1


def test_a_refusal_for_size_says_the_real_size(tmp_path: Path) -> None:
    """A 20 MiB file is "20971520 bytes (20 MiB)", not the limit plus one byte that was
    read to notice it; a stream, whose size is unknown, says reading stopped."""
    big = tmp_path / "big.xml"
    with big.open("wb") as f:
        f.truncate(20 * 1024 * 1024)  # sparse: nothing written, nothing read
    r = run_cli([*ARGS, "--check", str(big)])
    assert r.code == 3
    assert _one_error(r.err_lines, str(big)).group("problem") == (
        "input is 20971520 bytes (20 MiB), over the 16777216-byte limit (16 MiB)"
    )
    r = run_cli([*ARGS, "--max-bytes", "1000", "-"], PLAIN + b"<!--" + b"x" * 2000 + b"-->\n")
    assert _one_error(r.err_lines, "<stdin>").group("problem") == (
        "input is over the 1000-byte limit (1000 bytes): reading stopped there"
    )
    with pytest.raises(InputError, match=r"^input is 1536 bytes \(1\.5 KiB\), over the 1024-byte"):
        core.process(PLAIN + b" " * (1536 - len(PLAIN)), Options(arch="intel"), max_bytes=1024)


def test_max_bytes_option(tmp_path: Path) -> None:
    r = run_cli([*ARGS, "--max-bytes", str(len(PLAIN) - 1), "-"], PLAIN)
    assert r.code == 3 and r.out == b""
    assert "limit" in _one_error(r.err_lines, "<stdin>").group("problem")
    assert run_cli([*ARGS, "--max-bytes", str(len(PLAIN)), "-"], PLAIN).out == NESTED
    assert run_cli([*ARGS, "--max-bytes", "0", "-"], PLAIN).code == 2


def test_reading_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An endless stream is not slurped: at most max_bytes + 1 bytes are read."""
    asked: list[int] = []
    real_read = files._read
    endless: set[int] = set()

    def fake_read(fd: int, n: int) -> bytes:
        if fd not in endless:
            return real_read(fd, n)
        asked.append(n)
        assert n >= 0, "read() without a size would never end"
        return b"<" * n

    real_open = files._open

    def fake_open(path: str, flags: int) -> int:
        fd = real_open(path, flags)
        if path.endswith("endless.xml"):
            endless.add(fd)  # the file as stat'ed: regular, empty; read as a stream
        return fd

    f = tmp_path / "endless.xml"
    f.write_bytes(b"")
    monkeypatch.setattr(files, "_open", fake_open)
    monkeypatch.setattr(files, "_read", fake_read)
    r = run_cli([*ARGS, "--max-bytes", "1000", "--check", str(f)])
    assert r.code == 3
    assert asked and min(asked) >= 0 and sum(asked) <= 1001  # never the whole stream
    assert "limit" in _one_error(r.err_lines, str(f)).group("problem")


def test_ten_thousand_deep_document_is_refused_cleanly() -> None:
    deep = b"<domain type='kvm'>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</domain>\n"
    r = run_cli([*ARGS, "-"], deep)
    assert r.code == 3
    assert "RecursionError" not in r.err
    m = _one_error(r.err_lines, "<stdin>")
    assert "deep" in m.group("problem")
    # the same through the core, with a tight recursion limit: still a clean refusal
    from xmlnest.errors import InputError

    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        with pytest.raises(InputError):
            core.process(deep, Options(arch="intel"))
    finally:
        sys.setrecursionlimit(saved)


def _big_domain(disks: int) -> bytes:
    disk = (
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='qcow2'/>\n"
        "      <source file='/var/lib/libvirt/images/d{i}.qcow2'/>\n"
        "      <target dev='vd{i}' bus='virtio'/>\n"
        "    </disk>\n"
    )
    body = "".join(disk.format(i=i) for i in range(disks))
    text = PLAIN.decode().replace("  <clock offset='utc'/>\n", f"  <devices>\n{body}  </devices>\n")
    return text.encode()


def test_a_real_but_large_domain_still_works() -> None:
    raw = _big_domain(5000)
    assert len(raw) > 900_000
    r = run_cli([*ARGS, "-"], raw)
    assert r.code == 0, r.err
    assert r.out.count(CPU_LINE) == 1
    assert r.out.replace(CPU_LINE, b"", 1) == raw


def test_time_grows_about_linearly_with_devices() -> None:
    """4x the devices must not cost 8x the CPU time (quadratic would be ~16x).

    CPU time of this process, best of three, garbage collector off: robust on a loaded CI.
    """

    def cost(n: int) -> float:
        raw = _big_domain(n)
        best = float("inf")
        for _ in range(3):
            gc.collect()
            gc.disable()
            try:
                start = time.process_time()
                core.process(raw, Options(arch="intel"))
                best = min(best, time.process_time() - start)
            finally:
                gc.enable()
        return best

    small, large = cost(500), cost(2000)
    assert large / max(small, 1e-3) < 8, (small, large)


# ---------------------------------------------------------------------- what is a document


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"<network><name>default</name></network>\n", "root element is <network>"),
        (b"<domain xmlns='urn:x' type='kvm'/>\n", "in namespace urn:x"),
        (b"<d:domain xmlns:d='http://libvirt.org/x' type='kvm'/>\n", "in namespace"),
    ],
)
def test_root_must_be_a_plain_domain(raw: bytes, problem: str) -> None:
    r = run_cli([*ARGS, "-"], raw)
    assert r.code == 3 and r.out == b""
    assert problem in _one_error(r.err_lines, "<stdin>").group("problem")


def test_non_domain_named_is_rejected_but_walked_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "net.xml").write_bytes(b"<network><name>default</name></network>\n")
    (tmp_path / "vm.xml").write_bytes(PLAIN)
    r = run_cli([*ARGS, "--check", str(tmp_path)])
    assert r.code == 1, r.err
    r = run_cli([*ARGS, "--check", str(tmp_path / "net.xml"), str(tmp_path / "vm.xml")])
    assert r.code == 3
    _one_error(r.err_lines, str(tmp_path / "net.xml"))


def test_concatenated_documents_on_stdin_are_refused() -> None:
    r = run_cli([*ARGS, "-"], NESTED + PLAIN)
    assert r.code == 3 and r.out == b""
    m = _one_error(r.err_lines, "<stdin>")
    assert m.group("line") == str(NESTED.count(b"\n") + 1)


def test_processing_instructions_cdata_and_comments_are_kept_byte_identical() -> None:
    odd = (
        b"<?xml version='1.0'?>\n<?xml-stylesheet href='a.xsl' type='text/xsl'?>\n"
        b"<!-- before --><domain type='kvm'>\n"
        b"  <name><![CDATA[l1 <&> ]]]]><![CDATA[>]]></name>\n"
        b"  <?app  keep   this ?>\n"
        b"  <description>a &amp; b &#233; &#xE9; &lt;x&gt;</description>\n"
        b"  <metadata><x:y xmlns:x='urn:x'><![CDATA[<cpu mode='custom'/>]]></x:y></metadata>\n"
        b"  <os>\n    <type arch='x86_64' machine='q35'>hvm</type><!--<cpu/>-->\n  </os>\n"
        b"  <clock offset='utc'/>\n</domain>\n<!-- after -->\n<?end?>\n"
    )
    r = run_cli([*ARGS, "-"], odd)
    assert r.code == 0, r.err
    assert r.out == odd.replace(b"  <clock", CPU_LINE + b"  <clock")


def test_names_with_characters_python_calls_white_space_are_kept() -> None:
    """U+1680 is white space to Python's regex \\s but a name character to XML."""
    odd = PLAIN.replace(b"<domain type='kvm'>", "<domain type='kvm' a\u1680b='1'>".encode())
    odd = odd.replace(b"  <clock", "  <x\u1680y>t</x\u1680y>\n  <clock".encode())
    r = run_cli([*ARGS, "-"], odd)
    assert r.code == 0, r.err
    assert r.out == odd.replace(b"  <x", CPU_LINE + b"  <x", 1)


# ---------------------------------------------------------------------------------- paths


def test_missing_file_is_reported_and_batch_goes_on(tmp_path: Path) -> None:
    good = tmp_path / "good.xml"
    good.write_bytes(PLAIN)
    missing = tmp_path / "nope.xml"
    r = run_cli([*ARGS, "-i", str(missing), str(good)])
    assert r.code == 3
    assert "no such file" in _one_error(r.err_lines, str(missing)).group("problem")
    assert good.read_bytes() == NESTED
    assert not missing.exists()


def _raise_for(name: str, exc: OSError) -> Callable[[str, int], int]:
    real_open = files._open

    def fake_open(path: str, flags: int) -> int:
        if Path(path).name == name:
            raise exc
        return real_open(path, flags)

    return fake_open


def test_unreadable_file_is_reported_and_batch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root reads mode-000 files, so the kernel's refusal is simulated at ``open``."""
    secret, good = tmp_path / "secret.xml", tmp_path / "good.xml"
    secret.write_bytes(PLAIN)
    good.write_bytes(PLAIN)
    secret.chmod(0)
    monkeypatch.setattr(
        files,
        "_open",
        _raise_for("secret.xml", PermissionError(errno.EACCES, "denied")),
        raising=False,
    )
    r = run_cli([*ARGS, "-i", str(secret), str(good)])
    assert r.code == 3
    assert "permission denied" in _one_error(r.err_lines, str(secret)).group("problem")
    assert good.read_bytes() == NESTED
    secret.chmod(0o644)
    assert secret.read_bytes() == PLAIN


def test_read_error_other_than_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "eio.xml"
    f.write_bytes(PLAIN)
    monkeypatch.setattr(
        files,
        "_open",
        _raise_for("eio.xml", OSError(errno.EIO, "Input/output error")),
        raising=False,
    )
    r = run_cli([*ARGS, "--check", str(f)])
    assert r.code == 3
    assert "Input/output error" in _one_error(r.err_lines, str(f)).group("problem")


def test_read_only_folder_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root writes into mode-555 folders, so the refusal is simulated where the temp
    file is created."""
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "vm.xml").write_bytes(PLAIN)
    (rw / "vm.xml").write_bytes(PLAIN)
    real = atomic._create_temp

    def create_temp(folder: str, name: str, *claim: Any) -> tuple[int, str]:
        if Path(folder) == ro:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(folder, name, *claim)

    monkeypatch.setattr(atomic, "_create_temp", create_temp)
    r = run_cli([*ARGS, "-i", str(ro / "vm.xml"), str(rw / "vm.xml")])
    assert r.code == 3
    line = _one_error(r.err_lines, str(ro / "vm.xml")).group(0)
    assert "Permission denied" in line and "unchanged" in line
    assert (ro / "vm.xml").read_bytes() == PLAIN
    assert (rw / "vm.xml").read_bytes() == NESTED
    assert sorted(p.name for p in ro.iterdir()) == ["vm.xml"]


def test_symlink_target_is_rewritten_and_link_stays(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "vm.xml"
    target.write_bytes(PLAIN)
    target.chmod(0o640)
    link = tmp_path / "link.xml"
    link.symlink_to(os.path.relpath(target, tmp_path))
    before = os.readlink(link)
    r = run_cli([*ARGS, "-i", str(link)])
    assert r.code == 0, r.err
    assert link.is_symlink() and os.readlink(link) == before
    assert target.read_bytes() == NESTED
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sources.stale_temp_files(real_dir) == sources.stale_temp_files(tmp_path) == []


def test_links_on_the_way_are_followed_and_kept(tmp_path: Path) -> None:
    """A linked folder, and a link to a link: the file at the end is rewritten."""
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "vm.xml"
    target.write_bytes(PLAIN)
    (tmp_path / "alias-dir").symlink_to("real")
    (real_dir / "first.xml").symlink_to("vm.xml")
    (tmp_path / "second.xml").symlink_to("alias-dir/first.xml")
    r = run_cli([*ARGS, "-i", str(tmp_path / "alias-dir" / "vm.xml")])
    assert r.code == 0, r.err
    assert target.read_bytes() == NESTED and (tmp_path / "alias-dir").is_symlink()
    target.write_bytes(PLAIN)
    r = run_cli([*ARGS, "-i", str(tmp_path / "second.xml")])
    assert r.code == 0, r.err
    assert target.read_bytes() == NESTED
    assert (tmp_path / "second.xml").is_symlink() and (real_dir / "first.xml").is_symlink()
    assert sources.stale_temp_files(real_dir) == sources.stale_temp_files(tmp_path) == []


def test_symlink_and_its_target_in_one_walk_are_processed_once(tmp_path: Path) -> None:
    (tmp_path / "vm.xml").write_bytes(PLAIN)
    (tmp_path / "alias.xml").symlink_to("vm.xml")
    r = run_cli([*ARGS, "--check", str(tmp_path)])
    assert r.code == 1
    assert sum(ln.endswith(": would change") for ln in r.err_lines) == 1


def test_same_file_named_twice_is_processed_once(tmp_path: Path) -> None:
    f = tmp_path / "vm.xml"
    f.write_bytes(PLAIN)
    twice = [str(f), f"{tmp_path}/./vm.xml"]
    r = run_cli([*ARGS, "--check", *twice])
    assert sum(ln.endswith(": would change") for ln in r.err_lines) == 1, r.err
    m = _one_error(r.err_lines, twice[1])
    assert "more than once" in m.group("problem")
    r = run_cli([*ARGS, "--diff", *twice])
    assert r.out.count(b"+  <cpu mode='host-passthrough'/>") == 1
    r = run_cli([*ARGS, "-i", *twice])
    assert f.read_bytes() == NESTED


def _feed_fifo(path: Path, data: bytes) -> threading.Thread:
    def feed() -> None:
        with open(path, "wb") as fh:
            fh.write(data)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return t


def test_fifo_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "vm.xml"
    os.mkfifo(fifo)
    t = _feed_fifo(fifo, PLAIN)
    r = run_cli([*ARGS, "--check", str(fifo)])
    t.join(5)
    assert r.code == 1, r.err
    assert r.err_lines == [f"{fifo}: would change"] or f"{fifo}: would change" in r.err_lines


def _xmlnest(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """The CLI in a child process: a run that blocks on a FIFO fails the test by timing
    out instead of hanging the suite."""
    return subprocess.run(
        [sys.executable, "-m", "xmlnest", *args],
        capture_output=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )


@pytest.mark.parametrize("mode", [["-i"], ["-o", "OUT"]])
def test_a_named_fifo_is_refused_in_a_writing_mode_before_it_is_opened(
    tmp_path: Path, mode: list[str]
) -> None:
    """No writer feeds it: opening it would wait for ever. -i cannot replace a FIFO and
    -o copies files, so it is refused from its stat alone."""
    fifo = tmp_path / "vm.xml"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    mode = [str(out) if m == "OUT" else m for m in mode]
    r = _xmlnest([*ARGS, *mode, str(fifo)])
    assert r.returncode == 3, r.stderr
    assert r.stderr.decode().splitlines() == [
        f"{fifo}: is a FIFO, not a regular file: -i cannot replace it and -o copies files "
        "only; read it with --check or --diff, or pipe it: xmlnest < FIFO > OUT.xml"
    ]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vm.xml"]  # no temp file, no copy


@pytest.mark.parametrize("mode", [["--check"], ["-i"], ["-o", "OUT"]])
def test_a_fifo_met_in_a_walk_is_skipped_unopened_and_counted(
    tmp_path: Path, mode: list[str]
) -> None:
    folder = tmp_path / "vms"
    folder.mkdir()
    os.mkfifo(folder / "a-fifo.xml")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "b-socket.xml"))
    (folder / "c.xml").write_bytes(PLAIN)
    mode = [str(tmp_path / "out") if m == "OUT" else m for m in mode]
    try:
        r = _xmlnest([*ARGS, *mode, str(folder)])
    finally:
        sock.close()
    err = r.stderr.decode().splitlines()
    assert r.returncode == (1 if mode == ["--check"] else 0), err
    changed = "1 would change" if mode == ["--check"] else "1 changed"
    assert err[-1].startswith(f"xmlnest: {changed}, 0 already nested, 2 skipped, 0 rejected")
    assert stat.S_ISFIFO(os.lstat(folder / "a-fifo.xml").st_mode)
    if mode == ["-i"]:
        assert (folder / "c.xml").read_bytes() == NESTED


def test_a_listed_file_swapped_for_a_fifo_before_its_open_is_skipped_not_waited_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walked file is opened with no stat first (the listing said: regular). Swapped
    for a FIFO after the listing, the open must not wait for a writer (O_NONBLOCK) and
    the descriptor's own fstat refuses it: skipped, like a FIFO the listing shows."""
    folder = tmp_path / "vms"
    folder.mkdir()
    (folder / "a.xml").write_bytes(PLAIN)
    (folder / "b.xml").write_bytes(PLAIN)
    real_open = files._open
    opened: list[tuple[str, int]] = []

    def swap_then_open(path: str, flags: int) -> int:
        if path.endswith("a.xml"):
            os.unlink(path)
            os.mkfifo(path)
        opened.append((path, flags))
        return real_open(path, flags)

    monkeypatch.setattr(files, "_open", swap_then_open)
    r = run_cli([*ARGS, "--check", str(folder)])
    assert r.code == 1, r.err
    assert r.err_lines[-1].startswith("xmlnest: 1 would change, 0 already nested, 1 skipped")
    assert [p.rsplit("/", 1)[1] for p, _ in opened] == ["a.xml", "b.xml"]
    assert all(flags & os.O_NONBLOCK for _, flags in opened)
    assert stat.S_ISFIFO(os.lstat(folder / "a.xml").st_mode)


def test_utf7_and_other_markup_hiding_encodings_are_refused() -> None:
    xml = b'<?xml version="1.0" encoding="UTF-7"?>\n<domain type="kvm"><name>x</name></domain>\n'
    r = run_cli(["--arch", "intel", "-"], xml)
    assert r.code == 3 and r.out == b""
    assert r.err_lines == [
        "<stdin>:1: encoding UTF-7 is not supported; use UTF-8 (or UTF-16 with a BOM, or ISO-8859-1)"
    ]


def test_a_temp_name_left_by_an_earlier_run_is_skipped(tmp_path: Path) -> None:
    """Temp names are the run's, the writer's pid and a serial number: a stale one with the same
    name is neither reused nor followed; the next name is taken."""
    vm = tmp_path / "vm.xml"
    vm.write_bytes(PLAIN)
    from xmlnest.files.temps import run_leader, temp_name

    serial = next(sources._temp_serial) + 1  # the number the next temp file will use
    stale = tmp_path / temp_name("vm.xml", run_leader(), os.getpid(), serial)
    stale.symlink_to(tmp_path / "elsewhere")
    sources.write_atomic(vm, NESTED)
    assert vm.read_bytes() == NESTED
    assert stale.is_symlink() and not (tmp_path / "elsewhere").exists()


def test_extended_attributes_go_with_the_content(tmp_path: Path) -> None:
    """ACLs and SELinux labels are extended attributes; user.* ones show the copy."""
    vm = tmp_path / "vm.xml"
    vm.write_bytes(PLAIN)
    os.setxattr(vm, "user.xmlnest.test", b"kept")
    r = run_cli([*ARGS, "-i", str(vm)])
    assert r.code == 0, r.err
    assert vm.read_bytes() == NESTED
    assert os.getxattr(vm, "user.xmlnest.test") == b"kept"


def test_a_hard_linked_file_is_rewritten_and_the_user_told(tmp_path: Path) -> None:
    vm, other = tmp_path / "vm.xml", tmp_path / "other-name.xml"
    vm.write_bytes(PLAIN)
    os.link(vm, other)
    r = run_cli([*ARGS, "-i", str(vm)])
    assert r.code == 0, r.err
    assert vm.read_bytes() == NESTED and other.read_bytes() == PLAIN
    assert r.err_lines == [
        f"{vm}: note: it has 2 hard links; the rewrite replaces this name only, "
        "the others keep the old content"
    ]
    vm.unlink()
    os.link(other, vm)
    assert run_cli([*ARGS, "-q", "-i", str(vm)]).err == ""
