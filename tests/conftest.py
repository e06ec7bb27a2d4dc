"""Shared test helpers: run the CLI in-process, find the corpus, regenerate goldens."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from xmlnest.cli import main

if TYPE_CHECKING:
    from tests.realvirt import RealVirt

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
SCHEMA_DIR = Path("/usr/share/libvirt/schemas")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        help="rewrite tests/golden/*/*/expected.xml from the current code (review the diff!)",
    )


@dataclass
class Run:
    code: int
    out: bytes
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln]


def run_cli(args: list[str], stdin: bytes = b"") -> Run:
    """Call ``xmlnest.cli.main`` with byte-level stdin/stdout and captured stderr."""
    fake_in = io.TextIOWrapper(io.BytesIO(stdin))
    out_buf = io.BytesIO()
    fake_out = io.TextIOWrapper(out_buf, write_through=True)
    fake_err = io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = fake_in, fake_out, fake_err
    try:
        code = main(args)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    fake_out.flush()
    return Run(code, out_buf.getvalue(), fake_err.getvalue())


@pytest.fixture
def cli() -> type[Run]:
    return Run


REQUIRE_REAL = "XMLNEST_REQUIRE_REAL"  # set by .ci/run: a missing real component fails


def real_required() -> bool:
    """True where every real component must be present (the project's CI sets it)."""
    return os.environ.get(REQUIRE_REAL, "") not in ("", "0")


def need(what: str, how: str) -> None:
    """Skip (on a laptop) or fail (under ``XMLNEST_REQUIRE_REAL=1``) a test that needs a
    real component that is missing, saying in one line what it needs and where it comes from."""
    message = f"needs {what}: {how}"
    if real_required():
        pytest.fail(f"{message} ({REQUIRE_REAL}=1 forbids skipping)")
    pytest.skip(message)


REQUIRE_CORPUS = "XMLNEST_REQUIRE_CORPUS"  # set by .ci/run when ../shared/corpus is there

SYSTEM_DAEMON = "XMLNEST_SYSTEM_DAEMON"  # set by .ci/run: the suite may use qemu:///system


def system_daemon_allowed() -> bool:
    """True where the tests may define domains and boot guests on this machine's
    qemu:///system (the project's CI sets it; a developer opts in)."""
    return os.environ.get(SYSTEM_DAEMON, "") not in ("", "0")


def consent_to_system_daemon(what: str) -> None:
    """Skip, in one line saying what it would touch, a test that uses this machine's own
    qemu:///system unless ``XMLNEST_SYSTEM_DAEMON=1`` asks for it. ``XMLNEST_REQUIRE_REAL``
    does not: it forbids skipping for a missing component, while this variable is the
    owner's consent to have domains defined and guests booted on their hypervisor."""
    if not system_daemon_allowed():
        pytest.skip(f"would {what} on this machine's qemu:///system; {SYSTEM_DAEMON}=1 allows it")


def libvirt_tool(name: str) -> str:
    """The path of one of libvirt's client tools (virsh, virt-xml-validate)."""
    found = shutil.which(name)
    if not found:
        need(name, "apt-get install libvirt-clients")
        raise AssertionError("unreachable")
    return found


def require_corpus() -> Path:
    """The shared corpus (``../shared/corpus``, beside the clone): tests fail without it
    under ``XMLNEST_REQUIRE_CORPUS=1``, and skip with a one-line reason elsewhere."""
    if not (CORPUS / "index.tsv").is_file():
        message = (
            f"needs the shared corpus of real domain XML: it is read from {CORPUS} (the "
            "team's shared/ folder beside the clone)"
        )
        if os.environ.get(REQUIRE_CORPUS, "") not in ("", "0"):
            pytest.fail(f"{message} ({REQUIRE_CORPUS}=1 forbids skipping)")
        pytest.skip(message)
    return CORPUS


def require_libvirt_schema() -> Path:
    """libvirt's domain.rng: CI installs it (libvirt-clients pulls libvirt0)."""
    rng = SCHEMA_DIR / "domain.rng"
    if not rng.is_file():
        need(f"libvirt's schemas ({rng})", "apt-get install libvirt-clients")
    return SCHEMA_DIR


@pytest.fixture
def tmp_files(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


@pytest.fixture(scope="session")
def realvirt() -> Iterator[RealVirt]:
    """qemu:///system with a bootable kernel and initramfs (tests/realvirt.py); needs
    libvirtd and QEMU, so it skips on a laptop without them and fails under
    XMLNEST_REQUIRE_REAL=1. Every domain and file it made is gone after the session.
    Only with XMLNEST_SYSTEM_DAEMON=1: it boots guests on the machine's own hypervisor."""
    from tests.realvirt import PREFIX, session

    consent_to_system_daemon(f"define and boot TCG guests named {PREFIX}*")

    yield from session()


@pytest.fixture(scope="session")
def power9(realvirt: RealVirt) -> RealVirt:
    """:func:`realvirt` that can also boot POWER9 pseries guests: Debian's ppc64el kernel
    and busybox, downloaded once into a cache (tests/realvirt.py ``power9_files``); skips
    without qemu-system-ppc64 or ppc64el packages in apt, fails under XMLNEST_REQUIRE_REAL=1."""
    from tests.realvirt import missing_power9, power9_files

    lack = missing_power9()
    if lack is not None:
        need(*lack)
    realvirt.prepare_power9(power9_files())
    return realvirt


@pytest.fixture(params=("python", "virsh"))
def backend(request: pytest.FixtureRequest) -> str:
    from xmlnest.libvirt import connection
    name: str = request.param
    assert name in connection.BACKENDS
    if name == "python" and not connection.libvirt_python_available():
        need(
            "libvirt-python",
            "pip install 'xmlnest[libvirt]' (after apt-get install libvirt-dev pkg-config gcc "
            "python3-dev)",
        )
    if name == "virsh" and not shutil.which("virsh"):
        need("virsh", "apt-get install libvirt-clients")
    return name


SYSTEM_URI = "qemu:///system"


def require_system_daemon() -> None:
    """The one gate of every test that defines domains on qemu:///system (all named
    xmlnest-test-*): the owner's consent (``XMLNEST_SYSTEM_DAEMON=1``), then virsh and a
    libvirtd that answers (.ci/run starts one)."""
    consent_to_system_daemon("define domains named xmlnest-test-*")
    if not shutil.which("virsh"):
        need("virsh", "apt-get install libvirt-clients")
    r = subprocess.run(["virsh", "-c", SYSTEM_URI, "version"], capture_output=True, check=False)
    if r.returncode != 0:
        need(
            "a running libvirtd (qemu:///system)",
            "libvirtd -d and virtlogd -d as root (.ci/run starts them)",
        )


@pytest.fixture(scope="module")
def daemon() -> None:
    """:func:`require_system_daemon`, once per module."""
    require_system_daemon()


DefineOnSystem = Callable[..., str]

# A shut-off x86 KVM guest whose AMD CPU has svm disabled: what enabling nesting changes.
AMD_NESTING_OFF = """<domain type='kvm'>
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


@pytest.fixture
def system_domains(daemon: None, tmp_path: Path) -> Iterator[DefineOnSystem]:
    """``define(template, tag="", **fields)``: define ``template`` (``{name}`` filled with
    a fresh ``xmlnest-test-TAG-…`` name, other fields from ``fields``) on qemu:///system
    with ``virsh define --validate`` and return its name; every domain it defined is
    undefined after the test."""
    names: list[str] = []

    def define(template: str, tag: str = "", **fields: str) -> str:
        name = f"xmlnest-test-{tag + '-' if tag else ''}{secrets.token_hex(4)}"
        f = tmp_path / f"{name}.xml"
        f.write_text(template.format(name=name, **fields))
        names.append(name)
        done = subprocess.run(
            ["virsh", "-q", "-c", SYSTEM_URI, "define", "--validate", str(f)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return name

    try:
        yield define
    finally:
        for name in names:
            subprocess.run(
                ["virsh", "-q", "-c", SYSTEM_URI, "undefine", "--nvram", name],
                capture_output=True,
                check=False,
            )
