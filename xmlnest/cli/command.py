"""The shell: the click command and dispatch; ``config.configure`` turns the options into
one ``RunConfig``.

Usage errors (2), Ctrl-C (130) and a closed stdout are handled in ``main``, once. A run
over inputs is ``runs``'s, per-input work the runner's, writing the output sink's,
counting the report's.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import click

from xmlnest.cli import options
from xmlnest.cli import run as runs
from xmlnest.cli.config import configure
from xmlnest.errors import ExitCode, UsageError

INTERRUPTED = "xmlnest: interrupted; files already rewritten are complete"


def main(argv: Sequence[str] | None = None) -> int:
    """Run xmlnest; return the exit code (tests call this in-process)."""
    import click

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rc = _command().main(args=_bare_diff(args), prog_name="xmlnest", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)
        return ExitCode.USAGE
    except click.UsageError as exc:
        print(f"xmlnest: {exc.format_message()}", file=sys.stderr)
        return ExitCode.USAGE
    except UsageError as exc:
        print(f"xmlnest: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        print(INTERRUPTED, file=sys.stderr)
        return ExitCode.INTERRUPTED
    except runs.PipeClosed as exc:
        # The reader went away (`xmlnest … | head -1`): stop quietly, keep what was said.
        _silence_stdout()
        return exc.code
    return int(rc) if isinstance(rc, int) else ExitCode.OK


def entry() -> None:
    """Console script: exit with main()'s code; a closed stdout ends quietly."""
    import gc

    gc.freeze()  # objects made by imports never need collecting: keep gen-2 passes cheap
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        code = ExitCode.OK
    raise SystemExit(code)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


@functools.cache
def _command() -> click.Command:
    return options.click_command(run)


def _bare_diff(args: list[str]) -> list[str]:
    """A bare ``--diff`` means unified; click would otherwise take the next PATH as its value."""
    out: list[str] = []
    for i, a in enumerate(args):
        if a == "--":
            return out + args[i:]
        out.append("--diff=unified" if a == "--diff" else a)
    return out


_DISPATCH = ("list_rules", "explain", "host_check")  # the options that are not a run's


def _run_options(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if k not in _DISPATCH}


def run(**kw: Any) -> int:
    """The click command's body: dispatch to the one thing the options ask for."""
    out: BinaryIO = sys.stdout.buffer
    if kw["list_rules"]:
        return _list_rules(out)
    if kw["explain"] is not None:
        return _explain(str(kw["explain"]), out)
    if kw["host_check"]:
        if kw["paths"]:
            raise UsageError(
                "--host-check reports on this host and reads no domain XML; drop the PATH arguments"
            )
        return _host_check(str(kw["host_root"] or "/"), bool(kw["as_json"]), out)
    if kw["status"]:
        if kw["in_place"] or kw["diff_format"] or kw["output_dir"] or kw["check"]:
            raise UsageError("--status reports and changes nothing; drop -i, -o, --diff, --check")
        if kw["paths"]:
            raise UsageError("--status reports on libvirt domains; drop the PATH arguments")
        from xmlnest.cli.fleet import run_status

        every = not kw["domains"] and kw["domains_from"] is None
        config = configure(**{**_run_options(kw), "check": True, "all_domains": every})
        return run_status(config, out, sys.stderr)
    config = configure(**_run_options(kw))
    if config.libvirt:
        return runs.run_domains(config, out)
    return runs.run_files(config, out)


def _list_rules(out: BinaryIO) -> int:
    from xmlnest.engine.rules import listing

    out.write(listing().encode())
    return ExitCode.OK


def _explain(rule_id: str, out: BinaryIO) -> int:
    from xmlnest.api import explain

    out.write(explain(rule_id).encode())
    return ExitCode.OK


def _host_check(host_root: str, as_json: bool, out: BinaryIO) -> int:
    from pathlib import Path

    from xmlnest.hostcheck.check import host_check, render_json, render_text

    report = host_check(Path(host_root))
    out.write((render_json(report) if as_json else render_text(report)).encode())
    return report.exit_code
