"""Talking to libvirt: one small interface, answered by libvirt-python or by ``virsh``.

Everything xmlnest asks a libvirt connection goes through :class:`Connection`: which
persistent domains there are, one domain's facts (:class:`DomainInfo`), its stored and
live XML, defining a new stored definition (with libvirt's validation), and two questions
about the host behind the URI (its x86 vendor, and the features of its host-model CPU).
Both backends give the same answers, byte for byte where XML is concerned, and the same
:class:`~xmlnest.errors.LibvirtError` (never a traceback) when libvirt says no.

- :class:`LibvirtPython` imports ``libvirt`` lazily, inside :meth:`LibvirtPython.open`:
  importing this module costs nothing, and the file and pipe paths never load libvirt.
- :class:`Virsh` keeps ONE ``virsh`` process (so one libvirt connection) for the whole
  run, driven over stdin: the test driver's state lasts one connection. After each
  command it sends ``echo --err MARK`` and ``echo MARK`` with a fresh marker, so it knows
  where each answer ends on stdout and on stderr, which stay separate.

:func:`connect` picks the backend: the ``backend`` argument, else ``$XMLNEST_LIBVIRT_BACKEND``
(``python``, ``virsh`` or ``auto``), else libvirt-python when it can be imported, else virsh.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import secrets
import selectors
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from lxml import etree

from xmlnest.errors import LibvirtError
from xmlnest.transforms.common import Vendor

BACKEND_ENV = "XMLNEST_LIBVIRT_BACKEND"
BACKENDS = ("python", "virsh")

# virsh's words for virDomainState (virsh-domain-monitor.c), in the enum's order.
STATE_WORDS = (
    "no state",
    "running",
    "idle",
    "paused",
    "in shutdown",
    "shut off",
    "crashed",
    "pmsuspended",
)
_VENDORS: dict[str, Vendor] = {"intel": "intel", "amd": "amd", "hygon": "amd"}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_LIVE = re.compile(rb"^\s*<domain\b[^>]*\sid=['\"]")  # only a running domain's XML has an id
# "Cannot answer": the driver lacks the call (the test driver), or the host has no
# emulator or virttype for that arch. Codes for libvirt-python, message starts for virsh.
_NOT_SUPPORTED = (
    "this function is not supported by the connection driver",
    "Operation not supported",
    "unsupported configuration:",
    "invalid argument:",
)
_NO_SUCH_HINT = "check the name with virsh -c URI list --all"

# libvirt's own flag values (libvirt-common.h / libvirt-domain.h): stable ABI.
XML_SECURE = 1
XML_INACTIVE = 2
DEFINE_VALIDATE = 1
BASELINE_EXPAND_FEATURES = 1
ERR_INVALID_ARG = 8
ERR_NO_SUPPORT = 3
ERR_CONFIG_UNSUPPORTED = 67
ERR_NO_DOMAIN = 42
ERR_OPERATION_UNSUPPORTED = 84
_CANNOT_ANSWER = (
    ERR_NO_SUPPORT,
    ERR_OPERATION_UNSUPPORTED,
    ERR_CONFIG_UNSUPPORTED,
    ERR_INVALID_ARG,
)


@dataclass(frozen=True)
class DomainInfo:
    """One domain as libvirt sees it now; ``state`` is virsh's word (``running``, ``shut off``…)."""

    name: str
    uuid: str
    persistent: bool
    active: bool
    state: str


class Feature(NamedTuple):
    """A CPU feature and its policy (``require``, ``disable``…), as libvirt lists it."""

    name: str
    policy: str


class Connection(Protocol):
    """The questions xmlnest asks libvirt. Every failure is a :class:`LibvirtError`."""

    backend: str  # "python" or "virsh"

    @property
    def uri(self) -> str:
        """The URI libvirt actually connected to (the default resolved)."""
        ...

    def persistent_names(self) -> list[str]:
        """Every persistent domain's name, sorted."""
        ...

    def lookup(self, name_or_uuid: str) -> DomainInfo:
        """The domain with this name or UUID; unknown ones raise."""
        ...

    def stored_xml(self, dom: DomainInfo) -> bytes:
        """The stored definition (``--inactive --security-info``); a transient domain raises."""
        ...

    def live_xml(self, dom: DomainInfo) -> bytes | None:
        """The running definition, or ``None`` when the domain is not running."""
        ...

    def define(self, dom: DomainInfo, xml: bytes) -> None:
        """Define ``xml`` as ``dom``'s new stored definition, validated by libvirt.

        Refused (nothing defined) when the domain is gone or transient, or when the XML
        names another domain."""
        ...

    def host_vendor(self) -> Vendor | None:
        """The x86 vendor of the host behind the URI (its capabilities), if Intel or AMD."""
        ...

    def cpu_features(
        self, cpu_xml: str, arch: str, virttype: str = "kvm"
    ) -> frozenset[Feature] | None:
        """A ``<cpu>``'s features with its model's expanded, as the hypervisor resolves them;
        ``None`` where the driver cannot answer."""
        ...

    def host_model_features(self, arch: str, virttype: str = "kvm") -> frozenset[Feature] | None:
        """The host-model CPU's features (model expanded) from domain capabilities; ``None``
        where the driver cannot answer (the test driver; an arch or virttype the host has
        no emulator for)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Connection: ...

    def __exit__(self, *exc: object) -> None: ...


# --- pure helpers both backends share ----------------------------------------------------


def _parse(xml: bytes | str, uri: str, what: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.fromstring(xml.encode() if isinstance(xml, str) else xml, parser)
    except etree.XMLSyntaxError as exc:
        raise LibvirtError(uri, None, f"libvirt's {what} is not well-formed XML: {exc}") from None


def vendor_from_capabilities(caps: bytes | str, uri: str = "") -> Vendor | None:
    """``<capabilities><host><cpu><vendor>`` as our vendor (``Intel``/``AMD``/``Hygon``)."""
    vendor = _parse(caps, uri, "capabilities").findtext("host/cpu/vendor")
    return _VENDORS.get((vendor or "").strip().lower())


def host_model_cpu(domcaps: bytes | str, uri: str = "") -> str | None:
    """The host-model CPU of domain capabilities as a ``<cpu>`` to expand; ``None`` when
    host-model is not supported there."""
    root = _parse(domcaps, uri, "domain capabilities")
    mode = root.find("cpu/mode[@name='host-model']")
    if mode is None or mode.get("supported") != "yes" or mode.find("model") is None:
        return None
    cpu = etree.Element("cpu", mode="custom", match="exact")
    for child in mode:
        if isinstance(child.tag, str):
            cpu.append(etree.fromstring(etree.tostring(child)))
    return etree.tostring(cpu, encoding="unicode")


def features_of(cpu_xml: bytes | str, uri: str = "") -> frozenset[Feature]:
    """The ``<feature>``s of a ``<cpu>`` (a missing policy means ``require``)."""
    cpu = _parse(cpu_xml, uri, "CPU")
    return frozenset(
        Feature(f.get("name", ""), f.get("policy", "require")) for f in cpu.iterfind("feature")
    )


def is_live(xml: bytes) -> bool:
    """True for a running domain's XML: only that carries ``<domain id=...>``."""
    return _LIVE.match(xml) is not None


def _check_same_domain(uri: str, dom: DomainInfo, xml: bytes) -> None:
    root = _parse(xml, uri, "new definition")
    uuid = (root.findtext("uuid") or "").strip().lower().replace("-", "")
    name = (root.findtext("name") or "").strip()
    if uuid != dom.uuid.lower().replace("-", "") or name != dom.name:
        raise LibvirtError(
            uri,
            dom.name,
            f"the new definition names another domain ({name or 'no name'}, "
            f"{uuid or 'no uuid'}); nothing defined",
            hint="keep the <name> and <uuid> of the stored definition",
        )


def _transient(uri: str, dom: DomainInfo) -> LibvirtError:
    return LibvirtError(
        uri,
        dom.name,
        "is transient: it has no stored definition, and defining one would make it "
        "persistent; nothing defined",
        hint="define it yourself first if it is meant to persist",
    )


def _default_uri_name(uri: str | None) -> str:
    return uri or os.environ.get("LIBVIRT_DEFAULT_URI") or "libvirt's default URI"


# --- libvirt-python ------------------------------------------------------------------------


def libvirt_python_available() -> bool:
    """Whether ``import libvirt`` would work (without importing it)."""
    return importlib.util.find_spec("libvirt") is not None


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt's default error handler prints every error on stderr; we raise instead."""


class LibvirtPython:
    """The libvirt-python backend (``pip install 'xmlnest[libvirt]'``)."""

    backend = "python"

    def __init__(self, lv: Any, conn: Any) -> None:
        self._lv = lv
        self._conn = conn
        self._uri: str = conn.getURI()
        self._vendor: tuple[Vendor | None] | None = None
        self._host_model: dict[tuple[str, str], frozenset[Feature] | None] = {}

    @classmethod
    def open(cls, uri: str | None = None) -> LibvirtPython:
        where = _default_uri_name(uri)
        try:
            lv = importlib.import_module("libvirt")
        except ImportError as exc:
            raise LibvirtError(
                where,
                None,
                f"libvirt-python cannot be imported ({exc})",
                hint="pip install 'xmlnest[libvirt]', or set XMLNEST_LIBVIRT_BACKEND=virsh",
            ) from None
        lv.registerErrorHandler(_quiet, None)
        try:
            conn = lv.open(uri)
        except lv.libvirtError as exc:
            raise _connect_error(where, exc.get_error_message()) from None
        return cls(lv, conn)

    @property
    def uri(self) -> str:
        return self._uri

    def __enter__(self) -> LibvirtPython:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(self._lv.libvirtError):
                self._conn.close()
            self._conn = None

    def _call(self, domain: str | None, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except self._lv.libvirtError as exc:
            if exc.get_error_code() == ERR_NO_DOMAIN and domain:
                raise LibvirtError(
                    self._uri, domain, "no such domain", hint=_NO_SUCH_HINT
                ) from None
            raise LibvirtError(
                self._uri, domain, what, libvirt_message=exc.get_error_message()
            ) from None

    def persistent_names(self) -> list[str]:
        flag = self._lv.VIR_CONNECT_LIST_DOMAINS_PERSISTENT
        domains = self._call(None, "cannot list domains", lambda: self._conn.listAllDomains(flag))
        return sorted(d.name() for d in domains)

    def _handle(self, name_or_uuid: str) -> Any:
        if _UUID.match(name_or_uuid):
            try:
                return self._conn.lookupByUUIDString(name_or_uuid)
            except self._lv.libvirtError as exc:
                if exc.get_error_code() != ERR_NO_DOMAIN:
                    raise
        return self._conn.lookupByName(name_or_uuid)

    def lookup(self, name_or_uuid: str) -> DomainInfo:
        def info() -> DomainInfo:
            d = self._handle(name_or_uuid)
            state = d.state()[0]
            return DomainInfo(
                name=d.name(),
                uuid=d.UUIDString(),
                persistent=bool(d.isPersistent()),
                active=bool(d.isActive()),
                state=STATE_WORDS[state] if 0 <= state < len(STATE_WORDS) else "no state",
            )

        result: DomainInfo = self._call(name_or_uuid, "cannot look it up", info)
        return result

    def stored_xml(self, dom: DomainInfo) -> bytes:
        if not dom.persistent:
            raise _transient(self._uri, dom)
        flags = XML_INACTIVE | XML_SECURE
        xml = self._call(
            dom.name,
            "cannot read its stored definition",
            lambda: self._conn.lookupByUUIDString(dom.uuid).XMLDesc(flags),
        )
        return str(xml).encode("utf-8")

    def live_xml(self, dom: DomainInfo) -> bytes | None:
        xml = self._call(
            dom.name,
            "cannot read its running definition",
            lambda: self._conn.lookupByUUIDString(dom.uuid).XMLDesc(0),
        )
        data = str(xml).encode("utf-8")
        return data if is_live(data) else None

    def define(self, dom: DomainInfo, xml: bytes) -> None:
        _check_same_domain(self._uri, dom, xml)
        now = self.lookup(dom.uuid)
        if not now.persistent:
            raise _transient(self._uri, dom)
        text = xml.decode("utf-8")
        self._call(
            dom.name,
            "libvirt refused the new definition; nothing defined",
            lambda: self._conn.defineXMLFlags(text, DEFINE_VALIDATE),
        )

    def host_vendor(self) -> Vendor | None:
        if self._vendor is None:
            caps = self._call(
                None, "cannot read the host's capabilities", self._conn.getCapabilities
            )
            self._vendor = (vendor_from_capabilities(caps, self._uri),)
        return self._vendor[0]

    def _unsupported(self, exc: Any) -> bool:
        return exc.get_error_code() in _CANNOT_ANSWER

    def cpu_features(
        self, cpu_xml: str, arch: str, virttype: str = "kvm"
    ) -> frozenset[Feature] | None:
        try:
            expanded = self._conn.baselineHypervisorCPU(
                None, arch, None, virttype, [cpu_xml], BASELINE_EXPAND_FEATURES
            )
        except self._lv.libvirtError as exc:
            if self._unsupported(exc):
                return None
            raise LibvirtError(
                self._uri,
                None,
                "cannot expand a CPU definition",
                libvirt_message=exc.get_error_message(),
            ) from None
        return features_of(expanded, self._uri)

    def host_model_features(self, arch: str, virttype: str = "kvm") -> frozenset[Feature] | None:
        key = (arch, virttype)
        if key not in self._host_model:
            try:
                domcaps = self._conn.getDomainCapabilities(None, arch, None, virttype, 0)
            except self._lv.libvirtError as exc:
                if self._unsupported(exc):
                    self._host_model[key] = None
                    return None
                raise LibvirtError(
                    self._uri,
                    None,
                    f"cannot read the domain capabilities for {virttype} on {arch}",
                    libvirt_message=exc.get_error_message(),
                ) from None
            cpu = host_model_cpu(domcaps, self._uri)
            self._host_model[key] = None if cpu is None else self.cpu_features(cpu, arch, virttype)
        return self._host_model[key]


def _connect_error(where: str, message: str | None) -> LibvirtError:
    return LibvirtError(
        where,
        None,
        "cannot connect",
        libvirt_message=message,
        hint="check the URI, that libvirtd runs there, and your rights on it",
    )


# --- virsh -----------------------------------------------------------------------------------


class _Failed(Exception):
    """A virsh command wrote ``error:`` lines; ``message`` is libvirt's part of them."""

    def __init__(self, summary: str, message: str) -> None:
        super().__init__(message)
        self.summary = summary
        self.message = message


class _Garbled(Exception):
    """virsh answered in a shape :class:`_Shell` does not know: refused, not guessed."""


def _quote(arg: str) -> str:
    """One argument for virsh's own parser: single-quoted, a ``'`` written as ``'\\''``."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in arg):
        raise ValueError(arg)
    return "'" + arg.replace("'", "'\\''") + "'"


def _split_errors(err: str) -> tuple[str, str]:
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


class _Shell:
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
        """Run one command line; return its stdout; raise :class:`_Failed` on ``error:``."""
        mark = self._marker()
        p = self.prompt
        tail = f"{p}echo --err {mark}\n{p}echo {mark}\n{mark}{p}".encode()
        self._send(f"{command}\necho --err {mark}\necho {mark}\n")
        out, err = self._read_until(lambda o: o.endswith(tail), f"error: {mark}\n".encode())
        # readline's echo of the command line ends at the first newline (the line has none)
        start = out.find(b"\n") + 1
        if start == 0 or start > len(out) - len(tail):
            self._proc.kill()  # out of step with virsh: no later answer can be trusted
            raise _Garbled(f"{out[:200]!r}")
        body = out[start : len(out) - len(tail)]
        errors = err.decode("utf-8", "replace")[: -len(f"error: {mark}\n")]
        if "error: " in errors:
            raise _Failed(*_split_errors(errors))
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


def _cleanup(shell: _Shell, folder: str) -> None:
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


class Virsh:
    """The ``virsh`` backend: one long-lived ``virsh -c URI`` for the whole run."""

    backend = "virsh"

    def __init__(self, shell: _Shell, folder: str, uri: str) -> None:
        self._shell = shell
        self._folder = folder
        self._uri = uri
        self._vendor: tuple[Vendor | None] | None = None
        self._host_model: dict[tuple[str, str], frozenset[Feature] | None] = {}
        self._finalizer = weakref.finalize(self, _cleanup, shell, folder)

    @classmethod
    def open(
        cls, uri: str | None = None, *, virsh: str | None = None, timeout: float | None = 300
    ) -> Virsh:
        """Start ``virsh -q [-c URI]``; ``timeout``: seconds any one answer may take."""
        where = _default_uri_name(uri)
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
            shell = _Shell(argv, _virsh_env(folder), timeout)
        except EOFError as exc:  # virsh could not connect, and said why
            shutil.rmtree(folder, ignore_errors=True)
            raise _connect_error(where, _split_errors(str(exc))[1]) from None
        except (OSError, TimeoutError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise LibvirtError(where, None, f"cannot run {exe}: {exc}") from None
        self = cls(shell, folder, where)
        try:
            self._uri = self._run(None, "cannot ask virsh for its URI", "uri").decode().strip()
        except LibvirtError:
            self.close()
            raise
        return self

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def pid(self) -> int:
        return self._shell.pid

    def __enter__(self) -> Virsh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._finalizer()

    def _run(self, domain: str | None, what: str, *args: str) -> bytes:
        try:
            line = " ".join([args[0], *(_quote(a) for a in args[1:])])
        except ValueError:
            raise LibvirtError(
                self._uri,
                domain,
                "a control character in the name cannot be passed to virsh",
                hint="use the domain's UUID, or the libvirt-python backend",
            ) from None
        try:
            return self._shell.run(line)
        except EOFError as exc:
            raise LibvirtError(
                self._uri, domain, f"{what}: virsh exited", libvirt_message=str(exc) or None
            ) from None
        except TimeoutError as exc:
            raise LibvirtError(self._uri, domain, f"{what}: {exc}") from None
        except _Garbled as exc:
            raise LibvirtError(
                self._uri, domain, f"{what}: virsh's answer was not understood ({exc})"
            ) from None
        except _Failed as exc:
            if exc.summary.startswith("failed to get domain") and domain:
                raise LibvirtError(
                    self._uri, domain, "no such domain", hint=_NO_SUCH_HINT
                ) from None
            raise LibvirtError(self._uri, domain, what, libvirt_message=exc.message) from None

    def persistent_names(self) -> list[str]:
        out = self._run(None, "cannot list domains", "list", "--all", "--persistent", "--name")
        return sorted(n for n in out.decode("utf-8").split("\n") if n)

    def lookup(self, name_or_uuid: str) -> DomainInfo:
        out = self._run(name_or_uuid, "cannot look it up", "dominfo", name_or_uuid)
        # dominfo prints "%-15s %s": the value starts at column 16, spaces and all.
        fields = {ln[:16].strip(): ln[16:] for ln in out.decode("utf-8").split("\n") if ln}
        info = DomainInfo(
            name=fields.get("Name:", ""),
            uuid=fields.get("UUID:", "").strip(),
            persistent=fields.get("Persistent:", "").strip() == "yes",
            active=fields.get("Id:", "-").strip() != "-",
            state=fields.get("State:", "no state").strip(),
        )
        wanted = name_or_uuid.lower().replace("-", "")
        if name_or_uuid != info.name and wanted != info.uuid.lower().replace("-", ""):
            # virsh tries a numeric argument as a domain id first
            raise LibvirtError(
                self._uri,
                name_or_uuid,
                f"virsh resolved it as a domain id, to '{info.name}'",
                hint="name the domain by its UUID, or use the libvirt-python backend",
            )
        return info

    def stored_xml(self, dom: DomainInfo) -> bytes:
        if not dom.persistent:
            raise _transient(self._uri, dom)
        return self._run(
            dom.name,
            "cannot read its stored definition",
            "dumpxml",
            "--inactive",
            "--security-info",
            dom.uuid,
        )

    def live_xml(self, dom: DomainInfo) -> bytes | None:
        out = self._run(dom.name, "cannot read its running definition", "dumpxml", dom.uuid)
        return out if is_live(out) else None

    def _file(self, name: str, data: bytes) -> str:
        path = os.path.join(self._folder, name)
        with open(path, "wb") as fh:
            fh.write(data)
        return path

    def define(self, dom: DomainInfo, xml: bytes) -> None:
        _check_same_domain(self._uri, dom, xml)
        now = self.lookup(dom.uuid)
        if not now.persistent:
            raise _transient(self._uri, dom)
        path = self._file("define.xml", xml)
        try:
            self._run(
                dom.name,
                "libvirt refused the new definition; nothing defined",
                "define",
                "--validate",
                path,
            )
        finally:
            os.unlink(path)

    def host_vendor(self) -> Vendor | None:
        if self._vendor is None:
            caps = self._run(None, "cannot read the host's capabilities", "capabilities")
            self._vendor = (vendor_from_capabilities(caps, self._uri),)
        return self._vendor[0]

    def _answer(self, what: str, *args: str) -> bytes | None:
        """Run a host query; ``None`` when the driver does not support it."""
        try:
            return self._run(None, what, *args)
        except LibvirtError as exc:
            if (exc.libvirt_message or "").startswith(_NOT_SUPPORTED):
                return None
            raise

    def cpu_features(
        self, cpu_xml: str, arch: str, virttype: str = "kvm"
    ) -> frozenset[Feature] | None:
        path = self._file("cpu.xml", cpu_xml.encode("utf-8"))
        try:
            expanded = self._answer(
                "cannot expand a CPU definition",
                "hypervisor-cpu-baseline",
                path,
                "--features",
                "--virttype",
                virttype,
                "--arch",
                arch,
            )
        finally:
            os.unlink(path)
        return None if expanded is None else features_of(expanded, self._uri)

    def host_model_features(self, arch: str, virttype: str = "kvm") -> frozenset[Feature] | None:
        key = (arch, virttype)
        if key not in self._host_model:
            domcaps = self._answer(
                f"cannot read the domain capabilities for {virttype} on {arch}",
                "domcapabilities",
                "--virttype",
                virttype,
                "--arch",
                arch,
            )
            cpu = None if domcaps is None else host_model_cpu(domcaps, self._uri)
            self._host_model[key] = None if cpu is None else self.cpu_features(cpu, arch, virttype)
        return self._host_model[key]


# --- the guarded define (-i) -------------------------------------------------------------


class Defined(NamedTuple):
    """What ``-i`` left: the stored definition as libvirt now keeps it, and the domain."""

    stored: bytes
    domain: DomainInfo


def redefine(conn: Connection, dom: DomainInfo, seen: bytes, new: bytes) -> Defined:
    """Define ``new`` for ``dom`` unless its stored definition changed since it was read
    as ``seen`` (someone ran ``virsh edit`` meanwhile: nothing defined, raised); then read
    it back, for the caller to check that libvirt kept the edit."""
    if conn.stored_xml(dom) != seen:
        raise LibvirtError(
            conn.uri,
            dom.name,
            "its stored definition changed since xmlnest read it; nothing defined",
            hint="someone edited it meanwhile: run xmlnest again",
        )
    conn.define(dom, new)
    now = conn.lookup(dom.uuid)
    return Defined(conn.stored_xml(now), now)
