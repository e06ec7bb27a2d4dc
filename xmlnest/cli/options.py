"""Every command-line option once, as data, and the click command built from it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from xmlnest import __version__
from xmlnest.cli.report import help_epilog
from xmlnest.engine.transforms import ARCH_ALIASES

if TYPE_CHECKING:
    import click

ARCH_CHOICES = tuple(sorted(ARCH_ALIASES))


HELP = """Enable nested virtualization in libvirt domain XML (or, with --disable, turn it off).

Reads PATH... (files or folders; none or '-' for stdin), makes the edits the
domain's architecture needs, validates the result and writes the XML (one input),
the files in place (-i), a diff (--diff) or only a verdict (--check).

\b
Convert a VM's stored definition (never the live XML of a running VM):
  xmlnest -c qemu:///system --domain NAME -i
or, defining nothing when xmlnest refuses (--security-info keeps passwords):
  set -o pipefail
  xml=$(virsh dumpxml --inactive --security-info NAME | xmlnest) &&
    printf '%s\\n' "$xml" | virsh define --validate /dev/stdin
The new CPU takes effect after a full power-off (virsh shutdown NAME, then
virsh start NAME); a reboot or reset keeps the old one.
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
    complete: str | None = None  # shell completion of the value: dir, rule or ignorable


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
        "host-passthrough; POWER9 and IBM Z domains get their own edit.",
    ),
    Opt(
        ("--windows",),
        "windows",
        "flag",
        "x86: ready the L1 to run the Windows hypervisor (Hyper-V, WSL2, Sandbox, VBS): "
        "also TSX off on Intel, the Hyper-V enlightenments and clock it needs "
        "(docs/windows.md).",
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
        complete="dir",
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
        ("--ignore",),
        "ignore",
        "multiple",
        "Turn off a warning or info rule (repeatable; comma lists too).",
        metavar="RULE",
        complete="ignorable",
    ),
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
        "With --host-check, domains by name on a local URI (the host's kernel) or --arch "
        "auto's vendor guess: read the host's /proc, /sys and /etc under DIR (captured "
        "hosts, tests) instead of /.",
        metavar="DIR",
        complete="dir",
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
    Opt(
        ("--exclude",),
        "exclude",
        "multiple",
        "Skip walked files, and folders, matching GLOB (a path below the folder, or a name: "
        "'old' skips every folder named old); a GLOB that matches nothing is a warning.",
        metavar="GLOB",
    ),
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
        complete="dir",
    ),
    Opt(
        ("--skip-non-domain",),
        "skip_non_domain",
        "flag",
        "Skip named XML files that are not <domain> (as folder walks do); for hooks.",
    ),
    Opt(
        ("--skip-unsupported",),
        "skip_unsupported",
        "flag",
        "Skip (and count) domains that cannot nest by their type or arch (XN101, XN102, "
        "XN109: ARM, Xen, LXC, TCG, powernv) instead of refusing them; other refusals stay "
        "errors.",
    ),
    Opt(
        ("-c", "--connect"),
        "connect",
        "text",
        "libvirt URI for --domain/--all-domains/--status (default: libvirt's own, "
        "LIBVIRT_DEFAULT_URI included).",
        metavar="URI",
    ),
    Opt(
        ("--domain",),
        "domains",
        "multiple",
        "Convert this libvirt domain's stored definition (name or UUID; repeatable); "
        "-i defines the result back.",
        metavar="NAME",
    ),
    Opt(("--all-domains",), "all_domains", "flag", "Every persistent domain on the connection."),
    Opt(
        ("--domains-from",),
        "domains_from",
        "text",
        "The domains named in FILE ('-': stdin): one name per line, or JSON Lines with a "
        "'name' key as --status --json prints them.",
        metavar="FILE",
    ),
    Opt(
        ("--where",),
        "where",
        "multiple",
        "With --domains-from JSON Lines: only records whose KEY is VALUE (repeatable), e.g. "
        "--where stored=nested.",
        metavar="KEY=VALUE",
    ),
    Opt(
        ("--status",),
        "status",
        "flag",
        "Report the domains' nesting state (stored and running definition); changes nothing.",
    ),
    Opt(("--host-check",), "host_check", "flag", "Report whether this host (L0) can nest."),
    Opt(
        ("--json",),
        "as_json",
        "flag",
        "With --check, -i or -o: one JSON object per input on stdout (JSON Lines); with "
        "--host-check: the report as JSON.",
    ),
    Opt(
        ("--explain",),
        "explain",
        "text",
        "Print a rule's full text (e.g. XN104).",
        metavar="RULE",
        complete="rule",
    ),
    Opt(("--list-rules",), "list_rules", "flag", "List every rule with its level."),
    Opt(("-q", "--quiet"), "quiet", "flag", "Only errors on stderr."),
    Opt(("-v", "--verbose"), "verbose", "flag", "Also show info-level notes."),
)


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
    paths = click.argument("paths", nargs=-1, type=str, shell_complete=_complete("file"))
    decorated = paths(decorated)
    return click.command(
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        epilog=help_epilog(),
    )(decorated)


def _click_settings(opt: Opt) -> dict[str, Any]:
    import click

    settings: dict[str, Any] = {"help": opt.help, "metavar": opt.metavar}
    if opt.complete:
        settings["shell_complete"] = _complete(opt.complete)
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


def _complete(kind: str) -> Callable[[click.Context, click.Parameter, str], list[Any]]:
    """Shell completion of a value: the shell's own file or folder names (the values stay
    plain strings: a click.Path type would check each PATH before xmlnest does), or rule
    ids (``ignorable``: warnings and notes, as ``--ignore`` takes no error)."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        if kind in ("file", "dir"):
            return [CompletionItem(incomplete, type=kind)]
        from xmlnest.engine.rules import RULES

        return [
            CompletionItem(rule.id)
            for rule in sorted(RULES.values(), key=lambda r: r.id)
            if rule.id.startswith(incomplete.upper()) and (kind == "rule" or rule.level != "error")
        ]

    return complete
