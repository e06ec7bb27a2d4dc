"""One run's configuration: computed once from the options (usage errors raised here),
never changed after."""

from __future__ import annotations

import os
from enum import Enum
from typing import NamedTuple

from xmlnest.arguments import check_cpu_choices, ignored_rules, options_for
from xmlnest.engine.document import DEFAULT_MAX_BYTES
from xmlnest.engine.transforms import ARCH_ALIASES
from xmlnest.engine.validate import Choice, choose
from xmlnest.errors import UsageError
from xmlnest.files import STDIN
from xmlnest.files.inputs import folders_among
from xmlnest.model import Options


class Output(Enum):
    """Where a run's results go (black's ``WriteBack``): computed once from the flags."""

    STDOUT = "stdout"  # the converted XML of one input
    CHECK = "check"  # nothing written; exit 1 if anything would change
    DIFF = "diff"  # nothing written; a diff of what would change
    IN_PLACE = "in place"  # changed files rewritten atomically
    OUTPUT_DIR = "output dir"  # converted copies under a folder

    @property
    def writes(self) -> bool:
        """Whether the run writes the results (its summary says "changed", not "would")."""
        return self in (Output.STDOUT, Output.IN_PLACE, Output.OUTPUT_DIR)


DEFAULT_VALIDATION = Choice("auto", None, None)  # a RunConfig made by hand chooses on use


# The CPU choices as the command line spells them (``arguments.check_cpu_choices``).
FLAGS = {
    "model": "--model",
    "passthrough": "--passthrough",
    "host_model": "--host-model",
    "disable": "--disable",
    "level_l2": "--level l2",
}


class RunConfig(NamedTuple):
    """Everything one run needs; immutable, hashable and picklable, so ``--jobs`` workers
    get it as is and keep per-process state (the compiled schema) keyed by it. (A
    NamedTuple, not a frozen dataclass: ``dataclasses`` costs the pipe ~3 ms to import.)"""

    options: Options = Options()
    output: Output = Output.STDOUT
    diff: str | None = None  # None, "unified" or "json": printed besides the output mode
    output_dir: str | None = None
    paths: tuple[str, ...] = ()
    folders: tuple[str, ...] | None = None  # which ``paths`` are folders (None: not asked)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    validation: Choice = DEFAULT_VALIDATION  # the schema, chosen once per run
    max_bytes: int = DEFAULT_MAX_BYTES
    strict: bool = False
    ignore: frozenset[str] = frozenset()
    # --host-root as given: the machine the x86 vendor is guessed from (None: this one,
    # "/"), and also the host behind a local libvirt URI
    host_root: str | None = None
    skip_non_domain: bool = False
    skip_unsupported: bool = False  # domains that cannot nest by type or arch: skipped
    jobs: int = 0
    quiet: bool = False
    verbose: bool = False
    as_json: bool = False
    connect: str | None = None  # libvirt URI (None: libvirt's default)
    domains: tuple[str, ...] = ()  # --domain NAME..., or the names --domains-from read
    all_domains: bool = False
    domains_from: str | None = None  # --domains-from FILE (its names are in ``domains``)

    @property
    def libvirt(self) -> bool:
        """Inputs are libvirt domains, read and defined through a connection."""
        return (
            self.connect is not None
            or bool(self.domains)
            or self.all_domains
            or self.domains_from is not None
        )

    @property
    def check(self) -> bool:
        """``--check``: the verdict is the point; a change makes the exit code 1."""
        return self.output is Output.CHECK


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
    skip_unsupported: bool = False,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    connect: str | None = None,
    domains: tuple[str, ...] = (),
    all_domains: bool = False,
    status: bool = False,
    windows: bool = False,
    domains_from: str | None = None,
    where: tuple[str, ...] = (),
) -> RunConfig:
    """The options of a run over files or domains as one immutable configuration; raise
    ``UsageError``."""
    if where and domains_from is None:
        raise UsageError("--where filters the records of --domains-from FILE; add it")
    if domains_from is not None:
        if domains or all_domains:
            other = "--domain" if domains else "--all-domains"
            raise UsageError(f"--domains-from and {other} contradict each other; pick one")
        from xmlnest.cli.names import read_names

        domains = read_names(domains_from, where)
    libvirt = connect is not None or bool(domains) or all_domains or domains_from is not None
    if libvirt:
        _check_libvirt_options(
            paths=paths,
            connect=connect,
            domains=domains if domains_from is None else (),
            all_domains=all_domains or domains_from is not None,  # a list of any length
            output_dir=output_dir,
            stdout=not (check or diff_format or in_place),
            status=status,
        )
    if host_root is not None and arch != "auto" and not libvirt:
        raise UsageError(
            "--host-root goes with --host-check, with domains by name (the host behind a "
            "local URI) or with --arch auto (whose x86 vendor guess it reads); drop it"
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
    check_cpu_choices(
        model=model,
        passthrough=passthrough,
        host_model=host_model,
        disable=disable,
        level=level,
        names=FLAGS,
    )
    if in_place and check:
        raise UsageError("--in-place and --check contradict each other; pick one")
    if in_place and output_dir:
        raise UsageError("--in-place and --output-dir contradict each other; pick one")
    target = ARCH_ALIASES[arch]
    if level == "l2" and target in ("intel", "amd", "ibmz"):
        raise UsageError(f"--level l2 with --arch {arch}: L3 guests are not expected to work")
    if host_model and target in ("power9", "ibmz"):
        raise UsageError(f"--host-model applies to Intel and AMD CPUs, not to --arch {arch}")
    if windows and target in ("power9", "ibmz"):
        raise UsageError(f"--windows readies Intel and AMD L1s, not --arch {arch}")
    output = _output(check=check, diff=diff_format, in_place=in_place, output_dir=output_dir)
    args = [] if libvirt else (list(paths) or [STDIN])
    folders = folders_among(args)
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
    return RunConfig(
        options=options_for(
            target,
            model,
            passthrough,
            level,
            disable=disable,
            host_model=host_model,
            windows=windows,
            schema_dir=schema_dir,
        ),
        output=output,
        diff=diff_format,
        output_dir=output_dir,
        paths=tuple(args),
        folders=folders,
        include=include,
        exclude=exclude,
        validation=choose("none" if no_validate else validate_kind, schema_dir),
        max_bytes=max_bytes,
        strict=strict,
        ignore=ignored_rules(ignore, "cli"),
        host_root=host_root,
        skip_non_domain=skip_non_domain,
        skip_unsupported=skip_unsupported,
        jobs=jobs,
        quiet=quiet,
        verbose=verbose,
        as_json=as_json,
        connect=connect,
        domains=domains,
        all_domains=all_domains,
        domains_from=domains_from,
    )


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
