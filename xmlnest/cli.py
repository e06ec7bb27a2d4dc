"""The shell: the click command, its options turned into one ``RunConfig``, and dispatch.

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

from xmlnest import options, runs
from xmlnest.config import Output, RunConfig
from xmlnest.errors import UsageError
from xmlnest.report import ExitCode
from xmlnest.sources import STDIN
from xmlnest.transforms import ARCH_ALIASES
from xmlnest.transforms.common import Options

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
        from xmlnest.fleet import run_status

        config = configure(**{**kw, "check": True, "all_domains": not kw["domains"]})
        return run_status(config, out, sys.stderr)
    config = configure(**kw)
    if config.libvirt:
        return runs.run_domains(config, out)
    return runs.run_files(config, out)


def configure(
    *,
    paths: tuple[str, ...],
    arch: str,
    model: str | None,
    passthrough: bool,
    host_model: bool,
    disable: bool,
    check: bool,
    diff_format: str | None,
    in_place: bool,
    output_dir: str | None,
    schema_dir: str | None,
    validate_kind: str,
    no_validate: bool,
    strict: bool,
    ignore: tuple[str, ...],
    max_bytes: int,
    host_root: str | None,
    level: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    jobs: int,
    skip_non_domain: bool,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    connect: str | None = None,
    domains: tuple[str, ...] = (),
    all_domains: bool = False,
    **_dispatch: object,
) -> RunConfig:
    """The options of a run over files or domains as one immutable configuration; raise
    ``UsageError``."""
    libvirt = connect is not None or bool(domains) or all_domains
    if libvirt:
        _check_libvirt_options(
            paths=paths,
            connect=connect,
            domains=domains,
            all_domains=all_domains,
            output_dir=output_dir,
            stdout=not (check or diff_format or in_place),
            status=bool(_dispatch.get("status")),
        )
    if host_root is not None and arch != "auto":
        raise UsageError(
            "--host-root goes with --host-check (or with --arch auto, whose x86 vendor "
            "guess it reads); drop it"
        )
    if host_root is not None and not os.path.isdir(host_root):
        raise UsageError(f"--host-root {host_root} is not a folder")
    if as_json and diff_format is not None:
        raise UsageError("--json and --diff both print on stdout; use --diff=json for a JSON diff")
    if as_json and not (check or in_place or output_dir):
        raise UsageError(
            "--json reports per input with --check, -i or -o (without them stdout "
            "carries the XML); or use --host-check --json"
        )
    if diff_format == "unified":
        for word in ("json", "unified"):
            if word in paths and not os.path.exists(word):
                raise UsageError(
                    f"'{word}' after --diff was read as a PATH (no such file); write --diff={word}"
                )
    if model and passthrough:
        raise UsageError("--model and --passthrough contradict each other; pick one")
    _check_direction(disable, host_model, model, passthrough, level)
    if in_place and check:
        raise UsageError("--in-place and --check contradict each other; pick one")
    if in_place and output_dir:
        raise UsageError("--in-place and --output-dir contradict each other; pick one")
    if model is not None and not model.strip():
        raise UsageError("--model needs a CPU model name")
    target = ARCH_ALIASES[arch]
    if level == "l2" and target in ("intel", "amd", "ibmz"):
        raise UsageError(f"--level l2 with --arch {arch}: L3 guests are not expected to work")
    if host_model and target in ("power9", "ibmz"):
        raise UsageError(f"--host-model applies to Intel and AMD CPUs, not to --arch {arch}")
    output = _output(check=check, diff=diff_format, in_place=in_place, output_dir=output_dir)
    args = [] if libvirt else (list(paths) or [STDIN])
    folders = [a for a in args if a != STDIN and os.path.isdir(a)]
    if output is Output.STDOUT and folders:
        raise UsageError(
            f"{folders[0]} is a folder: a folder needs --check, --diff, --in-place or "
            "--output-dir (stdout takes one document)"
        )
    if output is Output.STDOUT and len(args) > 1:
        raise UsageError(
            "several inputs need --check, --diff, --in-place or --output-dir "
            "(stdout takes one document)"
        )
    if output in (Output.IN_PLACE, Output.OUTPUT_DIR) and STDIN in args:
        raise UsageError("--in-place and --output-dir need named files, not stdin")
    known_models = None
    if model is not None:
        from xmlnest.cpumap import x86_models

        known_models = x86_models()
    return RunConfig(
        options=Options(
            arch=target,
            model=model,
            passthrough=passthrough,
            level=level,
            known_models=known_models,
            disable=disable,
            host_model=host_model,
            host_is_the_domains=libvirt,  # the vendor comes from the host behind the URI
        ),
        output=output,
        diff=diff_format,
        output_dir=output_dir,
        paths=tuple(args),
        include=include,
        exclude=exclude,
        validate_kind="none" if no_validate else validate_kind,
        schema_dir=schema_dir,
        max_bytes=max_bytes,
        strict=strict,
        ignore=_ignored(ignore),
        host_root=host_root or "/",
        skip_non_domain=skip_non_domain,
        jobs=jobs,
        quiet=quiet,
        verbose=verbose,
        as_json=as_json,
        connect=connect,
        domains=domains,
        all_domains=all_domains,
    )


def _check_direction(
    disable: bool, host_model: bool, model: str | None, passthrough: bool, level: str
) -> None:
    """--disable takes none of the options that shape the enabling edit; --host-model
    contradicts the other CPU choices. (``--level l1`` is the default, so only an
    ``l2`` conflicts.)"""
    if disable:
        for flag, given in (
            ("--model", model is not None),
            ("--passthrough", passthrough),
            ("--host-model", host_model),
            ("--level l2", level == "l2"),
        ):
            if given:
                raise UsageError(
                    f"--disable and {flag} contradict each other: {flag} shapes the "
                    "enabling edit; drop one"
                )
    if host_model and (model is not None or passthrough):
        other = "--model" if model is not None else "--passthrough"
        raise UsageError(f"--host-model and {other} contradict each other; pick one")


def _check_libvirt_options(
    *,
    paths: tuple[str, ...],
    connect: str | None,
    domains: tuple[str, ...],
    all_domains: bool,
    output_dir: str | None,
    stdout: bool,
    status: bool,
) -> None:
    if paths:
        raise UsageError("name files or libvirt domains (--domain), not both")
    if output_dir:
        raise UsageError("--output-dir writes files; with domains use -i (defines them back)")
    if domains and all_domains:
        raise UsageError("--domain and --all-domains contradict each other; pick one")
    if not (domains or all_domains or status):
        where = f"-c {connect}" if connect else "-c"
        raise UsageError(f"{where} needs --domain NAME, --all-domains or --status")
    if stdout and (all_domains or len(domains) > 1):
        raise UsageError(
            "several domains need --check, --diff or --in-place (stdout takes one document)"
        )


def _output(*, check: bool, diff: str | None, in_place: bool, output_dir: str | None) -> Output:
    if in_place:
        return Output.IN_PLACE
    if output_dir:
        return Output.OUTPUT_DIR
    if check:
        return Output.CHECK
    return Output.DIFF if diff else Output.STDOUT


def _ignored(values: tuple[str, ...]) -> frozenset[str]:
    """The rules ``--ignore`` turns off: known warning or info rules (errors refuse an
    input for a reason no flag can waive)."""
    if not values:
        return frozenset()
    from xmlnest.rules import RULES  # the rule table loads only for --ignore

    wanted = {v.strip().upper() for value in values for v in value.split(",") if v.strip()}
    for rule_id in sorted(wanted):
        rule = RULES.get(rule_id)
        if rule is None:
            raise UsageError(f"--ignore {rule_id}: no such rule; see xmlnest --list-rules")
        if rule.level == "error":
            raise UsageError(
                f"--ignore {rule_id}: {rule_id} is an error ({rule.title}) and cannot be "
                f"ignored; see xmlnest --explain {rule_id}"
            )
    return frozenset(wanted)


def _list_rules(out: BinaryIO) -> int:
    from xmlnest.rules import listing

    out.write(listing().encode())
    return ExitCode.OK


def _explain(rule_id: str, out: BinaryIO) -> int:
    from xmlnest.rules import explain

    text = explain(rule_id)
    if text is None:
        raise UsageError(f"no rule {rule_id!r}; xmlnest --list-rules lists them")
    out.write(text.encode())
    return ExitCode.OK


def _host_check(host_root: str, as_json: bool, out: BinaryIO) -> int:
    from pathlib import Path

    from xmlnest.host import host_check, render_json, render_text

    report = host_check(Path(host_root))
    out.write((render_json(report) if as_json else render_text(report)).encode())
    return report.exit_code
