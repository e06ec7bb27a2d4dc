"""What a run that turns nesting on says of its host's kernel, once (XN223, XN224): where
that kernel can be read, and the finding. The CLI's ``-c`` runs, ``xmlnest.enabling_risk``
and the Ansible ``nested`` module all ask here. Light to import: a by-name run over
libvirt's test driver loads nothing more (tests/test_domains_cli.py); the kernel's
verdict (``kernel``, ``security``) loads only when a kernel is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xmlnest.engine.plan import Finding


def kernel_root(uri: str, host_root: str | None = None) -> str | None:
    """Where the kernel of the host behind ``uri`` can be read: ``host_root`` when given
    (that host's ``/`` mounted here), ``/`` for a local URI (no host part:
    ``qemu:///system``), else ``None`` (a remote host; libvirt's test driver, whose host
    is made up)."""
    if host_root is not None:
        return host_root
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme == "test" or "+" in scheme and not scheme.endswith("+unix"):
        return None
    return "/" if rest.startswith("///") else None


def enabling_finding(uri: str, host_root: str | None = None) -> Finding | None:
    """What a run that enables nesting in the domains behind ``uri`` says of their host's
    kernel, once: XN223 when it has a nesting-only escape, XN224 (a note) when it is a
    remote host whose kernel cannot be read from here, ``None`` when it is fixed, cannot
    be judged, or is libvirt's test driver. The CLI's ``-c`` runs and the Ansible
    collection's ``nested`` module both ask this."""
    root = kernel_root(uri, host_root)
    if root is None and uri.startswith("test:"):
        return None
    from xmlnest.hostcheck.security import enabling_warning, remote_note

    if root is None:
        return remote_note(uri)
    from pathlib import Path

    from xmlnest.hostcheck.cpu import detect_arch, read_cpuinfo
    from xmlnest.hostcheck.kernel import read_verdict

    info = read_cpuinfo(Path(root))
    arch = detect_arch(info).value if info is not None else "x86"
    return enabling_warning(read_verdict(Path(root), arch))
