"""The ``virsh`` backend: :class:`Connection` answered by one long-lived ``virsh -c URI``.

It keeps ONE ``virsh`` process (so one libvirt connection) for the whole run: the test
driver's state lasts one connection. Starting it and turning its answers into bytes or
errors is :mod:`xmlnest.libvirt.connection.session`'s; which commands answer which question, and
what their output means, is this module's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from xmlnest.errors import LibvirtError
from xmlnest.libvirt.connection.base import (
    DomainCapabilities,
    DomainInfo,
    DomainRead,
    Feature,
    Reads,
    check_same_domain,
    features_of,
    is_live,
    transient_error,
)
from xmlnest.libvirt.connection.session import Session
from xmlnest.model import Vendor

_K = TypeVar("_K")
_T = TypeVar("_T")
_LOOKUP = "cannot look it up"
_STORED = "cannot read its stored definition"
_LIVE = "cannot read its running definition"


class Virsh(DomainCapabilities):
    """The ``virsh`` backend: one long-lived ``virsh -c URI`` for the whole run."""

    backend = "virsh"

    def __init__(self, session: Session) -> None:
        self._session = session
        self._vendor: tuple[Vendor | None] | None = None
        self._host_model: dict[tuple[str, str], frozenset[Feature] | None] = {}
        self._domcaps: dict[tuple[str, str], bytes | None] = {}

    @classmethod
    def open(
        cls, uri: str | None = None, *, virsh: str | None = None, timeout: float | None = 300
    ) -> Virsh:
        """Start ``virsh -q [-c URI]``; ``timeout``: seconds any one answer may take."""
        return cls(Session.start(uri, virsh=virsh, timeout=timeout))

    @property
    def uri(self) -> str:
        return self._session.uri

    @property
    def pid(self) -> int:
        return self._session.pid

    def __enter__(self) -> Virsh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def persistent_names(self) -> list[str]:
        out = self._session.run(
            None, "cannot list domains", "list", "--all", "--persistent", "--name"
        )
        return sorted(n for n in out.decode("utf-8").split("\n") if n)

    def lookup(self, name_or_uuid: str) -> DomainInfo:
        out = self._session.run(name_or_uuid, _LOOKUP, "dominfo", name_or_uuid)
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
                self.uri,
                name_or_uuid,
                f"virsh resolved it as a domain id, to '{info.name}'",
                hint="name the domain by its UUID, or use the libvirt-python backend",
            )
        return info

    def lookups(self, names: Sequence[str]) -> Iterator[DomainInfo | LibvirtError]:
        """:meth:`lookup` of each name, the next one's ``dominfo`` in flight meanwhile."""
        return self._ahead(
            names,
            lambda name: self._send(name, _LOOKUP, "dominfo", name),
            lambda name, marks: self._info(name, self._collect(name, _LOOKUP, marks)),
        )

    def stored_xmls(self, doms: Sequence[DomainInfo]) -> Iterator[bytes | LibvirtError]:
        """:meth:`stored_xml` of each domain, the next one's in flight meanwhile."""
        return self._ahead(
            doms, self._ask_stored, lambda dom, marks: self._collect(dom.name, _STORED, marks)
        )

    def _ask_stored(self, dom: DomainInfo) -> list[str]:
        if not dom.persistent:
            raise transient_error(self.uri, dom)
        return self._send(dom.name, _STORED, "dumpxml", "--inactive", "--security-info", dom.uuid)

    def read_domains(self, names: Sequence[str]) -> Reads:
        """Facts, stored and running XML for each name, in order, a failure as its error,
        each domain in ONE round trip: its three commands go together, by the name given
        (virsh resolves it the same way each time). What the facts rule out (a transient
        domain's stored XML, a shut-off one's live XML) is dropped, and a name virsh took
        for a domain id is refused before any of it is used."""
        yield from self._ahead(names, self._ask, self._receive)

    def _ahead(
        self,
        keys: Sequence[_K],
        ask: Callable[[_K], list[str]],
        receive: Callable[[_K, list[str]], _T],
    ) -> Iterator[_T | LibvirtError]:
        """``receive(key, ask(key))`` of each key, in order, a failure of either as its
        error; the next key's commands are sent before this one's answer is handed out, so
        virsh works on them meanwhile. Closed early, what is in flight is dropped when it
        comes (the session stays in step)."""

        def asked(key: _K) -> list[str] | LibvirtError:
            try:
                return ask(key)
            except LibvirtError as exc:
                return exc

        keys = list(keys)
        # Markers of the commands in flight for the next key ([]: none).
        ahead = asked(keys[0]) if keys else []
        try:
            for k, key in enumerate(keys):
                marks, ahead = ahead, asked(keys[k + 1]) if k + 1 < len(keys) else []
                if isinstance(marks, LibvirtError):
                    yield marks
                    continue
                try:
                    yield receive(key, marks)
                except LibvirtError as exc:
                    yield exc
        finally:
            if isinstance(ahead, list):  # closed early: nobody will read these
                self._session.forget(ahead)

    def _send(self, domain: str | None, what: str, *args: str) -> list[str]:
        """Send one command line ahead; its marker (see :meth:`_collect`)."""
        return self._session.send(domain, what, [self._session.line(domain, *args)])

    def _collect(self, domain: str | None, what: str, marks: list[str]) -> bytes:
        """The stdout of the one command :meth:`_send` sent, or ``what`` as the error."""
        (mark,) = marks
        return self._session.checked(domain, what, self._session.collect(domain, what, mark))

    def _ask(self, name: str) -> list[str]:
        s = self._session
        lines = [
            s.line(name, "dominfo", name),
            s.line(name, "dumpxml", "--inactive", "--security-info", name),
            s.line(name, "dumpxml", name),
        ]
        return s.send(name, _LOOKUP, lines)

    def _receive(self, name: str, marks: list[str]) -> DomainRead:
        s = self._session
        info_out, stored, live = (s.collect(name, _LOOKUP, m) for m in marks)
        dom = self._info(name, s.checked(name, _LOOKUP, info_out))
        if not dom.persistent:
            raise transient_error(self.uri, dom)
        running = None
        if dom.active:
            out = s.checked(dom.name, _LIVE, live)
            running = out if is_live(out) else None
        return DomainRead(dom, s.checked(dom.name, _STORED, stored), running)

    def stored_xml(self, dom: DomainInfo) -> bytes:
        if not dom.persistent:
            raise transient_error(self.uri, dom)
        return self._session.run(
            dom.name,
            _STORED,
            "dumpxml",
            "--inactive",
            "--security-info",
            dom.uuid,
        )

    def live_xml(self, dom: DomainInfo) -> bytes | None:
        out = self._session.run(dom.name, _LIVE, "dumpxml", dom.uuid)
        return out if is_live(out) else None

    def define(self, dom: DomainInfo, xml: bytes) -> None:
        check_same_domain(self.uri, dom, xml)
        now = self.lookup(dom.uuid)
        if not now.persistent:
            raise transient_error(self.uri, dom)
        path = self._session.file("define.xml", xml)
        try:
            self._session.run(
                dom.name,
                "libvirt refused the new definition; nothing defined",
                "define",
                "--validate",
                path,
            )
        finally:
            os.unlink(path)

    def _capabilities(self) -> bytes | str:
        return self._session.run(None, "cannot read the host's capabilities", "capabilities")

    def cpu_features(
        self, cpu_xml: str, arch: str, virttype: str = "kvm"
    ) -> frozenset[Feature] | None:
        path = self._session.file("cpu.xml", cpu_xml.encode("utf-8"))
        try:
            expanded = self._session.query(
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
        return None if expanded is None else features_of(expanded, self.uri)

    def _domain_capabilities(self, arch: str, virttype: str) -> bytes | None:
        key = (arch, virttype)
        if key not in self._domcaps:
            self._domcaps[key] = self._session.query(
                f"cannot read the domain capabilities for {virttype} on {arch}",
                "domcapabilities",
                "--virttype",
                virttype,
                "--arch",
                arch,
            )
        return self._domcaps[key]
