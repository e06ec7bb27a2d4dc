"""The checks every output passes before it leaves: meaning, idempotence, schema validity.

The rendered bytes must mean exactly the planned edit of the source (compared with the
plan applied to an lxml model of the source, :mod:`expected`, whitespace aside), a
second plan over them must be empty, and the schema must not reject an output whose
input it accepted.
"""

from __future__ import annotations

from xmlnest.engine.document import Source
from xmlnest.engine.expected import Expected
from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Finding, Plan
from xmlnest.engine.problems import SchemaProblem, Validator
from xmlnest.errors import ValidationError, XmlnestError

# Meaning


def check_meaning(source: Source, plan: Plan, rendered: Source) -> None:
    """Raise unless the rendered document means exactly the planned edit of the source.

    The root and the sequence of its children must agree, and every child of the root
    that an edit reached must agree node by node, blank text aside. (Children no edit
    reached were copied as source slices; an edit that landed in the wrong place shows
    up as the planned change missing where it was meant to be.)
    """
    expected = Expected(source.root, plan.index_of(source.root), plan.edits)
    if not expected.matches(rendered.root):
        raise XmlnestError(
            "internal error: the rewritten XML does not match the planned edit",
            hint="nothing was written; please report this input",
        )


# Idempotence


def check_idempotent(replan: Plan) -> None:
    """Raise unless ``replan``, the plan of the rendered output, is empty."""
    if not replan.empty:
        raise XmlnestError(
            "internal error: a second run would change the output again",
            hint="nothing was written; please report this input",
        )


# Schema validity


def check_valid(
    source: Source, rendered: Source, validator: Validator | None
) -> tuple[Finding, ...]:
    """Raise if the output fails a schema its input passes; a note if both fail it."""
    if validator is None:
        return ()
    after = validator.problems(rendered.root)
    if not after:
        return ()
    before = validator.problems(source.root)
    if not before:
        raise ValidationError(
            f"the result would not validate against {validator.name}: {after[0].message}",
            hint=rule_hint("XN110"),
            line=_first_line(after),
            rule="XN110",
        )
    return (
        Finding(
            "XN211",
            f"the input already fails {validator.name}: {before[0].message}",
            hint=rule_hint("XN211"),
            line=_first_line(before),
        ),
    )


def _first_line(problems: list[SchemaProblem]) -> int | None:
    """libxml2 often gives the first RelaxNG error no line and the next one the line of
    the element that failed: report the first line any of them names."""
    return next((p.line for p in problems if p.line), None)
