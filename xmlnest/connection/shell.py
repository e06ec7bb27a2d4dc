"""One interactive ``virsh`` process driven over stdin: a command in, its stdout and stderr out."""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import subprocess
import time
from collections.abc import Callable


class Failed(Exception):
    """A virsh command wrote ``error:`` lines; ``message`` is libvirt's part of them."""

    def __init__(self, summary: str, message: str) -> None:
        super().__init__(message)
        self.summary = summary
        self.message = message


class Garbled(Exception):
    """virsh answered in a shape :class:`Shell` does not know: refused, not guessed."""


def quote(arg: str) -> str:
    """One argument for virsh's own parser: single-quoted, a ``'`` written as ``'\\''``."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in arg):
        raise ValueError(arg)
    return "'" + arg.replace("'", "'\\''") + "'"


def split_errors(err: str) -> tuple[str, str]:
    """virsh's ``error: SUMMARY`` and then libvirt's ``error: MESSAGE`` (maybe several lines)."""
    lines = err.rstrip("\n").split("\n")
    starts = [i for i, ln in enumerate(lines) if ln.startswith("error: ")]
    if not starts:
        return "", err.strip()
    summary = lines[starts[0]][len("error: ") :]
    if len(starts) == 1:
        return summary, "\n".join([summary, *lines[starts[0] + 1 :]]).strip()
    rest = lines[starts[1] :]
    rest[0] = rest[0][len("error: ") :]
    return summary, "\n".join(rest).strip()


class Shell:
    """One interactive ``virsh`` process: a command in, its stdout and stderr out.

    With stdin not a terminal virsh still echoes the prompt and each line it reads on
    stdout (readline). An answer on stdout is therefore::

        COMMAND\\n OUTPUT PROMPT echo --err M\\n PROMPT echo M\\n M PROMPT

    and on stderr ``ERRORS error: M\\n``. The echo of COMMAND ends at its first newline
    (readline may redraw a long line on a dumb terminal); the rest is matched exactly.
    Anything else is refused rather than guessed, and the process is then ended, as it
    is when an answer takes longer than ``timeout`` seconds.
    """

    def __init__(self, argv: list[str], env: dict[str, str], timeout: float | None) -> None:
        self._timeout = timeout
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert self._proc.stdin and self._proc.stdout and self._proc.stderr
        self._stdin = self._proc.stdin
        self._out = self._proc.stdout.fileno()
        self._err = self._proc.stderr.fileno()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._out, selectors.EVENT_READ)
        self._sel.register(self._err, selectors.EVENT_READ)
        self._serial = 0
        self._token = secrets.token_hex(6)
        self.prompt = ""
        self.prompt = self._handshake()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _marker(self) -> str:
        self._serial += 1
        return f"xmlnest-{self._token}-{self._serial}"

    def _send(self, text: str) -> None:
        try:
            self._stdin.write(text.encode("utf-8"))
            self._stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # virsh is gone: the read below reports what it said

    def _read_until(
        self, out_end: Callable[[bytearray], bool], err_end: bytes
    ) -> tuple[bytes, bytes]:
        out = bytearray()
        err = bytearray()
        out_done = err_done = False
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while not (out_done and err_done):
            left = None if deadline is None else deadline - time.monotonic()
            events = self._sel.select(left) if left is None or left > 0 else []
            if not events:
                self._proc.kill()  # a late answer would be taken for the next one's
                raise TimeoutError(f"virsh did not answer within {self._timeout:g} s")
            for key, _ in events:
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:  # virsh is gone: what it said last is on stderr
                    err += self._rest_of_stderr() if key.fd == self._out else b""
                    raise EOFError(err.decode("utf-8", "replace"))
                if key.fd == self._out:
                    out += chunk
                    out_done = out_end(out)
                else:
                    err += chunk
                    err_done = err.endswith(err_end)
        return bytes(out), bytes(err)

    def _rest_of_stderr(self, wait: float = 5.0) -> bytes:
        rest = bytearray()
        deadline = time.monotonic() + wait
        with selectors.DefaultSelector() as sel:
            sel.register(self._err, selectors.EVENT_READ)
            while sel.select(max(0.0, deadline - time.monotonic())):
                chunk = os.read(self._err, 1 << 16)
                if not chunk:
                    break
                rest += chunk
        return bytes(rest)

    def _handshake(self) -> str:
        """Learn the prompt: the stream is ``P echo --err M\\n P echo M\\n M P``."""
        mark = self._marker().encode()
        self._send(f"echo --err {mark.decode()}\necho {mark.decode()}\n")

        def done(out: bytearray) -> bool:
            at = out.find(b"echo --err ")
            p = out[:at]
            return (
                at >= 0
                and out
                == p + b"echo --err " + mark + b"\n" + p + b"echo " + mark + b"\n" + mark + p
            )

        out, _ = self._read_until(done, b"error: " + mark + b"\n")
        return out[: out.find(b"echo --err ")].decode("utf-8")

    def run(self, command: str) -> bytes:
        """Run one command line; return its stdout; raise :class:`Failed` on ``error:``."""
        mark = self._marker()
        p = self.prompt
        tail = f"{p}echo --err {mark}\n{p}echo {mark}\n{mark}{p}".encode()
        self._send(f"{command}\necho --err {mark}\necho {mark}\n")
        out, err = self._read_until(lambda o: o.endswith(tail), f"error: {mark}\n".encode())
        # readline's echo of the command line ends at the first newline (the line has none)
        start = out.find(b"\n") + 1
        if start == 0 or start > len(out) - len(tail):
            self._proc.kill()  # out of step with virsh: no later answer can be trusted
            raise Garbled(f"{out[:200]!r}")
        body = out[start : len(out) - len(tail)]
        errors = err.decode("utf-8", "replace")[: -len(f"error: {mark}\n")]
        if "error: " in errors:
            raise Failed(*split_errors(errors))
        return body

    def close(self) -> None:
        if self._proc.poll() is None:
            self._send("quit\n")
            with contextlib.suppress(OSError):
                self._stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._sel.close()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream:
                stream.close()
