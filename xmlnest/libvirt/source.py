"""libvirt domains as an input source: read each stored definition, define the result back.

The same transforms, rules and verification as files; only where the bytes come from
(``XMLDesc(INACTIVE|SECURE)``) and go to (a validated define, guarded against a change
made meanwhile, read back to check that libvirt kept the edit) differ.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

from xmlnest.engine import core
from xmlnest.errors import LibvirtError, XmlnestError
from xmlnest.files import Input
from xmlnest.libvirt import status
from xmlnest.libvirt.connection import Connection, DomainInfo, Feature, redefine
from xmlnest.model import HostOffer, Options, Vendor


class DomainSource:
    """The domains of one connection, each read and (with ``-i``) defined through it."""

    def __init__(self, conn: Connection, *, read_ahead: bool = True) -> None:
        self.conn = conn
        # Read each stored definition while the one before is worked on. Not for -i: there
        # each is read just before its own guarded define, the window for someone else's
        # edit as narrow as one domain's work (and the saving only a round trip in six).
        self.read_ahead = read_ahead
        self._domains: dict[str, DomainInfo] = {}
        self._host_features: dict[str, frozenset[Feature] | None] = {}
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

    def host_vendor(self) -> Vendor | None:
        return self.conn.host_vendor()

    def host(self) -> HostOffer:
        """What the host behind the connection offers guests, asked once per arch."""
        return HostOffer(self.conn.uri, self._offered)

    def _offered(self, arch: str) -> frozenset[str] | None:
        """The features the host's host-model CPU requires for ``arch`` (``None``: the
        driver cannot say)."""
        features = self._features(arch)
        if features is None:
            return None
        return frozenset(f.name for f in features if status.host_offers(features, f.name))

    def define(self, item: Input, seen: bytes, new: bytes, options: Options) -> tuple[str, ...]:
        """Define ``new`` (validated) unless the stored definition changed since it was
        read as ``seen``; raise if libvirt did not keep the nesting edit; return notes."""
        dom = self._domain(item)
        done = redefine(self.conn, dom, seen, new)
        kept = core.process(done.stored, options, host_vendor=self.conn.host_vendor)
        if kept.changed:
            raise LibvirtError(
                self.conn.uri,
                dom.name,
                "defined, but the stored definition libvirt kept lacks the nesting edit",
                hint="see 'virsh dumpxml --inactive " + dom.name + "'; please report this",
            )
        if done.domain.active:
            return (f"{self.conn.uri}: note: {status.running_note(dom.name)}",)
        return ()

    def _domain(self, item: Input) -> DomainInfo:
        assert item.domain is not None
        return self._domains[item.domain]

    def _features(self, arch: str) -> frozenset[Feature] | None:
        """The host-model CPU's features for ``arch``, asked once per run."""
        if arch not in self._host_features:
            self._host_features[arch] = self.conn.host_model_features(arch)
        return self._host_features[arch]
