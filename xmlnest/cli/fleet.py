"""``--status``: one row per libvirt domain with its stored and running nesting state.

Reads only (stored and live XML, the host's CPU answers); the verdicts are ``status``'s.
An exposure inventory: a host line first where the host's kernel is readable, and the
counts (stored, running, restart pending) after the rows.
"""

from __future__ import annotations

from typing import BinaryIO, TextIO

from xmlnest.cli.config import RunConfig
from xmlnest.cli.run import kernel_root, open_connection
from xmlnest.engine import core, document
from xmlnest.engine.transforms import CANNOT_NEST, FAMILY_OF_ARCH
from xmlnest.errors import ExitCode, LibvirtError, RuleError, XmlnestError
from xmlnest.libvirt import status
from xmlnest.libvirt.connection import Connection, DomainRead, Feature


def run_status(config: RunConfig, out: BinaryIO, err: TextIO) -> int:
    """Print the rows (a table, or JSON Lines with ``--json``); exit as ``--check``: 0 all
    nested, 1 some would change or wait for a restart, 3 refusals or errors."""
    conn = open_connection(config, lambda exc: print(exc.format(), file=err, flush=True))
    if conn is None:
        return ExitCode.REJECTED
    failed = False
    rows: list[status.StatusRow] = []
    seen: Expanded = {}
    try:
        names = conn.persistent_names() if config.all_domains else list(config.domains)
        width = max((len(n) for n in names), default=4)
        host = _host_line(config, conn)
        if host is not None:
            out.write((host + "\n").encode())
        if not config.as_json:
            out.write((status.header(width) + "\n").encode())
        for read in conn.read_domains(names):
            row = _row_of(conn, read, config, seen)
            if isinstance(row, LibvirtError):
                print(row.format(), file=err, flush=True)
                failed = True
                continue
            rows.append(row)
            line = row.json_line() if config.as_json else status.table_line(row, width)
            out.write((line + "\n").encode())
            out.flush()
    finally:
        conn.close()
    counts = status.exposure(rows, disable=config.options.disable)
    out.write(((counts.json_line() if config.as_json else counts.line()) + "\n").encode())
    code = status.exit_code(rows)
    return max(code, ExitCode.REJECTED if failed else ExitCode.OK)


Expanded = dict[tuple[str, str, str], frozenset[Feature] | None]


def _host_line(config: RunConfig, conn: Connection) -> str | None:
    """The host line before the rows, where the host's kernel is readable (a local URI,
    or --host-root): its verdict and the vendor module's nested parameter."""
    root = kernel_root(conn.uri, config)
    if root is None:
        return None
    from pathlib import Path

    from xmlnest.hostcheck.security import host_exposure

    exposure = host_exposure(Path(root))
    return exposure.json_line() if config.as_json else exposure.line()


def _expanded(
    conn: Connection, seen: Expanded, cpu: str, arch: str, virttype: str
) -> frozenset[Feature] | None:
    """The live CPU's features, expanded by the hypervisor: asked once per distinct CPU
    in a run (a fleet's domains mostly share a few), not once per domain."""
    key = (cpu, arch, virttype)
    if key not in seen:
        if len(seen) >= 256:  # many distinct CPUs: keep memory flat
            seen.clear()
        seen[key] = conn.cpu_features(cpu, arch, virttype)
    return seen[key]


def _row_of(
    conn: Connection, read: DomainRead | LibvirtError, config: RunConfig, seen: Expanded
) -> status.StatusRow | LibvirtError:
    """The domain's row, or the error that stopped it (read or judged)."""
    if isinstance(read, LibvirtError):
        return read
    try:
        return _row(conn, read, config, seen)
    except LibvirtError as exc:
        return exc


def _row(conn: Connection, read: DomainRead, config: RunConfig, seen: Expanded) -> status.StatusRow:
    dom, raw, live = read
    try:
        outcome = core.process(raw, config.options, host_vendor=conn.host_vendor)
        arch = status.arch_of(outcome.source.root)
        stored = status.stored_verdict(
            changed=outcome.changed,
            disable=config.options.disable,
            host_setting=any(f.rule == "XN221" for f in outcome.findings),
        )
    except RuleError as exc:
        arch = _arch_of(raw)  # a refusal still names the arch (parsed again only then)
        rule = exc.rule or "input"
        if config.skip_unsupported and rule in CANNOT_NEST:
            stored = status.stored_verdict(changed=False, skipped=rule)
        else:
            stored = status.stored_verdict(changed=False, refused=rule)
    except XmlnestError:
        arch = _arch_of(raw)
        stored = status.stored_verdict(changed=False, refused="input")
    running = None
    if live is not None:
        root = document.parse(live).root
        cpu = status.cpu_to_expand(root)
        live_arch = status.arch_of(root)
        kind = root.get("type") or "kvm"
        features = _expanded(conn, seen, cpu, live_arch, kind) if cpu else None
        x86 = FAMILY_OF_ARCH.get(live_arch) == "x86"
        host = conn.host_model_features(live_arch) if x86 else None
        running = status.running_verdict(
            root, host_vendor=conn.host_vendor(), host_features=host, cpu_features=features
        )
    return status.row(dom.name, arch, dom.state, stored, running)


def _arch_of(raw: bytes) -> str:
    """The stored definition's arch, or '' when it does not even parse."""
    try:
        return status.arch_of(document.parse(raw).root)
    except XmlnestError:
        return ""
