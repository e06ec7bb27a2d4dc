"""Shared test helpers: run the CLI in-process, find the corpus, regenerate goldens."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xmlnest.cli import main

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


def require_corpus() -> Path:
    """The shared corpus: tests fail in CI without it, skip on a laptop."""
    if not (CORPUS / "index.tsv").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"corpus missing at {CORPUS} (CI must run beside ../shared)")
        pytest.skip("corpus ../shared/corpus not present")
    return CORPUS


def require_libvirt_schema() -> Path:
    """libvirt's domain.rng: CI installs it (libvirt-clients pulls libvirt0)."""
    rng = SCHEMA_DIR / "domain.rng"
    if not rng.is_file():
        if os.environ.get("CI"):
            pytest.fail("libvirt's domain.rng is missing; .ci/run must install libvirt-clients")
        pytest.skip("libvirt schemas not installed")
    return SCHEMA_DIR


@pytest.fixture
def tmp_files(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
