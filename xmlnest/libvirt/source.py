"""libvirt domains as an input source: read each stored definition, define the result back.

The same transforms, rules and verification as files; only where the bytes come from
(``XMLDesc(INACTIVE|SECURE)``) and go to (a validated define, guarded against a change
made meanwhile, read back to check that libvirt kept the edit) differ.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from xmlnest.convert import Converter
from xmlnest.engine import document
from xmlnest.engine.transforms import FAMILY_OF_ARCH
from xmlnest.errors import LibvirtError, XmlnestError
from xmlnest.files import Input
from xmlnest.libvirt import status
from xmlnest.libvirt.connection import Connection, DomainInfo, redefine
from xmlnest.model import Options, Vendor


class DefinedDomain(NamedTuple):
    """What ``-i`` did to one domain: defined, and whether a restart is pending."""

    name: str
    restart_pending: bool
    notes: tuple[str, ...] = ()

    def line(self) -> str:
        """``NAME: defined`` or ``NAME: defined (restart pending)``, as virsh and virt-xml
        say what they defined."""
        return f"{self.name}: defined" + (" (restart pending)" if self.restart_pending else "")


class DomainSource:
    """The domains of one connection, each read and (with ``-i``) defined through it; and
    the host behind it, a :class:`xmlnest.convert.HostLookup` (the vendor is the domains'
    own host's, not a guess)."""

    vendor_is_the_domains = True

    def __init__(self, conn: Connection, *, read_ahead: bool = True) -> None:
        self.conn = conn
        # Read each stored definition while the one before is worked on. Not for -i: there
        # each is read just before its own guarded define, the window for someone else's
        # edit as narrow as one domain's work (and the saving only a round trip in six).
        self.read_ahead = read_ahead
        self._domains: dict[str, DomainInfo] = {}
        # The stored definitions, read ahead in the order of the inputs (see read()).
        self._order: deque[DomainInfo] | None = None  # the ones still to read, in order
        self._reads: Iterator[bytes | LibvirtError] = iter(())

    def inputs(self, names: Sequence[str]) -> Iterator[Input | XmlnestError]:
        """One input per domain, in the order named; an unknown one as its error. (The
        lookups go through :meth:`Connection.lookups`: virsh has the next one in flight.)"""
        for got in self.conn.lookups(names):
            if isinstance(got, LibvirtError):
                yield got
                continue
            if got.name in self._domains:
                continue  # named twice (by name and by UUID): converted once
            self._domains[got.name] = got
            yield Input(got.name, None, domain=got.name)

    def read(self, item: Input) -> bytes:
        """The domain's stored definition. With ``read_ahead``, inputs are read in the
        order :meth:`inputs` gave them (fixed at the first read), so each is asked for
        while the one before is worked on (virsh: one command ahead); a read out of that
        order stops the read-ahead, and this and every later one is asked for on its own."""
        dom = self._domain(item)
        if not self.read_ahead:
            return self.conn.stored_xml(dom)
        if self._order is None:
            self._order = deque(self._domains.values())
            self._reads = self.conn.stored_xmls(tuple(self._order))
        if self._order and self._order[0] is dom:
            self._order.popleft()
            got = next(self._reads)
            if isinstance(got, LibvirtError):
                raise got
            return got
        self._order = deque()
        close = getattr(self._reads, "close", None)
        if close is not None:
            close()  # what is in flight is dropped
        return self.conn.stored_xml(dom)

    @property
    def uri(self) -> str:
        return self.conn.uri

    def vendor(self) -> Vendor | None:
        return self.conn.host_vendor()

    def hyperv(self, arch: str) -> frozenset[str] | None:
        """The Hyper-V enlightenments the host's domain capabilities list for ``arch``."""
        return self.conn.hyperv_features(arch)

    def offered(self, arch: str) -> frozenset[str] | None:
        """The features the host's host-model CPU requires for ``arch`` (``None``: the
        driver cannot say)."""
        features = self.conn.host_model_features(arch)  # asked once per arch: its cache
        if features is None:
            return None
        return frozenset(f.name for f in features if status.host_offers(features, f.name))

    def running(self, item: Input) -> bool:
        """Whether the domain was running when it was looked up."""
        return self._domain(item).active

    def would_wait(self, item: Input, options: Options) -> bool:
        """Check mode's restart pending: the domain runs, and its running definition is
        not what the edit would make the stored one (as :meth:`define` says after it)."""
        dom = self._domain(item)
        if not dom.active:
            return False
        stored = status.NOT_NESTED if options.disable else status.NESTED
        return status.restart_pending(stored, self._running(dom))

    def define(self, item: Input, seen: bytes, new: bytes, converter: Converter) -> DefinedDomain:
        """Define ``new`` (validated) unless the stored definition changed since it was
        read as ``seen``; raise if libvirt did not keep the nesting edit (``converter``,
        the one that made ``new``, would change what libvirt stored). Says whether a
        restart is pending: the domain runs, and its running definition is not yet what
        the edit made the stored one (a host-model guest on a host that offers vmx runs
        nested already: no restart for nothing)."""
        dom = self._domain(item)
        done = redefine(self.conn, dom, seen, new)
        if converter.transform(done.stored).changed:
            raise LibvirtError(
                self.conn.uri,
                dom.name,
                "defined, but the stored definition libvirt kept lacks the nesting edit",
                hint=f"see 'virsh dumpxml --inactive --security-info {dom.name}'; "
                "please report this",
            )
        if not done.domain.active:
            return DefinedDomain(dom.name, False)
        stored = status.NOT_NESTED if converter.options.disable else status.NESTED
        pending = status.restart_pending(stored, self._running(done.domain))
        note = f"{self.conn.uri}: note: {status.running_note(dom.name)}"
        return DefinedDomain(dom.name, pending, (note,) if pending else ())

    def _running(self, dom: DomainInfo) -> str | None:
        """The running definition's verdict (``status.running_verdict``), or ``None`` when
        the domain stopped meanwhile."""
        live = self.conn.live_xml(dom)
        if live is None:
            return None
        root = document.parse(live).root
        cpu = status.cpu_to_expand(root)
        arch = status.arch_of(root)
        features = self.conn.cpu_features(cpu, arch, root.get("type") or "kvm") if cpu else None
        host = self.conn.host_model_features(arch) if FAMILY_OF_ARCH.get(arch) == "x86" else None
        return status.running_verdict(
            root, host_vendor=self.conn.host_vendor(), host_features=host, cpu_features=features
        )

    def _domain(self, item: Input) -> DomainInfo:
        assert item.domain is not None
        return self._domains[item.domain]
