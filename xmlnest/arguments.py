"""The public API's keyword arguments checked into engine ``Options``, and engine hints
reworded to name those arguments rather than the CLI's flags (an API caller cannot pass
``--arch``; it can pass ``arch='intel'``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Literal

from xmlnest.engine.plan import Finding
from xmlnest.engine.transforms import ARCH_ALIASES
from xmlnest.engine.validate import Validator, choose
from xmlnest.errors import UsageError, XmlnestError
from xmlnest.model import Options

# How each CPU choice is spelled to the caller: this API's keywords (the CLI its flags).
API_NAMES = {
    "model": "model",
    "passthrough": "passthrough",
    "host_model": "host_model",
    "disable": "disable",
    "level_l2": "level='l2'",
}


def check_cpu_choices(
    *,
    model: str | None,
    passthrough: bool,
    host_model: bool,
    disable: bool,
    level: str,
    names: dict[str, str] = API_NAMES,
) -> None:
    """Raise ``UsageError`` for CPU choices that contradict each other: the one place these
    conflicts are decided, for the API and the CLI (which passes its flags as ``names``).
    ``--disable`` takes none of the options that shape the enabling edit; host-model
    contradicts the other CPU choices (``l1`` is the default level: only ``l2`` conflicts)."""
    n = names
    if model is not None and not model.strip():
        raise UsageError(f"{n['model']} needs a CPU model name")
    if model and passthrough:
        raise UsageError(f"{n['model']} and {n['passthrough']} contradict each other; pick one")
    if disable:
        for key, given in (
            ("model", model is not None),
            ("passthrough", passthrough),
            ("host_model", host_model),
            ("level_l2", level == "l2"),
        ):
            if given:
                raise UsageError(
                    f"{n['disable']} and {n[key]} contradict each other: {n[key]} shapes the "
                    "enabling edit; drop one"
                )
    if host_model and (model is not None or passthrough):
        other = n["model"] if model is not None else n["passthrough"]
        raise UsageError(f"{n['host_model']} and {other} contradict each other; pick one")


def checked_options(
    arch: str,
    model: str | None,
    passthrough: bool,
    level: str,
    *,
    disable: bool = False,
    host_model: bool = False,
    windows: bool = False,
    schema_dir: str | None = None,
) -> Options:
    """The API's keywords checked (``UsageError``, in the API's words) into Options."""
    target = ARCH_ALIASES.get(arch)
    if target is None:
        choices = ", ".join(sorted(ARCH_ALIASES))
        raise UsageError(f"arch={arch!r} is not one of {choices}")
    if level not in ("l1", "l2"):
        raise UsageError(f"level={level!r} is not l1 or l2")
    check_cpu_choices(
        model=model, passthrough=passthrough, host_model=host_model, disable=disable, level=level
    )
    if windows and target in ("power9", "ibmz"):
        raise UsageError(f"windows=True readies Intel and AMD L1s, not arch={arch!r}")
    return options_for(
        target,
        model,
        passthrough,
        level,
        disable=disable,
        host_model=host_model,
        windows=windows,
        schema_dir=schema_dir,
    )


def options_for(
    target: str,
    model: str | None,
    passthrough: bool,
    level: str,
    *,
    disable: bool = False,
    host_model: bool = False,
    windows: bool = False,
    schema_dir: str | None = None,
) -> Options:
    """Options from choices already checked (by :func:`checked_options`, or the CLI's
    configuration), with what the installed libvirt knows: its cpu_map's x86 models (for
    ``model``) and the ``<hyperv>`` children its RelaxNG under ``schema_dir`` (else where
    validation looks) accepts (for ``windows``), whether or not the run validates: an
    enlightenment the target libvirt refuses is never written."""
    accepted = None
    if windows and not disable:
        import os

        from xmlnest.engine.validate import hyperv_children

        accepted = hyperv_children(schema_dir, os.environ)
    known_models = None
    if model is not None:
        from xmlnest.engine.cpumap import x86_models

        known_models = x86_models()
    return Options(
        arch=target,
        model=model,
        passthrough=passthrough,
        level=level,
        known_models=known_models,
        disable=disable,
        host_model=host_model,
        windows=windows,
        hyperv_accepted=accepted,
    )


# The CLI's flags as this API spells them: engine hints are written for the command line.
_API_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (r"--arch (intel\|amd)", r"arch='intel' or arch='amd'"),
        (r"--arch intel or --arch amd", "arch='intel' or arch='amd'"),
        (r"--arch (intel, amd, power9 or ibmz)", r"arch= one of \1"),
        (r"--arch auto, or the --arch that", "arch='auto', or the arch that"),
        (r"--arch ([\w-]+)", r"arch='\1'"),
        (r"--model/--passthrough", "model=NAME or passthrough=True"),
        (r"--model NAME", "model=NAME"),
        (r"--host-model", "host_model=True"),
        (r"--passthrough", "passthrough=True"),
        (r"drop --level l2", "use level='l1'"),
        (r"xmlnest --level l2 (\S+)", r"transform(\1, level='l2')"),
        (r"--level l2", "level='l2'"),
        (r"--disable", "disable=True"),
        (r"see xmlnest --explain (XN\d+)", r"see xmlnest.explain('\1')"),
        (r"raise it with --max-bytes if this really is a domain", "is this really a domain?"),
        (r"run xmlnest again", "convert it again"),
        (r"xmlnest --host-check", "xmlnest.host_check()"),
    )
)


def api_words(text: str) -> str:
    """A hint written for the CLI with this API's parameter names for its flags."""
    if "--" not in text:
        return text
    for pattern, words in _API_WORDS:
        text = pattern.sub(words, text)
    return text


def reworded(exc: XmlnestError) -> XmlnestError:
    """``exc`` with its problem and hint in this API's words (changed in place)."""
    exc.problem = api_words(exc.problem)
    exc.hint = api_words(exc.hint)
    return exc


def reworded_finding(f: Finding) -> Finding:
    if "--" not in f.hint and "--" not in f.message:
        return f
    return f._replace(message=api_words(f.message), hint=api_words(f.hint))


@functools.cache
def compiled(kind: str, schema_dir: str | None = None) -> Validator | None:
    """One compiled schema per kind (and folder) per process (domain.rng costs ~0.1 s)."""
    if kind not in ("auto", "rng", "xsd", "none"):
        raise UsageError(f"validate={kind!r} is not auto, rng, xsd or none")
    return choose(kind, schema_dir).make_validator()


def ignored_rules(values: Iterable[str], wording: Literal["api", "cli"]) -> frozenset[str]:
    """The warning and note rule ids to leave out (``--ignore`` / ``ignore``: ids, or
    comma-separated lists of them, any case); an unknown or error rule is a UsageError
    (errors refuse an input for a reason no flag can waive)."""
    wanted = {v.strip().upper() for value in values for v in value.split(",") if v.strip()}
    if not wanted:
        return frozenset()
    from xmlnest.engine.rules import RULES  # the rule table loads only for an ignore

    flag = "--ignore " if wording == "cli" else "ignore: "
    for rule_id in sorted(wanted):
        rule = RULES.get(rule_id)
        if rule is None:
            raise UsageError(f"{flag}{rule_id}: no such rule; see xmlnest --list-rules")
        if rule.level == "error":
            why = (
                f"see xmlnest --explain {rule_id}"
                if wording == "cli"
                else ("only warnings and notes can")
            )
            raise UsageError(
                f"{flag}{rule_id}: {rule_id} is an error ({rule.title}) and cannot be "
                f"ignored; {why}"
            )
    return frozenset(wanted)
