"""Bytes in, bytes out: parse, plan, render, verify. Pure apart from the schema.

Each step calls down, never back up: :mod:`document` parses, :mod:`transforms` plans,
:mod:`lossless` renders, :mod:`verify` checks the output before it leaves. What is known
of the host comes in as a value (:class:`HostFacts`); a plan that needs more raises
:class:`HostFactNeeded` for the caller to answer (``xmlnest.convert`` does).
"""

from __future__ import annotations

from typing import NamedTuple

from xmlnest.engine import document, transforms, verify
from xmlnest.engine.document import DEFAULT_MAX_BYTES, Source
from xmlnest.engine.lossless.render import render
from xmlnest.engine.plan import Finding, Plan
from xmlnest.engine.problems import Validator
from xmlnest.model import NO_HOST, HostFacts, Options


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
    host: HostFacts = NO_HOST,
    validator: Validator | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Outcome:
    """Transform one domain; raise an :class:`XmlnestError` subclass to refuse it.

    ``host``: what is known of the host the domain runs on (its vendor; with a libvirt
    connection, what it offers guests: the advice warns, XN219, when it lacks the
    nesting feature).
    """
    outcome = transform(raw, options, host=host, max_bytes=max_bytes)
    return validated(outcome, validator)


def transform(
    raw: bytes,
    options: Options,
    *,
    host: HostFacts = NO_HOST,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Outcome:
    """:func:`process` up to the schema: every check but validity has passed. Not final
    until :func:`validated` has seen it (a runner validates a few outcomes at a time:
    libxml2's schema stays in the CPU's caches from one to the next)."""
    source = document.parse(raw, max_bytes=max_bytes)
    plan = transforms.plan(source.root, options, host)
    if plan.empty:
        return Outcome(source, plan, raw, plan.findings, source)
    index = plan.index_of(source.root)
    edits = plan.edits
    text = render(source.text, edits, index.expand(edits), len(index), index.opened(edits))
    output = document.encode(source, text)
    rendered = document.reparse(source, output, text)
    verify.check_meaning(source, plan, rendered)
    replan = transforms.plan(rendered.root, options, host, advice=False)
    verify.check_idempotent(replan)
    return Outcome(source, plan, output, plan.findings, rendered)


def validated(outcome: Outcome, validator: Validator | None) -> Outcome:
    """The outcome of :func:`transform` with the schema's word: raise if the output fails
    a schema its input passes, add a note (XN211) if both fail it."""
    if outcome.plan.empty or validator is None:
        return outcome
    found = verify.check_valid(outcome.source, outcome.result, validator)
    return outcome._replace(findings=outcome.findings + found) if found else outcome
