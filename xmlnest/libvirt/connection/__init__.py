"""Talking to libvirt: pick a backend and open one connection for the run.

Everything xmlnest asks a libvirt connection goes through :class:`Connection`
(:mod:`~xmlnest.libvirt.connection.base`): which persistent domains there are, one domain's facts
(:class:`DomainInfo`), its stored and live XML, defining a new stored definition (with
libvirt's validation), and two questions about the host behind the URI (its x86 vendor,
and the features of its host-model CPU). Both backends give the same answers, byte for
byte where XML is concerned, and the same :class:`~xmlnest.errors.LibvirtError` (never a
traceback) when libvirt says no.

- :class:`LibvirtPython` (:mod:`~xmlnest.libvirt.connection.python`) imports ``libvirt`` lazily,
  inside :meth:`LibvirtPython.open`: importing this package costs nothing, and the file
  and pipe paths never load libvirt.
- :class:`Virsh` (:mod:`~xmlnest.libvirt.connection.virsh`, loaded on first use) keeps ONE
  ``virsh`` process (so one libvirt connection) for the whole run
  (:mod:`~xmlnest.libvirt.connection.session`), driven over stdin
  (:mod:`~xmlnest.libvirt.connection.shell`): after each command it sends ``echo --err MARK`` and
  ``echo MARK`` with a fresh marker, so it knows where each answer ends on stdout and on
  stderr, which stay separate.

:func:`connect` picks the backend: the ``backend`` argument, else ``$XMLNEST_LIBVIRT_BACKEND``
(``python``, ``virsh`` or ``auto``), else libvirt-python when it can be imported, else virsh.
The rest of the package's public names are re-exported here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from xmlnest.errors import LibvirtError, UsageError
from xmlnest.libvirt.connection.base import (
    Connection,
    DomainInfo,
    DomainRead,
    Feature,
    features_of,
    host_model_cpu,
    is_live,
    vendor_from_capabilities,
)
from xmlnest.libvirt.connection.guard import Defined, redefine
from xmlnest.libvirt.connection.python import STATE_WORDS, LibvirtPython, libvirt_python_available

if TYPE_CHECKING:
    from xmlnest.libvirt.connection.virsh import Virsh

BACKEND_ENV = "XMLNEST_LIBVIRT_BACKEND"
BACKENDS = ("python", "virsh")

__all__ = [
    "BACKEND_ENV",
    "BACKENDS",
    "STATE_WORDS",
    "Connection",
    "Defined",
    "DomainInfo",
    "DomainRead",
    "Feature",
    "LibvirtError",
    "LibvirtPython",
    "Virsh",
    "choose_backend",
    "connect",
    "features_of",
    "host_model_cpu",
    "is_live",
    "libvirt_python_available",
    "redefine",
    "vendor_from_capabilities",
]


def choose_backend(requested: str | None = None) -> str:
    """``python`` or ``virsh``: as requested (argument, then ``$XMLNEST_LIBVIRT_BACKEND``),
    else libvirt-python when it can be imported, else virsh. An unknown value is a
    :class:`UsageError` (the CLI's exit 2), never a traceback."""
    wanted = (requested or os.environ.get(BACKEND_ENV, "") or "auto").strip().lower()
    if wanted in BACKENDS:
        return wanted
    if wanted != "auto":
        shown = " ".join(wanted.split())[:40]  # one line, however odd the value
        raise UsageError(
            f"{BACKEND_ENV}={shown!r} is not a libvirt backend: expected python, virsh or auto"
        )
    return "python" if libvirt_python_available() else "virsh"


def connect(uri: str | None = None, *, backend: str | None = None) -> Connection:
    """Open one connection for the whole run (``uri=None``: libvirt's default,
    ``$LIBVIRT_DEFAULT_URI`` included)."""
    if choose_backend(backend) == "python":
        return LibvirtPython.open(uri)
    from xmlnest.libvirt.connection.virsh import Virsh

    return Virsh.open(uri)


def __getattr__(name: str) -> object:
    """``Virsh`` on first use: the virsh backend (subprocess, its shell driver) loads only
    for a run that uses it, not for one on libvirt-python."""
    if name == "Virsh":
        from xmlnest.libvirt.connection.virsh import Virsh

        return Virsh
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
