"""Every command-line option once, as data: the click command is built from it, and so is
a fast reader for everyday argument lists.

click costs ~10 ms to import even after lxml (``uuid``, ``platform``, ``datetime``,
``gettext`` and its own modules), a sixth of a whole ``virsh dumpxml vm | xmlnest |
virsh define`` run. So ``read_fast`` reads the argument lists
pipes and hooks use (known options, ``--opt value`` / ``--opt=value``, paths) with the same
table, and returns ``None`` for anything else — help, version, unknown or malformed options,
``--``, bundled short flags, shell completion — which then goes to click, the one
authority on the command line. A test checks that both readers agree on every list the
fast one accepts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from xmlnest import __version__
from xmlnest.transforms import ARCH_ALIASES

if TYPE_CHECKING:
    import click

ARCH_CHOICES = tuple(sorted(ARCH_ALIASES))

EXIT_CODES_HELP = """\b
Exit codes:
  0  success (files rewritten included)
  1  --check: at least one input would change
  2  usage error
  3  at least one input was rejected (unreadable, malformed, not a domain,
     arch mismatch, refused by a rule, or output that would be schema-invalid)
  130  interrupted (Ctrl-C); files already rewritten are complete
"""

HELP = """Enable nested virtualization in libvirt domain XML (or, with --disable, turn it off).

Reads PATH... (files or folders; none or '-' for stdin), makes the edits the
domain's architecture needs, validates the result and writes the XML (one input),
the files in place (-i), a diff (--diff) or only a verdict (--check).
"""


class Opt(NamedTuple):
    """One option. ``kind``: flag, text, choice, int (with ``minimum``), multiple (text,
    repeatable) or optional (a choice whose bare form means ``bare``)."""

    decls: tuple[str, ...]
    dest: str
    kind: str
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    metavar: str | None = None
    show_default: bool = False
    bare: str | None = None


OPTIONS: tuple[Opt, ...] = (
    Opt(
        ("--arch",),
        "arch",
        "choice",
        "Target architecture; auto reads <os><type arch>.",
        default="auto",
        choices=ARCH_CHOICES,
        show_default=True,
    ),
    Opt(
        ("--model",),
        "model",
        "text",
        "x86: use this named CPU model (custom mode).",
        metavar="NAME",
    ),
    Opt(("--passthrough",), "passthrough", "flag", "Force host-passthrough, even over a model."),
    Opt(
        ("--host-model",),
        "host_model",
        "flag",
        "x86: keep (or make) host-model and require vmx/svm in it (migratable), instead of "
        "host-passthrough.",
    ),
    Opt(
        ("--disable",),
        "disable",
        "flag",
        "Turn nesting off: disable vmx/svm in <cpu>, nested-hv off on POWER9 (IBM Z: a "
        "host setting, nothing to edit).",
    ),
    Opt(("--check",), "check", "flag", "Write nothing; exit 1 if any input would change."),
    Opt(
        ("--diff",),
        "diff_format",
        "optional",
        "Print a diff instead of XML (--diff=json: one JSON object per input).",
        choices=("unified", "json"),
        bare="unified",
    ),
    Opt(("-i", "--in-place"), "in_place", "flag", "Rewrite changed files atomically."),
    Opt(
        ("--schema-dir",),
        "schema_dir",
        "text",
        "Folder holding libvirt's domain.rng.",
        metavar="DIR",
    ),
    Opt(
        ("--validate",),
        "validate_kind",
        "choice",
        "Schema to check changed outputs with.",
        default="auto",
        choices=("auto", "rng", "xsd", "none"),
        show_default=True,
    ),
    Opt(("--no-validate",), "no_validate", "flag", "Same as --validate none."),
    Opt(("--strict",), "strict", "flag", "Treat warnings as errors (exit 3)."),
    Opt(
        ("--max-bytes",),
        "max_bytes",
        "int",
        "Refuse inputs larger than this.",
        default=16 * 1024 * 1024,
        minimum=1,
        show_default=True,
    ),
    Opt(
        ("--host-root",),
        "host_root",
        "text",
        "Read the host's /proc and /sys under DIR (tests, captured hosts).",
        default="/",
        metavar="DIR",
        show_default=True,
    ),
    Opt(
        ("--level",),
        "level",
        "choice",
        "l2: the same edit for a POWER9 L2 guest (refused on x86: no L3).",
        default="l1",
        choices=("l1", "l2"),
        show_default=True,
    ),
    Opt(("--include",), "include", "multiple", "Walk only files matching GLOB.", metavar="GLOB"),
    Opt(("--exclude",), "exclude", "multiple", "Skip walked files matching GLOB.", metavar="GLOB"),
    Opt(
        ("-j", "--jobs"),
        "jobs",
        "int",
        "Parallel processes (default: the CPU count for many files).",
        default=0,
        minimum=0,
    ),
    Opt(
        ("-o", "--output-dir"),
        "output_dir",
        "text",
        "Write converted copies under DIR, mirroring the input tree.",
        metavar="DIR",
    ),
    Opt(
        ("--skip-non-domain",),
        "skip_non_domain",
        "flag",
        "Skip named XML files that are not <domain> (as folder walks do); for hooks.",
    ),
    Opt(("--host-check",), "host_check", "flag", "Report whether this host (L0) can nest."),
    Opt(("--json",), "as_json", "flag", "With --host-check: JSON output."),
    Opt(
        ("--explain",), "explain", "text", "Print a rule's full text (e.g. XN104).", metavar="RULE"
    ),
    Opt(("-q", "--quiet"), "quiet", "flag", "Only errors on stderr."),
    Opt(("-v", "--verbose"), "verbose", "flag", "Also show info-level notes."),
)

_BY_NAME = {decl: opt for opt in OPTIONS for decl in opt.decls}
COMPLETION_ENV = "_XMLNEST_COMPLETE"  # click's shell completion: click's business


def defaults() -> dict[str, Any]:
    """The keyword arguments of a run with no options (``paths`` empty)."""
    out: dict[str, Any] = {"paths": ()}
    for opt in OPTIONS:
        if opt.kind == "flag":
            out[opt.dest] = False
        elif opt.kind == "multiple":
            out[opt.dest] = ()
        else:
            out[opt.dest] = opt.default
    return out


def read_fast(args: Sequence[str]) -> dict[str, Any] | None:
    """The run's keyword arguments for an everyday argument list, or ``None`` to let click
    read it. Never guesses: whatever click might read differently goes to click."""
    if COMPLETION_ENV in os.environ:
        return None
    kw = defaults()
    paths: list[str] = []
    multiple: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "-" or not arg.startswith("-"):
            paths.append(arg)
            continue
        name, eq, attached = arg.partition("=")
        opt = _BY_NAME.get(name)
        if opt is None or (eq and not name.startswith("--")):
            return None  # unknown, bundled (-qi), attached short value (-j2), --help, --
        if opt.kind == "flag":
            if eq:
                return None
            kw[opt.dest] = True
            continue
        if opt.kind == "optional" and not eq:
            kw[opt.dest] = opt.bare
            continue
        if eq:
            value = attached
        elif i < len(args) and not args[i].startswith("-"):
            value = args[i]
            i += 1
        else:
            return None  # a missing value, or one click might read as an option
        parsed = _value(opt, value)
        if parsed is None:
            return None  # let click word the error
        if opt.kind == "multiple":
            multiple.setdefault(opt.dest, []).append(value)
        else:
            kw[opt.dest] = parsed
    kw["paths"] = tuple(paths)
    for dest, values in multiple.items():
        kw[dest] = tuple(values)
    return kw


def _value(opt: Opt, value: str) -> object | None:
    if opt.kind in ("choice", "optional"):
        return value if value in opt.choices else None
    if opt.kind == "int":
        if not value.isascii() or not value.isdigit():
            return None
        number = int(value)
        return number if opt.minimum is None or number >= opt.minimum else None
    return value


def click_command(run: Callable[..., int]) -> click.Command:
    """The click command over ``run``, built from :data:`OPTIONS` (imports click)."""
    import click

    def command(**kw: object) -> int:
        return run(**kw)

    command.__doc__ = HELP
    # Decorators apply innermost first: this keeps the help in the order of the table.
    decorated: Callable[..., Any] = click.version_option(__version__, prog_name="xmlnest")(command)
    for opt in reversed(OPTIONS):
        decorated = click.option(*opt.decls, opt.dest, **_click_settings(opt))(decorated)
    decorated = click.argument("paths", nargs=-1, type=str)(decorated)
    return click.command(
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        epilog=EXIT_CODES_HELP,
    )(decorated)


def _click_settings(opt: Opt) -> dict[str, Any]:
    import click

    settings: dict[str, Any] = {"help": opt.help, "metavar": opt.metavar}
    if opt.show_default:
        settings["show_default"] = True
    if opt.kind == "flag":
        settings["is_flag"] = True
    elif opt.kind == "multiple":
        settings["multiple"] = True
    elif opt.kind == "choice":
        settings.update(type=click.Choice(opt.choices), default=opt.default)
    elif opt.kind == "optional":
        settings.update(
            type=click.Choice(opt.choices), is_flag=False, flag_value=opt.bare, default=None
        )
    elif opt.kind == "int":
        settings.update(type=click.IntRange(min=opt.minimum), default=opt.default)
    else:
        settings["default"] = opt.default
    return settings
