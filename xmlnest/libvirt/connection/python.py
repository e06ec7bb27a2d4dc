"""The libvirt-python backend: :class:`Connection` answered by ``import libvirt`` (lazily)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import re
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

from xmlnest.errors import LibvirtError
from xmlnest.libvirt.connection.base import (
    NO_SUCH_HINT,
    DomainCapabilities,
    DomainInfo,
    DomainRead,
    Feature,
    Reads,
    check_same_domain,
    connect_error,
    default_uri_name,
    features_of,
    is_live,
    transient_error,
)
from xmlnest.model import Vendor

_A = TypeVar("_A")
_R = TypeVar("_R")

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
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")

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
# "Cannot answer": the driver lacks the call (the test driver), or the host has no
# emulator or virttype for that arch (virsh.py matches the same cases by message).
_CANNOT_ANSWER = (
    ERR_NO_SUPPORT,
    ERR_OPERATION_UNSUPPORTED,
    ERR_CONFIG_UNSUPPORTED,
    ERR_INVALID_ARG,
)


def libvirt_python_available() -> bool:
    """Whether ``import libvirt`` would give libvirt-python (without importing it): a
    folder that happens to be called ``libvirt`` on ``sys.path`` (``/etc/libvirt`` when
    ``python -m xmlnest`` runs in ``/etc``) is a namespace package, not the binding."""
    try:
        spec = importlib.util.find_spec("libvirt")
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def _each(call: Callable[[_A], _R], args: Sequence[_A]) -> Generator[_R | LibvirtError, None, None]:
    """``call`` of each argument in turn, a failure as its error (libvirt-python answers
    one call at a time: nothing to send ahead)."""
    for arg in args:
        try:
            yield call(arg)
        except LibvirtError as exc:
            yield exc


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt's default error handler prints every error on stderr; we raise instead."""


class LibvirtPython(DomainCapabilities):
    """The libvirt-python backend (``pip install 'xmlnest[libvirt]'``)."""

    backend = "python"

    def __init__(self, lv: Any, conn: Any) -> None:
        self._lv = lv
        self._conn = conn
        self._uri: str = conn.getURI()
        self._vendor: tuple[Vendor | None] | None = None
        self._host_model: dict[tuple[str, str], frozenset[Feature] | None] = {}
        self._domcaps: dict[tuple[str, str], str | None] = {}

    @classmethod
    def open(cls, uri: str | None = None) -> LibvirtPython:
        where = default_uri_name(uri)
        try:
            lv = importlib.import_module("libvirt")
        except ImportError as exc:
            raise LibvirtError(
                where,
                None,
                f"libvirt-python cannot be imported ({exc})",
                hint="pip install 'xmlnest[libvirt]', or set XMLNEST_LIBVIRT_BACKEND=virsh",
            ) from None
        if not hasattr(lv, "registerErrorHandler"):
            raise LibvirtError(
                where,
                None,
                f"'import libvirt' found {getattr(lv, '__path__', None) or lv}, not libvirt-python",
                hint="pip install 'xmlnest[libvirt]', or set XMLNEST_LIBVIRT_BACKEND=virsh",
            )
        lv.registerErrorHandler(_quiet, None)
        try:
            conn = lv.open(uri)
        except lv.libvirtError as exc:
            raise connect_error(where, exc.get_error_message()) from None
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
                raise LibvirtError(self._uri, domain, "no such domain", hint=NO_SUCH_HINT) from None
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
            raise transient_error(self._uri, dom)
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

    def lookups(self, names: Sequence[str]) -> Iterator[DomainInfo | LibvirtError]:
        return _each(self.lookup, names)

    def stored_xmls(self, doms: Sequence[DomainInfo]) -> Iterator[bytes | LibvirtError]:
        return _each(self.stored_xml, doms)

    def read_domains(self, names: Sequence[str]) -> Reads:
        return _each(self._read_domain, names)

    def _read_domain(self, name: str) -> DomainRead:
        dom = self.lookup(name)
        stored = self.stored_xml(dom)
        return DomainRead(dom, stored, self.live_xml(dom) if dom.active else None)

    def define(self, dom: DomainInfo, xml: bytes) -> None:
        check_same_domain(self._uri, dom, xml)
        now = self.lookup(dom.uuid)
        if not now.persistent:
            raise transient_error(self._uri, dom)
        text = xml.decode("utf-8")
        self._call(
            dom.name,
            "libvirt refused the new definition; nothing defined",
            lambda: self._conn.defineXMLFlags(text, DEFINE_VALIDATE),
        )

    def _capabilities(self) -> bytes | str:
        caps: bytes | str = self._call(
            None, "cannot read the host's capabilities", self._conn.getCapabilities
        )
        return caps

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

    def _domain_capabilities(self, arch: str, virttype: str) -> str | None:
        key = (arch, virttype)
        if key not in self._domcaps:
            try:
                self._domcaps[key] = self._conn.getDomainCapabilities(None, arch, None, virttype, 0)
            except self._lv.libvirtError as exc:
                if not self._unsupported(exc):
                    raise LibvirtError(
                        self._uri,
                        None,
                        f"cannot read the domain capabilities for {virttype} on {arch}",
                        libvirt_message=exc.get_error_message(),
                    ) from None
                self._domcaps[key] = None
        return self._domcaps[key]
