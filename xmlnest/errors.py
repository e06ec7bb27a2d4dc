"""Exception types carrying a one-line ``path:line: problem; hint`` message, and the exit codes.

``ExitCode`` is the only list of exit codes; only the CLI maps errors to them and exits;
everything else just raises.
"""

from __future__ import annotations

from enum import IntEnum


class XmlnestError(Exception):
    """An input xmlnest refuses, with where and why.

    ``path`` is filled in by the caller that knows it (the core works on bytes);
    ``line`` is 1-based or ``None`` when no line applies.
    """

    def __init__(
        self,
        problem: str,
        *,
        hint: str = "",
        line: int | None = None,
        rule: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint
        self.line = line
        self.rule = rule
        self.path = path

    def format(self, path: str | None = None) -> str:
        """Render as one line: ``PATH[:LINE]: [RULE ]problem; hint``."""
        where = path or self.path or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        text = f"{where}: "
        if self.rule:
            text += f"{self.rule} "
        text += self.problem
        if self.hint:
            text += f"; {self.hint}"
        return " ".join(text.split())  # one line, whatever the parts held


class InputError(XmlnestError):
    """The bytes cannot be used: unreadable, malformed, unsafe, too large, not a domain."""


class RuleError(XmlnestError):
    """The domain is well formed but a nesting rule refuses it (arch, policy, restriction)."""


class ValidationError(XmlnestError):
    """The result would not validate against the schema although the input did."""


class WriteError(XmlnestError):
    """The result could not be written; the original file is untouched."""


class UsageError(ValueError):
    """The command line (or an API call's arguments) is wrong: exit code 2 in the CLI."""


class NotADomain(InputError):
    """Well-formed XML whose root is not ``<domain>`` (skipped when found by a folder walk)."""


class NotAFile(NotADomain):
    """A FIFO, socket or device met while walking a folder: skipped and counted like a
    non-domain file, and never opened (opening a FIFO waits for a writer)."""


class NothingFound(InputError):
    """A folder argument in which the walk found no input (no ``*.xml``, or none that
    the ``--include``/``--exclude`` globs let through)."""


class LibvirtError(XmlnestError):
    """libvirt refused or failed a request about a domain (or the connection itself).

    Its one line names the URI (as the path) and the domain, and quotes libvirt's own
    message: ``URI: domain 'NAME': what failed: libvirt: "its message"; hint``.
    """

    def __init__(
        self,
        uri: str,
        domain: str | None,
        what: str,
        *,
        libvirt_message: str | None = None,
        hint: str = "",
    ) -> None:
        problem = f"domain '{domain}': {what}" if domain else what
        if libvirt_message:
            problem += f': libvirt: "{" ".join(libvirt_message.split())}"'
        super().__init__(problem, hint=hint, path=uri)
        self.uri = uri
        self.domain = domain
        self.libvirt_message = libvirt_message

    def format(self, path: str | None = None) -> str:
        """Always ``URI: …``: a caller's input name (the domain's) is already in the text."""
        return super().format(self.uri)


class ExitCode(IntEnum):
    OK = 0
    CHANGES = 1
    USAGE = 2
    REJECTED = 3
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "success, including files rewritten",
    ExitCode.CHANGES: "`--check`: at least one input would change",
    ExitCode.USAGE: "usage error",
    ExitCode.REJECTED: "at least one input was rejected: unreadable, malformed, not a "
    "`<domain>`, arch mismatch, refused by a rule, or output that would be schema-invalid; "
    "or the folders and globs given found no domain XML at all",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C): files already rewritten are complete, none "
    "is half-written",
}
