"""Counting a run's results into its summary line and its one exit code (black's report.py).

The exit codes themselves are ``xmlnest.errors.ExitCode``; ``--help`` and the README's table
are made from it here. Nothing here writes: the output sink does.
"""

from __future__ import annotations

from xmlnest.errors import ExitCode
from xmlnest.model import Status


def help_epilog() -> str:
    """The exit codes as ``--help`` lists them (click keeps ``\\b`` paragraphs as they are)."""
    import textwrap

    lines = ["\b", "Exit codes:"]
    for code in ExitCode:
        head = f"  {code.value}  "
        text = code.meaning.replace("`", "")
        lines += textwrap.wrap(text, 88, initial_indent=head, subsequent_indent=" " * len(head))
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The exit codes as the README's table (a test holds the README to it)."""
    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| {code.value} | {code.meaning} |" for code in ExitCode]
    return "\n".join(rows) + "\n"


class Report:
    """Counts per outcome; the exit code and the summary line they add up to."""

    def __init__(self, *, writes: bool) -> None:
        self.writes = writes  # False for --check and --diff: the summary says "would change"
        self.changed = self.unchanged = self.skipped = self.rejected = self.would_change = 0

    def add(self, status: Status, check: bool) -> None:
        """Account for one input: changed, unchanged, skipped or rejected."""
        if status == Status.REJECTED:
            self.rejected += 1
        elif status == Status.SKIPPED:
            self.skipped += 1
        elif status == Status.UNCHANGED:
            self.unchanged += 1
        elif check:
            self.would_change += 1
        else:
            self.changed += 1

    @property
    def inputs(self) -> int:
        return self.changed + self.unchanged + self.skipped + self.rejected + self.would_change

    def summary(self, seconds: float) -> str:
        if not self.inputs:
            return f"xmlnest: 0 files in {seconds:.2f} s"
        changed = self.would_change or self.changed
        verb = "changed" if self.writes else "would change"
        return (
            f"xmlnest: {changed} {verb}, {self.unchanged} already nested, "
            f"{self.skipped} skipped, {self.rejected} rejected in {seconds:.2f} s"
        )

    @property
    def exit_code(self) -> ExitCode:
        if self.rejected:
            return ExitCode.REJECTED
        if self.would_change:
            return ExitCode.CHANGES
        return ExitCode.OK
