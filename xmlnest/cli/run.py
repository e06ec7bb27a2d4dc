"""One run over inputs: gather them from their source, stream each result to the output
sink and count it in the report, and end with the summary and the exit code."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from xmlnest.cli import diff, worker
from xmlnest.cli.config import Output, RunConfig
from xmlnest.cli.report import Report
from xmlnest.cli.sink import Sink
from xmlnest.cli.worker import FileResult, error_finding, processed
from xmlnest.engine.plan import Level
from xmlnest.errors import ExitCode, LibvirtError, NothingFound, XmlnestError
from xmlnest.files import (
    STDIN,
    Input,
    UnusedGlob,
    check_output_dir,
    expand,
    remove_stale_temp_files,
    sync_folders,
)
from xmlnest.files.inputs import folders_among
from xmlnest.model import Status

if TYPE_CHECKING:
    from xmlnest.libvirt.byname import DomainResult
    from xmlnest.libvirt.connection import Connection


class PipeClosed(Exception):
    """stdout's reader went away; carries the exit code of what was done until then."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _sink(config: RunConfig, out: BinaryIO) -> Sink:
    choice = config.validation
    return Sink(
        out,
        sys.stderr,
        quiet=config.quiet,
        verbose=config.verbose,
        as_json=config.as_json,
        check=config.check,
        writes=config.output.writes,
        notice=None if choice.routine and not config.verbose else choice.notice,
    )


def open_connection(config: RunConfig, refuse: Callable[[LibvirtError], None]) -> Connection | None:
    """The run's one libvirt connection (``--connect``); ``None`` once ``refuse`` has been
    told why it cannot be opened: the run then ends with ``ExitCode.REJECTED``."""
    from xmlnest.libvirt.connection import connect

    try:
        return connect(config.connect)
    except LibvirtError as exc:
        refuse(exc)
        return None


def run_domains(config: RunConfig, out: BinaryIO) -> int:
    """Convert, check or diff libvirt domains (``-i`` defines them back); the exit code.
    The work is :func:`xmlnest.api.convert_domains`'s, as for the API's callers."""
    from xmlnest.libvirt import byname

    sink = _sink(config, out)
    report = Report(writes=config.output.writes, disable=config.options.disable)
    started = time.monotonic()
    conn = open_connection(
        config, lambda exc: sink.rejected(exc.format(), exc.uri, error_finding(exc))
    )
    if conn is None:
        return ExitCode.REJECTED
    if not config.options.disable and not _host_kernel_allows(config, conn.uri, sink):
        conn.close()
        return ExitCode.REJECTED
    try:
        names = conn.persistent_names() if config.all_domains else list(config.domains)
        if not names and config.domains_from is not None:
            sink.note(
                f"{config.domains_from} names no domain (none kept by --where?); nothing to do"
            )
            return ExitCode.OK
        options = config.options
        done = byname.convert_domains(
            conn,
            names,
            options=options,
            strict=config.strict,
            ignore=config.ignore,
            define=config.output is Output.IN_PLACE,
            skip_unsupported=config.skip_unsupported,
            max_bytes=config.max_bytes,
            wording="cli",
            validation=config.validation,
            restarts=False,  # the CLI says "restart pending" only for what -i defined
        )
        try:
            for d in done:
                if d.error is not None and not d.found:  # unknown, transient: not read
                    sink.rejected(d.error.format(), d.error.path or "", d.errors[0])
                    report.add(Status.REJECTED, config.check)
                    continue
                r = domain_result(d, config)
                sink.result(r)
                report.add(r.status, config.check, host_setting=_host_setting(r))
        except BrokenPipeError:
            raise PipeClosed(report.exit_code) from None
    except LibvirtError as exc:  # the connection itself failed midway
        sink.rejected(exc.format(), exc.uri, error_finding(exc))
        report.add(Status.REJECTED, config.check)
    finally:
        conn.close()
    many = config.all_domains or config.domains_from is not None or len(config.domains) > 1
    if many and not config.quiet:
        sink.say(report.summary(time.monotonic() - started))
    return report.exit_code


def _host_kernel_allows(config: RunConfig, uri: str, sink: Sink) -> bool:
    """An enabling run over a host whose kernel is readable says XN223 once when it has a
    nesting-only escape (``--strict``: refuses, ``False``); a remote host gets XN224."""
    from xmlnest.errors import XmlnestError
    from xmlnest.hostcheck.enabling import enabling_finding

    warning = enabling_finding(uri, config.host_root)
    if warning is None or warning.rule in config.ignore:
        return True
    if warning.level is not Level.WARNING:  # XN224: a note, never a refusal
        sink.finding(uri, warning)
        return True
    if config.strict:
        exc = XmlnestError(warning.message, hint=warning.hint, rule=warning.rule)
        sink.rejected(exc.format(uri) + " (--strict)", uri, error_finding(exc))
        return False
    sink.finding(uri, warning)
    return True


def domain_result(d: DomainResult, config: RunConfig) -> FileResult:
    """One domain's API result as the sink's result: its lines, diff and notes."""
    stdout = config.output is Output.STDOUT
    if d.status == "rejected":
        if d.error is not None:
            lines: tuple[str, ...] = (d.error.format(d.name),)
        else:  # --strict turned its warnings into the refusal
            lines = tuple(
                XmlnestError(f.message, hint=f.hint, line=f.line, rule=f.rule).format(d.name)
                + " (--strict)"
                for f in d.errors
            )
        return FileResult(
            d.name, Status.REJECTED, lines, errors=d.errors, validated_with=d.validated_with
        )
    if d.status == "skipped":  # --skip-unsupported: a pipe gets the document back as is
        return FileResult(
            d.name, Status.SKIPPED, findings=d.findings, output=d.before if stdout else b""
        )
    text = ""
    if d.changed and d.outcome is not None and config.diff == "unified":
        text = diff.unified(d.name, d.outcome.source, d.after)
    elif d.changed and d.outcome is not None and config.diff == "json":
        from xmlnest.cli.structured import json_line

        text = json_line(d.name, d.outcome)
    defined = ""
    if d.defined:
        defined = f"{d.name}: defined" + (" (restart pending)" if d.restart_required else "")
    return FileResult(
        d.name,
        Status.CHANGED if d.changed else Status.UNCHANGED,
        findings=d.findings,
        output=d.after if stdout else b"",
        diff=text,
        validated_with=d.validated_with,
        notes=d.notes,
        defined=defined,
    )


def run_files(config: RunConfig, out: BinaryIO) -> int:
    """Convert, check or diff the inputs ``config`` names; return the exit code."""
    sink = _sink(config, out)
    report = Report(writes=config.output.writes, disable=config.options.disable)
    started = time.monotonic()
    items: list[Input] = []
    refused: list[XmlnestError] = []
    empty: list[NothingFound] = []
    unused: list[UnusedGlob] = []
    for item in expand(
        config.paths, include=config.include, exclude=config.exclude, folders=config.folders
    ):  # the folders as the configuration found them
        if isinstance(item, NothingFound):
            empty.append(item)
        elif isinstance(item, UnusedGlob):
            unused.append(item)
        elif isinstance(item, XmlnestError):
            refused.append(item)
        else:
            items.append(item)
    if config.output_dir is not None:
        from pathlib import Path

        check_output_dir(items, Path(config.output_dir))  # before anything is written
    for exc in refused:
        name = exc.path or ""
        sink.rejected(exc.format(name), name, error_finding(exc))
        report.add(Status.REJECTED, config.check)
    found_nothing = bool(empty) and not items and not refused
    for exc in empty:  # an error when it is all there was (exit 3), else a warning
        if found_nothing:
            sink.say(exc.format())
        elif not config.quiet:
            sink.say(f"{exc.path}: warning: {exc.problem}; {exc.hint}")
    for glob in unused if not config.quiet else ():
        sink.say(f"xmlnest: warning: {glob.problem}; {glob.hint}")
    if STDIN in config.paths and not config.quiet and sys.stdin.isatty():
        sink.say("xmlnest: reading domain XML from stdin (Ctrl-D to end; see --help)")
    in_place = config.output is Output.IN_PLACE
    if in_place:
        _clean_stale_temps(items, sink)
    named = folders_among(config.paths) if config.folders is None else config.folders
    many = len(items) > 1 or bool(named)
    workers = config.jobs or (min(os.cpu_count() or 1, 8) if len(items) >= 64 else 1)
    done = _results(items, config, workers)
    show_bar = many and not config.quiet and len(items) >= 50 and sys.stderr.isatty()
    folders: set[str] = set()  # folders with renames still to fsync
    drained = False
    if show_bar:
        sink.start_progress(len(items))
    walked = _Walked()
    try:
        for item, r in zip(items, done, strict=False):
            if r.folder:
                folders.add(r.folder)
            sink.result(r)
            sink.step()
            report.add(r.status, config.check, host_setting=_host_setting(r))
            walked.add(item, r)
        drained = True
    except BrokenPipeError:
        raise PipeClosed(report.exit_code) from None
    finally:
        sink.end_progress()
        # Cut short (Ctrl-C), a batch may have renamed files whose results never came
        # back: make every folder this run may have written in durable.
        sync_folders(folders if drained or not in_place else _folders(items))
    no_domain = walked.without_domains()
    if no_domain and not walked.domains and not refused:  # the run found no domain at all
        found_nothing = True
    for folder, count in no_domain:  # as an empty folder: an error when it is all there was
        problem = (
            f"no domain XML in this folder (nor below it): its {count} *.xml "
            f"{'file is' if count == 1 else 'files are'} not <domain>"
        )
        hint = "name the folder that holds the domain XML"
        if found_nothing:
            sink.say(f"{folder}: {problem}; {hint}")
        elif not config.quiet:
            sink.say(f"{folder}: warning: {problem}; {hint}")
    if many and not config.quiet:
        sink.say(report.summary(time.monotonic() - started))
    return ExitCode.REJECTED if found_nothing else report.exit_code


class _Walked:
    """Per folder argument, how many of its walked files were not domains, and how many
    inputs of the whole run were (or may have been: a refusal counts) domains."""

    def __init__(self) -> None:
        self.not_domains: dict[str, int] = {}
        self.with_domain: set[str] = set()
        self.domains = 0

    def add(self, item: Input, r: FileResult) -> None:
        if not r.not_a_domain:
            self.domains += 1
        if not item.walked or item.base is None:
            return
        if r.not_a_domain:
            self.not_domains[item.base] = self.not_domains.get(item.base, 0) + 1
        else:
            self.with_domain.add(item.base)

    def without_domains(self) -> list[tuple[str, int]]:
        """The folders whose walk found XML files but not one domain, with their count."""
        return [(f, n) for f, n in self.not_domains.items() if f not in self.with_domain]


def _clean_stale_temps(items: list[Input], sink: Sink) -> None:
    """Remove what killed runs left beside the files this run may rewrite, and say so."""
    from pathlib import Path

    for folder in sorted(Path(f) for f in _folders(items)):
        for stale in remove_stale_temp_files(folder):
            sink.note(f"removed {stale}, a temp file left by an interrupted run")


def _folders(items: list[Input]) -> set[str]:
    """The folders an in-place run over ``items`` writes in, resolved."""
    named = {os.path.dirname(i.path) for i in items if i.path is not None}
    named |= {  # a linked file is rewritten beside its target
        os.path.dirname(os.path.realpath(i.path))
        for i in items
        if i.path is not None and (os.path.islink(i.path) if i.link is None else i.link)
    }
    return {os.path.realpath(f or ".") for f in named}


def _results(items: list[Input], config: RunConfig, jobs: int) -> Iterator[FileResult]:
    """Results in input order, whatever the number of jobs."""
    worker.start_run()
    if jobs <= 1 or len(items) < 2:
        return processed(items, config)
    from xmlnest.cli import parallel

    return parallel.results(items, config, jobs)


def _host_setting(r: FileResult) -> bool:
    """An IBM Z input under ``--disable``: nesting is the host's kvm parameter (XN221)."""
    return any(f.rule == "XN221" for f in r.findings)
