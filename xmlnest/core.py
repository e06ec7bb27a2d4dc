"""Bytes in, bytes out: parse, plan, render, verify, validate. Pure apart from the schema.

The output leaves only after three checks: the rendered bytes mean the planned edit, a
second plan over them is empty (idempotence), and the schema does not reject an output
whose input it accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from xmlnest import document, transforms
from xmlnest.document import DEFAULT_MAX_BYTES, Source
from xmlnest.errors import ValidationError, XmlnestError
from xmlnest.lossless import render
from xmlnest.plan import Finding, Plan
from xmlnest.transforms.common import Options, Vendor
from xmlnest.validate import SchemaProblem, Validator


class Outcome(NamedTuple):
    source: Source
    plan: Plan
    output: bytes
    findings: tuple[Finding, ...]
    result: Source  # the output, parsed (the source itself when nothing changed)

    @property
    def changed(self) -> bool:
        return self.output != self.source.raw


def process(
    raw: bytes,
    options: Options,
    *,
    host_vendor: Callable[[], Vendor | None] = lambda: None,
    validator: Validator | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Outcome:
    """Transform one domain; raise an :class:`XmlnestError` subclass to refuse it."""
    source = document.parse(raw, max_bytes=max_bytes)
    plan = transforms.plan(source.root, options, host_vendor)
    if plan.empty:
        return Outcome(source, plan, raw, plan.findings, source)
    output = render.render(source, plan)
    rendered = document.parse(output, max_bytes=max(max_bytes, len(output)))
    render.check_meaning(source, plan, rendered)
    if not transforms.plan(rendered.root, options, host_vendor, advice=False).empty:
        raise XmlnestError(
            "internal error: a second run would change the output again",
            hint="nothing was written; please report this input",
        )
    findings = plan.findings
    if validator is not None:
        findings += _validate(source, rendered, validator)
    return Outcome(source, plan, output, findings, rendered)


def _validate(source: Source, rendered: Source, validator: Validator) -> tuple[Finding, ...]:
    after = validator.problems(rendered.root)
    if not after:
        return ()
    before = validator.problems(source.root)
    if not before:
        raise ValidationError(
            f"the result would not validate against {validator.name}: {after[0].message}",
            hint="nothing was written; the input was valid, so this is a bug or a rule the "
            "edit broke — please report it, or use --no-validate to override",
            line=_first_line(after),
            rule="XN110",
        )
    return (
        Finding(
            "XN211",
            f"the input already fails {validator.name}: {before[0].message}",
            hint="the nesting edit does not depend on that; fix the input for libvirt to accept it",
            line=_first_line(before),
        ),
    )


def _first_line(problems: list[SchemaProblem]) -> int | None:
    """libxml2 often gives the first RelaxNG error no line and the next one the line of
    the element that failed: report the first line any of them names."""
    return next((p.line for p in problems if p.line), None)
