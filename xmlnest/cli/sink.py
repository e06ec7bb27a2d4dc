"""The output sink: the only writer of a run's stdout (XML, diffs, JSON Lines) and stderr.

Every stderr line is ``PATH[:LINE]: problem; hint`` or ``xmlnest: ...``; stdout carries
only XML, only a diff, or only JSON.
"""

from __future__ import annotations

import time
from typing import BinaryIO, TextIO

from xmlnest.cli.worker import FileResult
from xmlnest.engine.plan import Finding, Level
from xmlnest.model import Status


def json_record(name: str, status: str, findings: tuple[Finding, ...]) -> bytes:
    """One input's JSON Lines record for ``--json``: path, status and findings."""
    import json  # only --json pays for it

    record = {
        "path": name,
        "status": status,
        "findings": [
            {
                "rule": f.rule or None,
                "level": f.level.value,
                "line": f.line,
                "message": f.message,
                "hint": f.hint,
            }
            for f in findings
        ],
    }
    return (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


class Progress:
    """A progress bar on a terminal's last line: ``xmlnest [####----] 120/300``. Drawn
    with a carriage return and erased (``ESC [ K``) before any other line is written, so
    a message never shares the bar's line; drawn again at the next step."""

    INTERVAL = 0.1  # seconds between two redraws of a bar that is shown

    def __init__(self, err: TextIO, total: int) -> None:
        self.err = err
        self.total = max(total, 1)
        self.done = 0
        self.shown = False
        self.drawn_at = 0.0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if not self.shown or now - self.drawn_at >= self.INTERVAL or self.done >= self.total:
            self.draw(now)

    def draw(self, now: float) -> None:
        import shutil

        count = f" {self.done}/{self.total}"
        columns = shutil.get_terminal_size((80, 24)).columns
        width = max(10, min(40, columns - len("xmlnest []") - len(count) - 1))
        filled = width * min(self.done, self.total) // self.total
        self.err.write(f"\rxmlnest [{'#' * filled}{'-' * (width - filled)}]{count}\x1b[K")
        self.err.flush()
        self.shown, self.drawn_at = True, now

    def clear(self) -> None:
        """Erase the bar, leaving the cursor at the start of its (now empty) line."""
        if self.shown:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self.shown = False


class Sink:
    """Writes each result as it comes, in input order."""

    def __init__(
        self,
        out: BinaryIO,
        err: TextIO,
        *,
        quiet: bool = False,
        verbose: bool = False,
        as_json: bool = False,
        check: bool = False,
        writes: bool = True,
        notice: str | None = None,
    ) -> None:
        self.out = out
        self.err = err
        self.quiet = quiet
        self.verbose = verbose
        self.as_json = as_json
        self.check = check  # --check: name each input that would change
        self.writes = writes  # False: JSON says "would change" for a change
        self.notice = notice  # which schema validates: said once, when first used
        self.announced = False
        self.bar: Progress | None = None
        self.out_is_terminal = False  # stdout shares the bar's terminal: erase it first

    def start_progress(self, total: int) -> None:
        """Show a progress bar on stderr (a terminal) until :meth:`end_progress`."""
        self.bar = Progress(self.err, total)
        isatty = getattr(self.out, "isatty", None)
        self.out_is_terminal = bool(isatty and isatty())

    def step(self) -> None:
        """One more input done: the bar moves (and comes back after a message)."""
        if self.bar is not None:
            self.bar.step()

    def end_progress(self) -> None:
        if self.bar is not None:
            self.bar.clear()
            self.bar = None

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.clear()
        self.err.write(line + "\n")
        self.err.flush()

    def _emit(self, data: bytes) -> None:
        """Write ``data`` on stdout (erasing the bar first where both share a terminal)."""
        if self.bar is not None and self.out_is_terminal:
            self.bar.clear()
        self.out.write(data)

    def note(self, text: str) -> None:
        """An ``xmlnest:`` line worth saying unless ``-q``."""
        if not self.quiet:
            self.say(f"xmlnest: {text}")

    def finding(self, name: str, f: Finding) -> None:
        if self.quiet or (f.level is Level.INFO and not self.verbose):
            return
        where = f"{name}:{f.line}" if f.line else name
        text = f"{where}: {f.level.value}: {f.rule} {f.message}"
        if f.hint:
            text += f"; {f.hint}"
        self.say(" ".join(text.split()))

    def rejected(self, line: str, name: str, error: Finding) -> None:
        """An input refused before it could be read (a repeat, a missing file)."""
        self.say(line)
        if self.as_json:
            self._emit(json_record(name, Status.REJECTED, (error,)))
            self.out.flush()

    def result(self, r: FileResult) -> None:
        """Everything that belongs to one result: messages, then its payload."""
        if r.validated_with and self.notice and not self.announced and not self.quiet:
            self.say(f"xmlnest: {self.notice}")
        if r.validated_with:
            self.announced = True
        for line in r.messages:
            self.say(line)
        if r.defined and not self.quiet and not self.as_json:  # JSON says "changed"
            self.say(r.defined)
        if not self.quiet:
            for line in r.notes:
                self.say(line)
        for f in r.findings:
            self.finding(r.name, f)
        if self.as_json:
            status = "would change" if r.status == Status.CHANGED and not self.writes else r.status
            self._emit(json_record(r.name, status, r.errors + r.findings))
            self.out.flush()
        if r.status == Status.REJECTED or (r.status == Status.SKIPPED and not r.output):
            return
        if r.diff or r.output:
            if r.diff:
                self._emit(r.diff.encode("utf-8"))
            if r.output:
                self._emit(r.output)
            self.out.flush()
        if r.status == Status.CHANGED and self.check and not r.diff and not self.as_json:
            self.say(f"{r.name}: would change")  # the result itself: said even with -q
