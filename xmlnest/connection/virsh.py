"""The ``virsh`` backend: :class:`Connection` answered by one long-lived ``virsh -c URI``.

It keeps ONE ``virsh`` process (so one libvirt connection) for the whole run: the test
driver's state lasts one connection. The shell protocol is :mod:`xmlnest.connection.shell`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from typing import TypeVar

from xmlnest.connection.base import (
    NO_SUCH_HINT,
    DomainInfo,
    DomainRead,
    Feature,
    Reads,
    check_same_domain,
    connect_error,
    default_uri_name,
    features_of,
    host_model_cpu,
    is_live,
    transient_error,
    vendor_from_capabilities,
)
from xmlnest.connection.shell import Failed, Garbled, Shell, quote, split_errors
from xmlnest.errors import LibvirtError
from xmlnest.transforms.common import Vendor

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
_LOOKUP = "cannot look it up"
_STORED = "cannot read its stored definition"
_LIVE = "cannot read its running definition"


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


class Virsh:
    """The ``virsh`` backend: one long-lived ``virsh -c URI`` for the whole run."""

    backend = "virsh"

    def __init__(self, shell: Shell, folder: str, uri: str) -> None:
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

    def _line(self, domain: str | None, *args: str) -> str:
        try:
            return " ".join([args[0], *(quote(a) for a in args[1:])])
        except ValueError:
            raise LibvirtError(
                self._uri,
                domain,
                "a control character in the name cannot be passed to virsh",
                hint="use the domain's UUID, or the libvirt-python backend",
            ) from None

    def _run(self, domain: str | None, what: str, *args: str) -> bytes:
        (answer,) = self._run_many(domain, [(what, self._line(domain, *args))])
        return self._checked(domain, what, answer)

    def _run_many(self, domain: str | None, asked: list[tuple[str, str]]) -> list[bytes | Failed]:
        """Several command lines in one round trip; ``asked``: (what, line) pairs."""
        return self._guarded(domain, asked[0][0], self._shell.run_many, [ln for _, ln in asked])

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

    def _checked(self, domain: str | None, what: str, answer: bytes | Failed) -> bytes:
        if not isinstance(answer, Failed):
            return answer
        if answer.summary.startswith("failed to get domain") and domain:
            raise LibvirtError(self._uri, domain, "no such domain", hint=NO_SUCH_HINT)
        raise LibvirtError(self._uri, domain, what, libvirt_message=answer.message)

    def persistent_names(self) -> list[str]:
        out = self._run(None, "cannot list domains", "list", "--all", "--persistent", "--name")
        return sorted(n for n in out.decode("utf-8").split("\n") if n)

    def lookup(self, name_or_uuid: str) -> DomainInfo:
        out = self._run(name_or_uuid, _LOOKUP, "dominfo", name_or_uuid)
        return self._info(name_or_uuid, out)

    def _info(self, name_or_uuid: str, out: bytes) -> DomainInfo:
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

    def read_domains(self, names: Sequence[str]) -> Reads:
        """Facts, stored and running XML for each name, in order, a failure as its error,
        each domain in ONE round trip. The three
        commands of a domain go together, by the name given (virsh resolves it the same
        way each time), and the next domain's are sent before this one is handed out, so
        virsh works on it meanwhile. What the facts rule out (a transient domain's stored
        XML, a shut-off one's live XML) is dropped, and a name virsh took for a domain id
        is refused before any of it is used."""
        names = list(names)
        # Markers of the commands in flight for the next domain ([]: none).
        ahead: list[str] | LibvirtError = self._ask(names[0]) if names else []
        try:
            for k, name in enumerate(names):
                asked, ahead = ahead, self._ask(names[k + 1]) if k + 1 < len(names) else []
                yield asked if isinstance(asked, LibvirtError) else self._receive(name, asked)
        finally:
            if isinstance(ahead, list):  # closed early: nobody will read these
                self._shell.forget(ahead)

    def _ask(self, name: str) -> list[str] | LibvirtError:
        try:
            lines = [
                self._line(name, "dominfo", name),
                self._line(name, "dumpxml", "--inactive", "--security-info", name),
                self._line(name, "dumpxml", name),
            ]
            return self._guarded(name, _LOOKUP, self._shell.send, lines)
        except LibvirtError as exc:
            return exc

    def _receive(self, name: str, marks: list[str]) -> DomainRead | LibvirtError:
        try:
            info_out, stored, live = (
                self._guarded(name, _LOOKUP, self._shell.collect, m) for m in marks
            )
            dom = self._info(name, self._checked(name, _LOOKUP, info_out))
            if not dom.persistent:
                raise transient_error(self._uri, dom)
            running = None
            if dom.active:
                out = self._checked(dom.name, _LIVE, live)
                running = out if is_live(out) else None
            return DomainRead(dom, self._checked(dom.name, _STORED, stored), running)
        except LibvirtError as exc:
            return exc

    def stored_xml(self, dom: DomainInfo) -> bytes:
        if not dom.persistent:
            raise transient_error(self._uri, dom)
        return self._run(
            dom.name,
            _STORED,
            "dumpxml",
            "--inactive",
            "--security-info",
            dom.uuid,
        )

    def live_xml(self, dom: DomainInfo) -> bytes | None:
        out = self._run(dom.name, _LIVE, "dumpxml", dom.uuid)
        return out if is_live(out) else None

    def _file(self, name: str, data: bytes) -> str:
        path = os.path.join(self._folder, name)
        with open(path, "wb") as fh:
            fh.write(data)
        return path

    def define(self, dom: DomainInfo, xml: bytes) -> None:
        check_same_domain(self._uri, dom, xml)
        now = self.lookup(dom.uuid)
        if not now.persistent:
            raise transient_error(self._uri, dom)
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
