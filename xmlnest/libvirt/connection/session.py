"""One ``virsh`` started for xmlnest: a command line in, its stdout or a LibvirtError out.

The process runs in its own temp folder and environment (untranslated messages, a known
terminal, its history kept out of the user's); how its stdin and stdout are framed is
:mod:`xmlnest.libvirt.connection.shell`'s. The questions asked over it are
:mod:`xmlnest.libvirt.connection.virsh`'s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from typing import TypeVar

from xmlnest.errors import LibvirtError
from xmlnest.libvirt.connection.base import NO_SUCH_HINT, connect_error, default_uri_name
from xmlnest.libvirt.connection.shell import Failed, Garbled, Shell, quote, split_errors

# "Cannot answer": the driver lacks the call (the test driver), or the host has no
# emulator or virttype for that arch: the starts of virsh's messages (python.py: codes).
_NOT_SUPPORTED = (
    "this function is not supported by the connection driver",
    "Operation not supported",
    "unsupported configuration:",
    "invalid argument:",
)

_A = TypeVar("_A")
_R = TypeVar("_R")


def _cleanup(shell: Shell, folder: str) -> None:
    shell.close()
    shutil.rmtree(folder, ignore_errors=True)


def _virsh_env(folder: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIRSH_DEFAULT_CONNECT_URI", None)  # libvirt's own default, as libvirt-python
    env.update(
        LC_ALL="C.UTF-8",  # untranslated messages; readline passes UTF-8 names through
        # A terminal readline knows: with "dumb" (or none) it echoes long lines in its
        # horizontal-scroll form; vt100 is in every terminfo (ncurses-base).
        TERM="vt100",
        INPUTRC="/dev/null",
        # virsh keeps an interactive history under $XDG_CACHE_HOME: ours must not
        # fill (or, with VIRSH_HISTSIZE=0, truncate) the user's.
        XDG_CACHE_HOME=folder,
    )
    return env


class Session:
    """One long-lived ``virsh``, its answers as bytes; every failure a :class:`LibvirtError`."""

    def __init__(self, shell: Shell, folder: str, uri: str) -> None:
        self.shell = shell
        self.folder = folder
        self._uri = uri
        self._finalizer = weakref.finalize(self, _cleanup, shell, folder)

    @classmethod
    def start(cls, uri: str | None, *, virsh: str | None, timeout: float | None) -> Session:
        """Start ``virsh -q [-c URI]`` and learn the URI it connected to; ``timeout``:
        seconds any one answer may take."""
        where = default_uri_name(uri)
        exe = virsh or shutil.which("virsh")
        if not exe:
            raise LibvirtError(
                where,
                None,
                "neither libvirt-python nor virsh is installed",
                hint="apt-get install libvirt-clients, or pip install 'xmlnest[libvirt]'",
            )
        folder = tempfile.mkdtemp(prefix="xmlnest-virsh-")
        argv = [exe, "-q"] + (["-c", uri] if uri else [])
        try:
            shell = Shell(argv, _virsh_env(folder), timeout)
        except EOFError as exc:  # virsh could not connect, and said why
            shutil.rmtree(folder, ignore_errors=True)
            raise connect_error(where, split_errors(str(exc))[1]) from None
        except (OSError, TimeoutError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise LibvirtError(where, None, f"cannot run {exe}: {exc}") from None
        self = cls(shell, folder, where)
        try:
            self._uri = self.run(None, "cannot ask virsh for its URI", "uri").decode().strip()
        except LibvirtError:
            self.close()
            raise
        return self

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def pid(self) -> int:
        return self.shell.pid

    def close(self) -> None:
        self._finalizer()

    def line(self, domain: str | None, *args: str) -> str:
        """A command line: ``args[0]`` the command, the rest quoted for virsh's parser."""
        try:
            return " ".join([args[0], *(quote(a) for a in args[1:])])
        except ValueError:
            raise LibvirtError(
                self._uri,
                domain,
                "a control character in the name cannot be passed to virsh",
                hint="use the domain's UUID, or the libvirt-python backend",
            ) from None

    def run(self, domain: str | None, what: str, *args: str) -> bytes:
        """Run one command; its stdout, or ``what`` as the error."""
        (answer,) = self._guarded(domain, what, self.shell.run_many, [self.line(domain, *args)])
        return self.checked(domain, what, answer)

    def query(self, what: str, *args: str) -> bytes | None:
        """Run a host query; ``None`` when the driver does not support it."""
        try:
            return self.run(None, what, *args)
        except LibvirtError as exc:
            if (exc.libvirt_message or "").startswith(_NOT_SUPPORTED):
                return None
            raise

    def send(self, domain: str | None, what: str, lines: list[str]) -> list[str]:
        """Send command lines ahead (:meth:`Shell.send`); their markers."""
        return self._guarded(domain, what, self.shell.send, lines)

    def collect(self, domain: str | None, what: str, mark: str) -> bytes | Failed:
        """The answer to a line :meth:`send` sent (:meth:`Shell.collect`)."""
        return self._guarded(domain, what, self.shell.collect, mark)

    def forget(self, marks: list[str]) -> None:
        """Answers to lines :meth:`send` sent that no one will collect."""
        self.shell.forget(marks)

    def _guarded(self, domain: str | None, what: str, call: Callable[[_A], _R], arg: _A) -> _R:
        """``call(arg)`` on the shell, its failures (virsh gone, silent, garbled) as errors."""
        try:
            return call(arg)
        except EOFError as exc:
            raise LibvirtError(
                self._uri, domain, f"{what}: virsh exited", libvirt_message=str(exc) or None
            ) from None
        except TimeoutError as exc:
            raise LibvirtError(self._uri, domain, f"{what}: {exc}") from None
        except Garbled as exc:
            raise LibvirtError(
                self._uri, domain, f"{what}: virsh's answer was not understood ({exc})"
            ) from None

    def checked(self, domain: str | None, what: str, answer: bytes | Failed) -> bytes:
        """The answer's stdout; a failed command as ``what``, or as no such domain."""
        if not isinstance(answer, Failed):
            return answer
        if answer.summary.startswith("failed to get domain") and domain:
            raise LibvirtError(self._uri, domain, "no such domain", hint=NO_SUCH_HINT)
        raise LibvirtError(self._uri, domain, what, libvirt_message=answer.message)

    def file(self, name: str, data: bytes) -> str:
        """Write ``data`` to ``name`` in the session's folder, for virsh to read; its path."""
        path = os.path.join(self.folder, name)
        with open(path, "wb") as fh:
            fh.write(data)
        return path
