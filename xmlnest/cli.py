"""The thin shell: options -> one output mode; loop over inputs; one report -> exit code.

Only this module prints or exits. Every message is one stderr line
``PATH[:LINE]: problem; hint``; stdout carries only XML or only a diff.
"""

from __future__ import annotations

import enum
import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

import click

from xmlnest import __version__, core, diff
from xmlnest.errors import NotADomain, UsageError, WriteError, XmlnestError
from xmlnest.plan import Finding, Level
from xmlnest.sources import STDIN, Input, expand, read, write_atomic, write_new
from xmlnest.transforms import ARCH_ALIASES
from xmlnest.transforms.common import Options, Vendor
from xmlnest.validate import Choice, SchemaProblem, Validator, choose

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\b
Exit codes:
  0  success (files rewritten included)
  1  --check: at least one input would change
  2  usage error
  3  at least one input was rejected (unreadable, malformed, not a domain,
     arch mismatch, refused by a rule, or output that would be schema-invalid)
"""


class Mode(enum.Enum):
    STDOUT = "stdout"
    CHECK = "check"
    DIFF = "diff"
    IN_PLACE = "in-place"


@dataclass(frozen=True)
class WriteBack:
    """The one output mode, computed once from the flags (black's WriteBack)."""

    check: bool
    diff: str | None  # None, "unified" or "json"
    in_place: bool
    output_dir: Path | None

    @property
    def to_stdout(self) -> bool:
        return not (self.check or self.diff or self.in_place or self.output_dir)


@dataclass
class Report:
    """Counts per outcome and the exit code they add up to (black's report.py)."""

    quiet: bool
    err: TextIO
    changed: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: int = 0
    would_change: int = 0
    warned: set[str] = field(default_factory=set)

    def say(self, line: str) -> None:
        print(line, file=self.err, flush=True)

    def reject(self, exc: XmlnestError, name: str) -> None:
        self.rejected += 1
        self.say(exc.format(name))

    def finding(self, name: str, f: Finding) -> None:
        if self.quiet:
            return
        where = f"{name}:{f.line}" if f.line else name
        text = f"{where}: {f.level.value}: {f.rule} {f.message}"
        if f.hint:
            text += f"; {f.hint}"
        self.say(" ".join(text.split()))

    def notice(self, key: str, text: str) -> None:
        if not self.quiet and key not in self.warned:
            self.warned.add(key)
            self.say(f"xmlnest: {text}")

    @property
    def exit_code(self) -> int:
        if self.rejected:
            return EXIT_REJECTED
        if self.would_change:
            return EXIT_CHANGES
        return EXIT_OK


class _Announced:
    """A validator that says once, on first use, which schema it is."""

    def __init__(self, choice: Choice, report: Report) -> None:
        assert choice.validator is not None
        self._inner: Validator = choice.validator
        self.name = choice.validator.name
        self._notice = choice.notice
        self._report = report

    def problems(self, root: object) -> list[SchemaProblem]:
        if self._notice:
            self._report.notice("schema", self._notice)
            self._notice = None
        return self._inner.problems(root)  # type: ignore[arg-type]


def _host_vendor_reader(host_root: str) -> Callable[[], Vendor | None]:
    @functools.cache
    def read_vendor() -> Vendor | None:
        from xmlnest.host import cpu_vendor

        return cpu_vendor(Path(host_root))

    return read_vendor


ARCH_CHOICES = sorted(ARCH_ALIASES)


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.argument("paths", nargs=-1, type=str)
@click.option(
    "--arch",
    type=click.Choice(ARCH_CHOICES),
    default="auto",
    show_default=True,
    help="Target architecture; auto reads <os><type arch>.",
)
@click.option("--model", metavar="NAME", help="x86: use this named CPU model (custom mode).")
@click.option("--passthrough", is_flag=True, help="Force host-passthrough, even over a model.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any input would change.")
@click.option(
    "--diff",
    "diff_format",
    is_flag=False,
    flag_value="unified",
    default=None,
    type=click.Choice(["unified", "json"]),
    help="Print a diff instead of XML (--diff=json: one JSON object per input).",
)
@click.option("-i", "--in-place", is_flag=True, help="Rewrite changed files atomically.")
@click.option("--schema-dir", metavar="DIR", help="Folder holding libvirt's domain.rng.")
@click.option(
    "--validate",
    "validate_kind",
    type=click.Choice(["auto", "rng", "xsd", "none"]),
    default="auto",
    show_default=True,
    help="Schema to check changed outputs with.",
)
@click.option("--no-validate", is_flag=True, help="Same as --validate none.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 3).")
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=16 * 1024 * 1024,
    show_default=True,
    help="Refuse inputs larger than this.",
)
@click.option(
    "--host-root",
    default="/",
    show_default=True,
    metavar="DIR",
    help="Read the host's /proc and /sys under DIR (tests, captured hosts).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(__version__, prog_name="xmlnest")
def command(**kw: object) -> int:
    """Enable nested virtualization in libvirt domain XML.

    Reads PATH... (files; none or '-' for stdin), makes the edits the domain's
    architecture needs, validates the result and writes the XML (one input), the
    files in place (-i), a diff (--diff) or only a verdict (--check).
    """
    return run(**kw)  # type: ignore[arg-type]


def run(
    *,
    paths: tuple[str, ...],
    arch: str,
    model: str | None,
    passthrough: bool,
    check: bool,
    diff_format: str | None,
    in_place: bool,
    schema_dir: str | None,
    validate_kind: str,
    no_validate: bool,
    strict: bool,
    max_bytes: int,
    host_root: str,
    quiet: bool,
) -> int:
    out: BinaryIO = sys.stdout.buffer
    report = Report(quiet=quiet, err=sys.stderr)
    if model and passthrough:
        raise UsageError("--model and --passthrough contradict each other; pick one")
    if in_place and check:
        raise UsageError("--in-place and --check contradict each other; pick one")
    if model is not None and not model.strip():
        raise UsageError("--model needs a CPU model name")
    wb = WriteBack(check=check, diff=diff_format, in_place=in_place, output_dir=None)
    args = list(paths) or [STDIN]
    if wb.to_stdout and (len(args) > 1 or any(os.path.isdir(a) for a in args)):
        raise UsageError(
            "several inputs need --check, --diff or --in-place (stdout takes one document)"
        )
    if in_place and STDIN in args:
        raise UsageError("--in-place cannot rewrite stdin; name files")
    choice = choose("none" if no_validate else validate_kind, schema_dir)
    validator = _Announced(choice, report) if choice.validator else None
    options = Options(arch=ARCH_ALIASES[arch], model=model, passthrough=passthrough)
    host_vendor = _host_vendor_reader(host_root)
    for item in expand(args):
        if isinstance(item, XmlnestError):
            report.reject(item, item.path or "")
            continue
        _one(item, options, wb, report, out, host_vendor, validator, max_bytes, strict)
    return report.exit_code


def _one(
    item: Input,
    options: Options,
    wb: WriteBack,
    report: Report,
    out: BinaryIO,
    host_vendor: Callable[[], Vendor | None],
    validator: Validator | None,
    max_bytes: int,
    strict: bool,
) -> None:
    try:
        raw = read(item, max_bytes, sys.stdin.buffer)
        outcome = core.process(
            raw, options, host_vendor=host_vendor, validator=validator, max_bytes=max_bytes
        )
    except NotADomain as exc:
        if item.walked:
            report.skipped += 1
            return
        report.reject(exc, item.name)
        return
    except XmlnestError as exc:
        report.reject(exc, item.name)
        return
    warnings = [f for f in outcome.findings if f.level is Level.WARNING]
    if strict and warnings:
        for f in warnings:
            report.say(
                XmlnestError(f.message, hint=f.hint, line=f.line, rule=f.rule).format(item.name)
                + " (--strict)"
            )
        report.rejected += 1
        return
    for f in outcome.findings:
        report.finding(item.name, f)
    if not outcome.changed:
        report.unchanged += 1
        if wb.to_stdout:
            out.write(raw)
            out.flush()
        return
    if wb.diff == "unified":
        out.write(diff.unified(item.name, outcome.source, outcome.output).encode("utf-8"))
        out.flush()
    elif wb.diff == "json":
        from xmlnest.structured import json_line

        out.write(json_line(item.name, outcome).encode("utf-8"))
        out.flush()
    if wb.check:
        report.would_change += 1
        if not report.quiet and not wb.diff:
            report.say(f"{item.name}: would change")
        return
    if wb.in_place and item.path is not None:
        try:
            write_atomic(item.path, outcome.output)
        except WriteError as exc:
            report.reject(exc, item.name)
            return
    if wb.output_dir is not None and item.path is not None:
        try:
            write_new(wb.output_dir / item.path, outcome.output)
        except WriteError as exc:
            report.reject(exc, item.name)
            return
    report.changed += 1
    if wb.to_stdout:
        out.write(outcome.output)
        out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run xmlnest; return the exit code (tests call this in-process)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rc = command.main(args=_bare_diff(args), prog_name="xmlnest", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)
        return EXIT_USAGE
    except click.UsageError as exc:
        print(f"xmlnest: {exc.format_message()}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"xmlnest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        return EXIT_INTERRUPTED
    return int(rc) if isinstance(rc, int) else EXIT_OK


def _bare_diff(args: list[str]) -> list[str]:
    """A bare ``--diff`` means unified; click would otherwise take the next PATH as its value."""
    out: list[str] = []
    for i, a in enumerate(args):
        if a == "--":
            return out + args[i:]
        out.append("--diff=unified" if a == "--diff" else a)
    return out


def entry() -> None:
    """Console script: exit with main()'s code; a closed stdout or Ctrl-C ends quietly."""
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("xmlnest: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    raise SystemExit(code)
