"""What every libvirt backend shares: the Connection protocol, its data, the XML it parses."""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator, Sequence
from typing import NamedTuple, Protocol

from lxml import etree

from xmlnest.errors import LibvirtError
from xmlnest.model import Vendor

_VENDORS: dict[str, Vendor] = {"intel": "intel", "amd": "amd", "hygon": "amd"}
_LIVE = re.compile(rb"^\s*<domain\b[^>]*\sid=['\"]")  # only a running domain's XML has an id
NO_SUCH_HINT = "check the name with virsh -c URI list --all"


class DomainInfo(NamedTuple):
    """One domain as libvirt sees it now; ``state`` is virsh's word (``running``, ``shut off``…)."""

    name: str
    uuid: str
    persistent: bool
    active: bool
    state: str


class DomainRead(NamedTuple):
    """What ``--status`` reads of one domain: its facts, stored XML and running XML (``None``
    when it is not running)."""

    info: DomainInfo
    stored: bytes
    live: bytes | None


# What read_domains gives: a generator, so closing it early drops what is in flight.
Reads = Generator["DomainRead | LibvirtError", None, None]


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

    def lookups(self, names: Sequence[str]) -> Iterator[DomainInfo | LibvirtError]:
        """:meth:`lookup` of each name in order, a failure as its error (virsh asks for the
        next while the caller looks at this one)."""
        ...

    def stored_xmls(self, doms: Sequence[DomainInfo]) -> Iterator[bytes | LibvirtError]:
        """:meth:`stored_xml` of each domain in order, a failure as its error (virsh asks
        for the next while the caller works on this one)."""
        ...

    def read_domains(self, names: Sequence[str]) -> Reads:
        """For each name in order, :meth:`lookup`, :meth:`stored_xml` and :meth:`live_xml`
        (if running) at once, or the first failure as its error (virsh sends a domain's
        three in one round trip, and asks for the next while the caller looks at this one)."""
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

    def hyperv_features(self, arch: str, virttype: str = "kvm") -> frozenset[str] | None:
        """The Hyper-V enlightenments domain capabilities list as supported; ``None``
        where the driver does not report them."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Connection: ...

    def __exit__(self, *exc: object) -> None: ...


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


def hyperv_from_domcaps(domcaps: bytes | str, uri: str = "") -> frozenset[str] | None:
    """``<features><hyperv supported='yes'><enum name='features'>``'s values (empty when
    not supported); ``None`` when the domain capabilities do not report ``<hyperv>``."""
    hyperv = _parse(domcaps, uri, "domain capabilities").find("features/hyperv")
    if hyperv is None:
        return None
    if hyperv.get("supported") != "yes":
        return frozenset()
    return frozenset(
        (v.text or "").strip() for v in hyperv.iterfind("enum[@name='features']/value")
    )


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


class DomainCapabilities:
    """What both backends derive from a host's capabilities the same way: its CPU vendor,
    the host-model CPU's features and the Hyper-V enlightenments. A backend supplies
    ``uri``, ``_vendor`` and ``_host_model`` (its caches), ``_capabilities``,
    ``_domain_capabilities`` and ``cpu_features``."""

    _vendor: tuple[Vendor | None] | None
    _host_model: dict[tuple[str, str], frozenset[Feature] | None]

    @property
    def uri(self) -> str:
        raise NotImplementedError

    def _capabilities(self) -> bytes | str:
        raise NotImplementedError

    def _domain_capabilities(self, arch: str, virttype: str) -> bytes | str | None:
        raise NotImplementedError

    def host_vendor(self) -> Vendor | None:
        """The host's CPU vendor from its capabilities, asked once per connection."""
        if self._vendor is None:
            self._vendor = (vendor_from_capabilities(self._capabilities(), self.uri),)
        return self._vendor[0]

    def cpu_features(
        self, cpu_xml: str, arch: str, virttype: str = "kvm"
    ) -> frozenset[Feature] | None:
        raise NotImplementedError

    def host_model_features(self, arch: str, virttype: str = "kvm") -> frozenset[Feature] | None:
        key = (arch, virttype)
        if key not in self._host_model:
            domcaps = self._domain_capabilities(arch, virttype)
            cpu = None if domcaps is None else host_model_cpu(domcaps, self.uri)
            self._host_model[key] = None if cpu is None else self.cpu_features(cpu, arch, virttype)
        return self._host_model[key]

    def hyperv_features(self, arch: str, virttype: str = "kvm") -> frozenset[str] | None:
        domcaps = self._domain_capabilities(arch, virttype)
        return None if domcaps is None else hyperv_from_domcaps(domcaps, self.uri)


def is_live(xml: bytes) -> bool:
    """True for a running domain's XML: only that carries ``<domain id=...>``."""
    return _LIVE.match(xml) is not None


def check_same_domain(uri: str, dom: DomainInfo, xml: bytes) -> None:
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


def transient_error(uri: str, dom: DomainInfo) -> LibvirtError:
    return LibvirtError(
        uri,
        dom.name,
        "is transient: it has no stored definition, and defining one would make it "
        "persistent; nothing defined",
        hint="define it yourself first if it is meant to persist",
    )


def default_uri_name(uri: str | None) -> str:
    return uri or os.environ.get("LIBVIRT_DEFAULT_URI") or "libvirt's default URI"


def connect_error(where: str, message: str | None) -> LibvirtError:
    return LibvirtError(
        where,
        None,
        "cannot connect",
        libvirt_message=message,
        hint="check the URI, that libvirtd runs there, and your rights on it",
    )
