"""The guarded define of ``-i``: only over the definition as read, then read back."""

from __future__ import annotations

from typing import NamedTuple

from xmlnest.errors import LibvirtError
from xmlnest.libvirt.connection.base import Connection, DomainInfo


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
