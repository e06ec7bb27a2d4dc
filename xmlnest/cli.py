"""The thin shell: options -> one output mode; loop over inputs; one report -> exit code.

Only this module prints or exits. Every message is one stderr line
``PATH[:LINE]: problem; hint``; stdout carries only XML or only a diff.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, TextIO

from lxml import etree

if TYPE_CHECKING:
    import click

from xmlnest import core, diff, options
from xmlnest.errors import NotADomain, UsageError, WriteError, XmlnestError
from xmlnest.plan import Finding, Level
from xmlnest.sources import (
    STDIN,
    AtomicBatch,
    Input,
    expand,
    read,
    remove_stale_temp_files,
    sync_folders,
    write_new,
)
from xmlnest.transforms import ARCH_ALIASES
from xmlnest.transforms.common import Options, Vendor
from xmlnest.validate import SchemaProblem, Validator, choose

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_INTERRUPTED = 130

BATCH = 64  # in-place rewrites committed together: one wait for the disk
CHUNK = 256  # inputs per task handed to a --jobs worker


class WriteBack(NamedTuple):
    """The one output mode, computed once from the flags (black's WriteBack)."""

    check: bool
    diff: str | None  # None, "unified" or "json"
    in_place: bool
    output_dir: Path | None

    @property
    def to_stdout(self) -> bool:
        return not (self.check or self.diff or self.in_place or self.output_dir)


class Report:
    """Counts per outcome and the exit code they add up to (black's report.py)."""

    def __init__(
        self, *, quiet: bool, err: TextIO, verbose: bool = False, writes: bool = True
    ) -> None:
        self.quiet = quiet
        self.writes = writes  # False for --check and --diff: the summary says "would change"
        self.err = err
        self.verbose = verbose
        self.changed = self.unchanged = self.skipped = self.rejected = self.would_change = 0
        self.announced = False
        self.folders: set[str] = set()  # folders with renames still to fsync

    def say(self, line: str) -> None:
        print(line, file=self.err, flush=True)

    def reject(self, exc: XmlnestError, name: str) -> None:
        self.rejected += 1
        self.say(exc.format(name))

    def finding(self, name: str, f: Finding) -> None:
        if self.quiet or (f.level is Level.INFO and not self.verbose):
            return
        where = f"{name}:{f.line}" if f.line else name
        text = f"{where}: {f.level.value}: {f.rule} {f.message}"
        if f.hint:
            text += f"; {f.hint}"
        self.say(" ".join(text.split()))

    def add(self, r: FileResult, wb: WriteBack, out: BinaryIO, notice: str | None) -> None:
        """Account for one result and print what belongs to it, in input order."""
        if r.validated_with and notice and not self.announced and not self.quiet:
            self.say(f"xmlnest: {notice}")
        if r.validated_with:
            self.announced = True
        if r.folder:
            self.folders.add(r.folder)
        for line in r.messages:
            self.say(line)
        if not self.quiet:
            for line in r.notes:
                self.say(line)
        for f in r.findings:
            self.finding(r.name, f)
        if r.status == "rejected":
            self.rejected += 1
            return
        if r.status == "skipped":
            self.skipped += 1
            return
        if r.diff:
            out.write(r.diff.encode("utf-8"))
        if wb.to_stdout:
            out.write(r.output)
        out.flush()
        if r.status == "unchanged":
            self.unchanged += 1
        elif wb.check:
            self.would_change += 1
            if not self.quiet and not wb.diff:
                self.say(f"{r.name}: would change")
        else:
            self.changed += 1

    def notice(self, text: str) -> None:
        if not self.quiet:
            self.say(f"xmlnest: {text}")

    def summary(self, seconds: float) -> None:
        if self.quiet:
            return
        changed = self.would_change or self.changed
        verb = "changed" if self.writes else "would change"
        self.say(
            f"xmlnest: {changed} {verb}, {self.unchanged} already nested, "
            f"{self.skipped} skipped, {self.rejected} rejected in {seconds:.2f} s"
        )

    @property
    def exit_code(self) -> int:
        if self.rejected:
            return EXIT_REJECTED
        if self.would_change:
            return EXIT_CHANGES
        return EXIT_OK


class Settings(NamedTuple):
    """Everything a worker needs to process one input; picklable for ``--jobs``."""

    options: Options
    wb: WriteBack
    validate_kind: str
    schema_dir: str | None
    max_bytes: int
    strict: bool
    host_root: str
    skip_non_domain: bool = False


class FileResult(NamedTuple):
    """What happened to one input, as plain data (crosses process boundaries)."""

    name: str
    status: str  # changed, unchanged, skipped, rejected
    messages: tuple[str, ...] = ()  # error lines, already formatted
    notes: tuple[str, ...] = ()  # lines worth saying unless -q, already formatted
    findings: tuple[Finding, ...] = ()
    output: bytes = b""  # the XML for stdout mode
    diff: str = ""
    validated_with: str | None = None
    folder: str = ""  # where an in-place write renamed a file (to fsync once per batch)


class _Worker:
    """Per-process state: the schema compiled once, the host vendor read once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        choice = choose(settings.validate_kind, settings.schema_dir)
        self.validator = choice.validator
        self.used = False
        self.host_vendor = _host_vendor_reader(settings.host_root)

    def problems(self, root: etree._Element) -> list[SchemaProblem]:
        assert self.validator is not None
        self.used = True
        return self.validator.problems(root)


@functools.cache
def _worker(settings: Settings) -> _Worker:
    return _Worker(settings)


def process_chunk(items: list[Input], settings: Settings) -> list[FileResult]:
    """A ``--jobs`` worker's task: the results of ``items``, in order."""
    return list(_processed(items, settings))


def _processed(items: list[Input], settings: Settings) -> Iterator[FileResult]:
    """Results in input order, each as soon as it is final. In place, rewrites are staged
    and committed together, ``BATCH`` at a time (one wait for the disk, see
    ``AtomicBatch``); a file's result says "changed" only once its rename is done."""
    if not settings.wb.in_place:
        for item in items:
            yield process_one(item, settings)
        return
    for k in range(0, len(items), BATCH):
        part = items[k : k + BATCH]
        with AtomicBatch(start_writeback=len(items) > 1) as batch:
            results = [process_one(item, settings, batch) for item in part]
            failed = batch.commit()
        for item, r in zip(part, results, strict=True):
            if item.path in failed:
                r = FileResult(
                    r.name,
                    "rejected",
                    (failed[item.path].format(item.name),),
                    validated_with=r.validated_with,
                )
            yield r


def process_one(item: Input, settings: Settings, batch: AtomicBatch | None = None) -> FileResult:
    """Read, transform, check and (stage in ``batch`` / output dir) write one input."""
    w = _worker(settings)
    w.used = False
    wb = settings.wb
    validator: Validator | None = None
    if w.validator is not None:
        validator = _Named(w.validator.name, w.problems)
    try:
        got = read(item, settings.max_bytes, sys.stdin.buffer)
        outcome = core.process(
            got.data,
            settings.options,
            host_vendor=w.host_vendor,
            validator=validator,
            max_bytes=settings.max_bytes,
        )
    except NotADomain as exc:
        if item.walked or settings.skip_non_domain:
            return FileResult(item.name, "skipped")
        return FileResult(item.name, "rejected", (exc.format(item.name),))
    except XmlnestError as exc:
        return FileResult(item.name, "rejected", (exc.format(item.name),))
    used = w.validator.name if w.used and w.validator else None
    warnings = [f for f in outcome.findings if f.level is Level.WARNING]
    if settings.strict and warnings:
        lines = tuple(
            XmlnestError(f.message, hint=f.hint, line=f.line, rule=f.rule).format(item.name)
            + " (--strict)"
            for f in warnings
        )
        return FileResult(item.name, "rejected", lines, validated_with=used)
    status = "changed" if outcome.changed else "unchanged"
    text = ""
    if outcome.changed and wb.diff == "unified":
        text = diff.unified(item.name, outcome.source, outcome.output)
    elif outcome.changed and wb.diff == "json":
        from xmlnest.structured import json_line

        text = json_line(item.name, outcome)
    folder = ""
    notes: tuple[str, ...] = ()
    try:
        if outcome.changed and batch is not None and item.path is not None:
            folder = batch.stage(item.path, outcome.output, got.seen)
            if got.links > 1:
                notes = (
                    f"{item.name}: note: it has {got.links} hard links; the rewrite replaces "
                    "this name only, the others keep the old content",
                )
        if wb.output_dir is not None and item.path is not None:
            write_new(wb.output_dir / _mirror(item), outcome.output)
    except WriteError as exc:
        return FileResult(item.name, "rejected", (exc.format(item.name),), validated_with=used)
    return FileResult(
        item.name,
        status,
        findings=outcome.findings,
        output=outcome.output if wb.to_stdout else b"",
        diff=text,
        validated_with=used,
        folder=folder,
        notes=notes,
    )


def _mirror(item: Input) -> Path:
    """Where a converted copy goes under --output-dir: the path below the walked folder."""
    assert item.path is not None
    path = Path(item.path)
    if item.base is not None:
        return path.relative_to(item.base)
    return Path(path.name) if path.is_absolute() else path


class _Named:
    """A validator under a name, counting its use (so the notice is said only when used)."""

    def __init__(self, name: str, check: Callable[[etree._Element], list[SchemaProblem]]):
        self.name = name
        self.check = check

    def problems(self, root: etree._Element) -> list[SchemaProblem]:
        return self.check(root)


def _host_vendor_reader(host_root: str) -> Callable[[], Vendor | None]:
    @functools.cache
    def read_vendor() -> Vendor | None:
        from xmlnest.host import cpu_vendor

        return cpu_vendor(Path(host_root))

    return read_vendor


def _results(items: list[Input], settings: Settings, jobs: int) -> Iterator[FileResult]:
    """Results in input order, whatever the number of jobs."""
    if jobs <= 1 or len(items) < 2:
        yield from _processed(items, settings)
        return
    from concurrent.futures import ProcessPoolExecutor

    chunks = list(_chunks(items, jobs))
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker)
    try:
        for done in pool.map(process_chunk, chunks, [settings] * len(chunks)):
            yield from done
    except BaseException:
        # Ctrl-C or a closed stdout: workers finish the chunk in hand (writes are atomic)
        # and nothing new starts.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _chunks(items: list[Input], jobs: int) -> Iterator[list[Input]]:
    """Tasks for the workers: up to ``CHUNK`` inputs, smaller towards the end (a quarter of
    a worker's share of what is left, at least 16), so that the workers finish together."""
    k = 0
    while k < len(items):
        size = max(16, min(CHUNK, (len(items) - k) // (jobs * 4)))
        yield items[k : k + size]
        k += size


def _init_worker() -> None:
    """Workers leave Ctrl-C to the parent, and die with it if it is killed outright."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def run(
    *,
    paths: tuple[str, ...],
    arch: str,
    model: str | None,
    passthrough: bool,
    host_model: bool,
    disable: bool,
    check: bool,
    diff_format: str | None,
    in_place: bool,
    schema_dir: str | None,
    validate_kind: str,
    no_validate: bool,
    strict: bool,
    max_bytes: int,
    host_root: str,
    level: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    jobs: int,
    output_dir: str | None,
    skip_non_domain: bool,
    host_check: bool,
    as_json: bool,
    explain: str | None,
    quiet: bool,
    verbose: bool,
) -> int:
    out: BinaryIO = sys.stdout.buffer
    if explain is not None:
        return _explain(explain, out)
    if host_check:
        return _host_check(host_root, as_json, out)
    if as_json:
        raise UsageError("--json goes with --host-check (use --diff=json for a JSON diff)")
    if model and passthrough:
        raise UsageError("--model and --passthrough contradict each other; pick one")
    _check_direction(disable, host_model, model, passthrough, level)
    if in_place and check:
        raise UsageError("--in-place and --check contradict each other; pick one")
    if model is not None and not model.strip():
        raise UsageError("--model needs a CPU model name")
    target = ARCH_ALIASES[arch]
    if level == "l2" and target in ("intel", "amd", "ibmz"):
        raise UsageError(f"--level l2 with --arch {arch}: L3 guests are not expected to work")
    if host_model and target in ("power9", "ibmz"):
        raise UsageError(f"--host-model applies to Intel and AMD CPUs, not to --arch {arch}")
    wb = WriteBack(
        check=check,
        diff=diff_format,
        in_place=in_place,
        output_dir=Path(output_dir) if output_dir else None,
    )
    args = list(paths) or [STDIN]
    if wb.to_stdout and (len(args) > 1 or any(os.path.isdir(a) for a in args)):
        raise UsageError(
            "several inputs need --check, --diff, --in-place or --output-dir "
            "(stdout takes one document)"
        )
    if (in_place or output_dir) and STDIN in args:
        raise UsageError("--in-place and --output-dir need named files, not stdin")
    settings = Settings(
        options=Options(
            arch=target,
            model=model,
            passthrough=passthrough,
            level=level,
            disable=disable,
            host_model=host_model,
        ),
        wb=wb,
        validate_kind="none" if no_validate else validate_kind,
        schema_dir=schema_dir,
        max_bytes=max_bytes,
        strict=strict,
        host_root=host_root,
        skip_non_domain=skip_non_domain,
    )
    choice = choose(settings.validate_kind, schema_dir)  # fail early on --validate rng
    writes = wb.in_place or wb.output_dir is not None or wb.to_stdout
    report = Report(quiet=quiet, err=sys.stderr, verbose=verbose, writes=writes)
    started = time.monotonic()
    items: list[Input] = []
    for item in expand(args, include=include, exclude=exclude):
        if isinstance(item, XmlnestError):
            report.reject(item, item.path or "")
        else:
            items.append(item)
    if in_place:
        _clean_stale_temps(items, report)
    many = len(items) > 1 or any(i.walked for i in items)
    workers = jobs or (min(os.cpu_count() or 1, 8) if len(items) >= 64 else 1)
    results = _results(items, settings, workers)
    show_bar = many and not quiet and len(items) >= 50 and sys.stderr.isatty()
    drained = False
    try:
        notice = None if choice.routine and not verbose else choice.notice
        _drain(results, report, wb, out, notice, show_bar, len(items))
        drained = True
    except BrokenPipeError:
        # The reader went away (`xmlnest … | head -1`): stop quietly, keep what was said.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return report.exit_code
    finally:
        # Cut short (Ctrl-C), a batch may have renamed files whose results never came
        # back: make every folder this run may have written in durable.
        sync_folders(report.folders if drained or not in_place else _folders(items))
    if many:
        report.summary(time.monotonic() - started)
    return report.exit_code


def _check_direction(
    disable: bool, host_model: bool, model: str | None, passthrough: bool, level: str
) -> None:
    """--disable takes none of the options that shape the enabling edit; --host-model
    contradicts the other CPU choices. (``--level l1`` is the default, so only an
    ``l2`` conflicts.)"""
    if disable:
        for flag, given in (
            ("--model", model is not None),
            ("--passthrough", passthrough),
            ("--host-model", host_model),
            ("--level l2", level == "l2"),
        ):
            if given:
                raise UsageError(
                    f"--disable and {flag} contradict each other: {flag} shapes the "
                    "enabling edit; drop one"
                )
    if host_model and (model is not None or passthrough):
        other = "--model" if model is not None else "--passthrough"
        raise UsageError(f"--host-model and {other} contradict each other; pick one")


def _drain(
    results: Iterator[FileResult],
    report: Report,
    wb: WriteBack,
    out: BinaryIO,
    notice: str | None,
    show_bar: bool,
    total: int,
) -> None:
    if show_bar:
        import click

        with click.progressbar(results, length=total, file=sys.stderr, label="xmlnest") as bar:
            for result in bar:
                report.add(result, wb, out, notice)
    else:
        for result in results:
            report.add(result, wb, out, notice)


def _clean_stale_temps(items: list[Input], report: Report) -> None:
    """Remove what killed runs left beside the files this run may rewrite, and say so."""
    for folder in sorted(Path(f) for f in _folders(items)):
        for stale in remove_stale_temp_files(folder):
            report.notice(f"removed {stale}, a temp file left by an interrupted run")


def _folders(items: list[Input]) -> set[str]:
    """The folders an in-place run over ``items`` writes in, resolved."""
    named = {os.path.dirname(i.path) for i in items if i.path is not None}
    named |= {  # a linked file is rewritten beside its target
        os.path.dirname(os.path.realpath(i.path))
        for i in items
        if i.path is not None and (os.path.islink(i.path) if i.link is None else i.link)
    }
    return {os.path.realpath(f or ".") for f in named}


def _explain(rule_id: str, out: BinaryIO) -> int:
    from xmlnest.rules import explain

    text = explain(rule_id)
    if text is None:
        raise UsageError(f"no rule {rule_id!r}; rules are listed in the README")
    out.write(text.encode())
    return EXIT_OK


def _host_check(host_root: str, as_json: bool, out: BinaryIO) -> int:
    from xmlnest.host import host_check, render_json, render_text

    report = host_check(Path(host_root))
    out.write((render_json(report) if as_json else render_text(report)).encode())
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Run xmlnest; return the exit code (tests call this in-process).

    Everyday argument lists are read without importing click (see ``options``); all
    others, help and errors included, go to the click command built from the same table.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    kw = options.read_fast(args)
    if kw is not None:
        try:
            return run(**kw)
        except UsageError as exc:
            print(f"xmlnest: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:  # as click's Abort below
            print(INTERRUPTED, file=sys.stderr)
            return EXIT_INTERRUPTED
    return _main_click(args)


INTERRUPTED = "xmlnest: interrupted; files already rewritten are complete"


@functools.cache
def _command() -> click.Command:
    return options.click_command(run)


def _main_click(args: list[str]) -> int:
    import click

    try:
        rc = _command().main(
            args=_bare_diff(args),
            prog_name="xmlnest",
            standalone_mode=False,
        )
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
    except click.Abort:  # click turns Ctrl-C into Abort
        print(INTERRUPTED, file=sys.stderr)
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
    import gc

    gc.freeze()  # objects made by imports never need collecting: keep gen-2 passes cheap
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
