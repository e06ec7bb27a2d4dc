"""Per-input work: read, transform, verify and write one input; batch in-place rewrites.

Pure data comes out (``FileResult``), in input order; printing and counting are the
caller's. The run (``run.py``) hands the work to ``--jobs`` processes (``parallel``,
imported only then) or to ``processed`` here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import NamedTuple

from lxml import etree

from xmlnest.cli import diff
from xmlnest.cli.config import Output, RunConfig
from xmlnest.convert import Converter, Outcome, ThisMachine
from xmlnest.engine.plan import Finding, Level
from xmlnest.engine.transforms import CANNOT_NEST
from xmlnest.engine.validate import SchemaProblem, Validator
from xmlnest.errors import NotADomain, RuleError, WriteError, XmlnestError
from xmlnest.files import AtomicBatch, Input, Read, mirror, read, write_new
from xmlnest.model import Status

BATCH = 64  # in-place rewrites committed together: one wait for the disk


class FileResult(NamedTuple):
    """What happened to one input, as plain data (crosses process boundaries)."""

    name: str
    status: Status
    messages: tuple[str, ...] = ()  # error lines, already formatted
    notes: tuple[str, ...] = ()  # lines worth saying unless -q, already formatted
    findings: tuple[Finding, ...] = ()
    errors: tuple[Finding, ...] = ()  # why it was rejected, structured (for --json)
    output: bytes = b""  # the XML for stdout mode
    diff: str = ""
    validated_with: str | None = None
    folder: str = ""  # where an in-place write renamed a file (to fsync once per batch)
    not_a_domain: bool = False  # skipped: XML whose root is not <domain> (or not a file)
    defined: str = ""  # -i by name: "NAME: defined" or "NAME: defined (restart pending)"


def error_finding(exc: XmlnestError) -> Finding:
    """A refusal as a finding of level error (the shape ``--json`` reports)."""
    return Finding(exc.rule or "", exc.problem, exc.hint, exc.line, Level.ERROR)


def unsupported(item: Input, exc: XmlnestError, passed_on: bytes = b"") -> FileResult:
    """``--skip-unsupported``: a domain that cannot nest by what it is, skipped with its
    rule as an info finding (said with ``-v``; in ``--json``, the reason it was skipped).
    ``passed_on``: what stdout gets (a pipe hands the input on untouched)."""
    return FileResult(
        item.name,
        Status.SKIPPED,
        findings=(Finding(exc.rule or "", exc.problem, exc.hint, exc.line, Level.INFO),),
        output=passed_on,
    )


def rejected(item: Input, exc: XmlnestError, used: str | None = None) -> FileResult:
    return FileResult(
        item.name,
        Status.REJECTED,
        (exc.format(item.name),),
        errors=(error_finding(exc),),
        validated_with=used,
    )


class _Worker:
    """Per-process state: the converter, with the schema compiled once and the host's
    vendor read once (when a domain first needs it)."""

    def __init__(self, config: RunConfig) -> None:
        validator = config.validation.make_validator()
        self.validator = _Counted(validator) if validator is not None else None
        self.converter = Converter(
            config.options,
            validator=self.validator,
            lookup=ThisMachine(config.host_root or "/"),
            max_bytes=config.max_bytes,
        )


_last: list[tuple[RunConfig, _Worker]] = []  # this process's one worker, for one run


def _worker(config: RunConfig) -> _Worker:
    """This process's worker for ``config``, made once per run (:func:`results` starts
    each run afresh). Asked once per batch of inputs; a ``--jobs`` worker gets each
    task's configuration unpickled, an equal copy, and keeps its compiled schema for it."""
    if not _last or (_last[0][0] is not config and _last[0][0] != config):
        _last[:] = [(config, _Worker(config))]
    return _last[0][1]


class _Counted:
    """A validator that says whether it was used since ``used`` was last cleared (so the
    notice of which schema validates is said only once one has)."""

    def __init__(self, validator: Validator) -> None:
        self.validator = validator
        self.name = validator.name
        self.used = False

    def problems(self, root: etree._Element) -> list[SchemaProblem]:
        self.used = True
        return self.validator.problems(root)


def start_run() -> None:
    """Forget this process's worker state: each run starts afresh. An earlier run in this
    process, even with an equal configuration, may have seen another environment (its
    ``XMLNEST_SCHEMA_DIR``, a schema file since changed)."""
    _last.clear()


def processed(items: list[Input], config: RunConfig) -> Iterator[FileResult]:
    """Results in input order, each as soon as it is final. In place, rewrites are staged
    and committed together, ``BATCH`` at a time (one wait for the disk, see
    ``AtomicBatch``); a file's result says "changed" only once its rename is done."""
    if config.output is not Output.IN_PLACE:
        yield from _grouped(items, config)
        return
    for k in range(0, len(items), BATCH):
        part = items[k : k + BATCH]
        with AtomicBatch(start_writeback=len(items) > 1) as batch:
            done = list(_grouped(part, config, batch))
            failed = batch.commit()
        for item, r in zip(part, done, strict=True):
            if item.path in failed:
                r = rejected(item, failed[item.path], r.validated_with)
            yield r


GROUP = 32  # files transformed before their outputs are validated, one after the other
GROUP_BYTES = 1 << 20  # ... or fewer: no more files once their inputs reach this size


def _grouped(
    items: list[Input], config: RunConfig, batch: AtomicBatch | None = None
) -> Iterator[FileResult]:
    """Each file's result, in order: ``GROUP`` files are transformed, then their outputs
    validated and finished in turn. Validating one output after another keeps libxml2's
    compiled schema in the CPU's caches, and the Python code between, which they would
    otherwise evict: 10 % less time for a folder. A group takes no more files once the
    inputs it holds reach ``GROUP_BYTES`` (each is held parsed, with its output), so a
    folder of large files is done a file or two at a time. (Results come in bursts of a
    group; a Ctrl-C drops the group in hand, whose files are not written yet.)"""
    w = _worker(config)
    held: list[_Transformed | FileResult] = []
    size = 0
    for item in items:
        t = _transform(item, config, w)
        held.append(t)
        size += len(t.got.data) if isinstance(t, _Transformed) else 0
        if len(held) >= GROUP or size >= GROUP_BYTES:
            for t in held:
                yield _finish(t, config, w, batch)
            held, size = [], 0
    for t in held:
        yield _finish(t, config, w, batch)


class _Transformed(NamedTuple):
    """An input read and transformed, its output not yet validated."""

    item: Input
    got: Read
    outcome: Outcome


def process_one(
    item: Input,
    config: RunConfig,
    batch: AtomicBatch | None = None,
) -> FileResult:
    """Read, transform, check and write one file (staged in ``batch``, or copied to the
    output folder). (libvirt domains are :func:`xmlnest.api.convert_domains`'s.)"""
    w = _worker(config)
    return _finish(_transform(item, config, w), config, w, batch)


def _transform(item: Input, config: RunConfig, w: _Worker) -> _Transformed | FileResult:
    """Read and transform one input: what :func:`_finish` validates, or its result
    already (refused or skipped). A skipped input on stdout is handed on as it came, so
    that a pipe into ``virsh define`` gets the document back, not an empty one."""
    got: Read | None = None
    try:
        writing = config.output in (Output.IN_PLACE, Output.OUTPUT_DIR)
        got = read(item, config.max_bytes, sys.stdin.buffer, writing=writing)
        outcome = w.converter.transform(got.data)
    except NotADomain as exc:
        if item.walked or config.skip_non_domain:
            return FileResult(
                item.name, Status.SKIPPED, not_a_domain=True, output=_passed_on(got, config)
            )
        return rejected(item, exc)
    except RuleError as exc:
        if config.skip_unsupported and exc.rule in CANNOT_NEST:
            return unsupported(item, exc, _passed_on(got, config))
        return rejected(item, exc)
    except XmlnestError as exc:
        return rejected(item, exc)
    return _Transformed(item, got, outcome)


def _passed_on(got: Read | None, config: RunConfig) -> bytes:
    """A skipped input's bytes for stdout (the pipe's one document), else nothing."""
    return got.data if got is not None and config.output is Output.STDOUT else b""


def _finish(
    t: _Transformed | FileResult,
    config: RunConfig,
    w: _Worker,
    batch: AtomicBatch | None = None,
) -> FileResult:
    """Validate a transformed input's output, then report and write it."""
    if isinstance(t, FileResult):
        return t
    item, got = t.item, t.got
    counted = w.validator
    if counted is not None:
        counted.used = False
    try:
        outcome = w.converter.validated(t.outcome)
    except XmlnestError as exc:
        return rejected(item, exc)
    used = counted.name if counted is not None and counted.used else None
    findings = tuple(f for f in outcome.findings if f.rule not in config.ignore)
    warnings = [f for f in findings if f.level is Level.WARNING]
    if config.strict and warnings:
        lines = tuple(
            XmlnestError(f.message, hint=f.hint, line=f.line, rule=f.rule).format(item.name)
            + " (--strict)"
            for f in warnings
        )
        errors = tuple(f._replace(level=Level.ERROR) for f in warnings)
        return FileResult(item.name, Status.REJECTED, lines, errors=errors, validated_with=used)
    text = ""
    if outcome.changed and config.diff == "unified":
        text = diff.unified(item.name, outcome.source, outcome.output)
    elif outcome.changed and config.diff == "json":
        from xmlnest.cli.structured import json_line

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
        if config.output_dir is not None and item.path is not None:
            from pathlib import Path

            write_new(Path(config.output_dir) / mirror(item), outcome.output)
    except WriteError as exc:
        return rejected(item, exc, used)
    return FileResult(
        item.name,
        Status.CHANGED if outcome.changed else Status.UNCHANGED,
        findings=findings,
        output=outcome.output if config.output is Output.STDOUT else b"",
        diff=text,
        validated_with=used,
        folder=folder,
        notes=notes,
    )
