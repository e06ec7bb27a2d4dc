"""One interactive ``virsh`` process driven over stdin: a command in, its stdout and stderr out."""

from __future__ import annotations

import collections
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

    Commands may be sent ahead (:meth:`send`): virsh reads and answers them in order, and
    the unique markers say where each answer ends however the reads split them.
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
        self._out_buf = bytearray()  # read from virsh, not yet part of an answer handed out
        self._err_buf = bytearray()
        self._pending: collections.deque[str] = collections.deque()  # sent, not yet read
        self._ready: dict[str, bytes | Failed] = {}  # read, not yet collected
        self._dropped: set[str] = set()  # sent, to be read and thrown away
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
        self, out_end: Callable[[bytearray], int], err_end: bytes
    ) -> tuple[bytes, bytes]:
        """One answer: stdout up to where ``out_end`` says it ends (an offset, -1: not yet)
        and stderr up to ``err_end``. What came after it (the next queued command's
        answer) stays buffered for the next call."""
        out, err = self._out_buf, self._err_buf
        out_at, err_at = out_end(out), err.find(err_end)
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while out_at < 0 or err_at < 0:
            left = None if deadline is None else deadline - time.monotonic()
            events = self._sel.select(left) if left is None or left > 0 else []
            if not events:
                self._proc.kill()  # a late answer would be taken for the next one's
                raise TimeoutError(f"virsh did not answer within {self._timeout:g} s")
            for key, _ in events:
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:  # virsh is gone: what it said last is on stderr
                    err += self._rest_of_stderr() if key.fd == self._out else b""
                    said = self._last_words(bytes(err))
                    err.clear()  # said once: the questions after it are not told it again
                    raise EOFError(said)
                if key.fd == self._out:
                    out += chunk
                    out_at = out_end(out)
                else:
                    err += chunk
                    err_at = err.find(err_end)
        err_at += len(err_end)
        answer = bytes(out[:out_at]), bytes(err[:err_at])
        del out[:out_at]
        del err[:err_at]
        return answer

    def _last_words(self, err: bytes) -> str:
        """What virsh said after the last answer it finished: the stderr after its last
        marker line. (Before it are the messages of answers in flight that nobody has
        collected yet: another domain's, which must not be taken for why virsh exited.)"""
        text = err.decode("utf-8", "replace")
        at = text.rfind(f"error: xmlnest-{self._token}-")
        if at >= 0:
            end = text.find("\n", at)
            text = text[end + 1 :] if end >= 0 else ""
        return text

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

        def done(out: bytearray) -> int:
            at = out.find(b"echo --err ")
            p = out[:at]
            whole = p + b"echo --err " + mark + b"\n" + p + b"echo " + mark + b"\n" + mark + p
            return len(out) if at >= 0 and out == whole else -1

        out, _ = self._read_until(done, b"error: " + mark + b"\n")
        return out[: out.find(b"echo --err ")].decode("utf-8")

    def run(self, command: str) -> bytes:
        """Run one command line; return its stdout; raise :class:`Failed` on ``error:``."""
        (answer,) = self.run_many([command])
        if isinstance(answer, Failed):
            raise answer
        return answer

    def run_many(self, commands: list[str]) -> list[bytes | Failed]:
        """Run command lines in one go: all are sent at once and their answers read in
        order, so a slow link (``qemu+ssh://``) costs one round trip, not one per command.
        Each answer is its stdout, or the :class:`Failed` it ended with."""
        return [self.collect(m) for m in self.send(commands)]

    def send(self, commands: list[str]) -> list[str]:
        """Send command lines now; returns their markers. Their answers are picked up
        later with :meth:`collect`, in any order, or dropped with :meth:`forget`."""
        marks = [self._marker() for _ in commands]
        self._send(
            "".join(
                f"{c}\necho --err {m}\necho {m}\n" for c, m in zip(commands, marks, strict=True)
            )
        )
        self._pending.extend(marks)
        return marks

    def collect(self, mark: str) -> bytes | Failed:
        """The answer to a command :meth:`send` sent. virsh answers in the order it was
        sent; earlier answers not yet asked for are kept until they are."""
        while mark not in self._ready:
            if not self._pending:
                raise KeyError(mark)  # never sent, or collected already: a bug here
            first = self._pending.popleft()
            answer = self._answer(first)
            if first in self._dropped:
                self._dropped.discard(first)
            else:
                self._ready[first] = answer
        return self._ready.pop(mark)

    def forget(self, marks: list[str]) -> None:
        """Answers no one will collect: dropped as they arrive (or now, if they have)."""
        for m in marks:
            if self._ready.pop(m, None) is None and m in self._pending:
                self._dropped.add(m)

    def _answer(self, mark: str) -> bytes | Failed:
        p = self.prompt
        tail = f"{p}echo --err {mark}\n{p}echo {mark}\n{mark}{p}".encode()

        def end(out: bytearray) -> int:
            at = out.find(tail)
            return at if at < 0 else at + len(tail)

        out, err = self._read_until(end, f"error: {mark}\n".encode())
        # readline's echo of the command line ends at the first newline (the line has none)
        start = out.find(b"\n") + 1
        if start == 0 or start > len(out) - len(tail):
            self._proc.kill()  # out of step with virsh: no later answer can be trusted
            raise Garbled(f"{out[:200]!r}")
        body = out[start : len(out) - len(tail)]
        errors = err.decode("utf-8", "replace")[: -len(f"error: {mark}\n")]
        if "error: " in errors:
            return Failed(*split_errors(errors))
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
