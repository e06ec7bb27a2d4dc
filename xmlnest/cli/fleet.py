"""``--status``: one row per libvirt domain with its stored and running nesting state.

Reads only (stored and live XML, the host's CPU answers); the rows are
:func:`xmlnest.api.domain_status`'s (the verdicts ``status``'s), printed here. An exposure
inventory: a host line first where the host's kernel is readable, and the
counts (stored, running, restart pending) after the rows.
"""

from __future__ import annotations

from typing import BinaryIO, TextIO

from xmlnest.cli.config import RunConfig
from xmlnest.cli.run import open_connection
from xmlnest.errors import ExitCode, LibvirtError
from xmlnest.libvirt import status
from xmlnest.libvirt.byname import status_rows
from xmlnest.libvirt.connection import Connection


def run_status(config: RunConfig, out: BinaryIO, err: TextIO) -> int:
    """Print the rows (a table, or JSON Lines with ``--json``); exit as ``--check``: 0 all
    nested, 1 some would change or wait for a restart, 3 refusals or errors."""
    conn = open_connection(config, lambda exc: print(exc.format(), file=err, flush=True))
    if conn is None:
        return ExitCode.REJECTED
    failed = False
    rows: list[status.StatusRow] = []
    try:
        names = conn.persistent_names() if config.all_domains else list(config.domains)
        width = max((len(n) for n in names), default=4)
        host = _host_line(config, conn)
        if host is not None:
            out.write((host + "\n").encode())
        if not config.as_json:
            out.write((status.header(width) + "\n").encode())
        for row in status_rows(
            conn, names, config.options, skip_unsupported=config.skip_unsupported
        ):
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


def _host_line(config: RunConfig, conn: Connection) -> str | None:
    """The host line before the rows, where the host's kernel is readable (a local URI,
    or --host-root): its verdict and the vendor module's nested parameter."""
    from xmlnest.hostcheck.enabling import kernel_root

    root = kernel_root(conn.uri, config.host_root)
    if root is None:
        return None
    from pathlib import Path

    from xmlnest.hostcheck.security import host_exposure

    exposure = host_exposure(Path(root))
    return exposure.json_line() if config.as_json else exposure.line()
