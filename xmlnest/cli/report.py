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

    def __init__(self, *, writes: bool, disable: bool = False) -> None:
        self.writes = writes  # False for --check and --diff: the summary says "would change"
        self.disable = disable  # --disable: an unchanged input is "already off"
        self.changed = self.unchanged = self.skipped = self.rejected = self.would_change = 0
        self.host_setting = 0  # --disable, unchanged: IBM Z, where the host decides (XN221)

    def add(self, status: Status, check: bool, *, host_setting: bool = False) -> None:
        """Account for one input: changed, unchanged, skipped or rejected.
        ``host_setting``: an unchanged input whose nesting no XML edit turns off."""
        if status == Status.REJECTED:
            self.rejected += 1
        elif status == Status.SKIPPED:
            self.skipped += 1
        elif status == Status.UNCHANGED and host_setting and self.disable:
            self.host_setting += 1
        elif status == Status.UNCHANGED:
            self.unchanged += 1
        elif check:
            self.would_change += 1
        else:
            self.changed += 1

    @property
    def inputs(self) -> int:
        return (
            self.changed
            + self.unchanged
            + self.host_setting
            + self.skipped
            + self.rejected
            + self.would_change
        )

    def summary(self, seconds: float) -> str:
        """``N changed, N already nested, …``; with ``--disable`` ``N already off`` (and
        ``N left to the host`` for IBM Z, where no XML turns nesting off)."""
        if not self.inputs:
            return f"xmlnest: 0 files in {seconds:.2f} s"
        changed = self.would_change or self.changed
        verb = "changed" if self.writes else "would change"
        already = f"{self.unchanged} already {'off' if self.disable else 'nested'}"
        if self.host_setting:
            already += f", {self.host_setting} left to the host"
        return (
            f"xmlnest: {changed} {verb}, {already}, "
            f"{self.skipped} skipped, {self.rejected} rejected in {seconds:.2f} s"
        )

    @property
    def exit_code(self) -> ExitCode:
        if self.rejected:
            return ExitCode.REJECTED
        if self.would_change:
            return ExitCode.CHANGES
        return ExitCode.OK
