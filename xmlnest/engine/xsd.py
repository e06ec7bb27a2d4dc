"""Validation against the bundled XML Schema, for machines without libvirt's RelaxNG schemas.

``schemas/domain-nested.xsd`` (shipped as ``xmlnest.schemas``) is an XML Schema 1.1
covering the parts of a libvirt ``<domain>`` that nested virtualization touches:
``<os>/<type>``, ``<cpu>`` (mode, match, check, model, vendor, feature policies,
topology), ``<features>/<nested-hv>`` and ``<memoryBacking>/<hugepages>``; everything
else is a lax wildcard, so it never rejects what libvirt accepts. Beyond libvirt's
RelaxNG it states the rules libvirt checks only in its C parser: unique feature names
per ``<cpu>`` (xs:unique), no ``<feature>`` in custom mode without a ``<model>``, no
``<vendor>`` without a ``<model>``, ``migratable`` only with host-passthrough/maximum
(xs:assert).

``XsdValidator`` builds the schema once (the slow part, ~0.15 s) and reports every
problem of a tree with the source line of the offending element. ``xmlschema`` is
imported only when a validator is built, never at module import time.
"""

from __future__ import annotations

import ast
import io
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xmlnest.engine.problems import SchemaProblem

if TYPE_CHECKING:
    from lxml import etree
    from xmlschema.validators.exceptions import XMLSchemaValidationError

SCHEMA_PACKAGE = "xmlnest.schemas"
SCHEMA_FILE = "domain-nested.xsd"
# Foreign attribute on xs:assert / xs:unique carrying the one-line message to report.
MESSAGE_ATTR = "{urn:xmlnest:schema-messages}message"
_XS = "{http://www.w3.org/2001/XMLSchema}"

_PREDICATE = re.compile(r"\[[^\]]*\]")
_DUPLICATE = re.compile(r"^duplicated value (\(.*\)) for \w+\(name='([^']+)'\)")


def schema_bytes() -> bytes:
    """The bundled XSD: the installed package data, else the source checkout's file."""
    try:
        return (resources.files(SCHEMA_PACKAGE) / SCHEMA_FILE).read_bytes()
    except ModuleNotFoundError:  # running from a source checkout, not installed
        return (Path(__file__).resolve().parent.parent / "schemas" / SCHEMA_FILE).read_bytes()


class XsdValidator:
    """Validates a domain tree against the bundled XML Schema 1.1."""

    name = "bundled XSD"

    def __init__(self) -> None:
        import xmlschema  # heavy: keep it off the start-up path

        self._schema = xmlschema.XMLSchema11(io.BytesIO(schema_bytes()))
        self._identity_messages = _identity_messages(self._schema.root)

    def problems(self, root: etree._Element) -> list[SchemaProblem]:
        """All problems of the tree under ``root``, in document order; empty if valid."""
        found: list[SchemaProblem] = []
        # lxml elements satisfy xmlschema's ElementProtocol at run time; the stubs disagree.
        source: Any = root
        for error in self._schema.iter_errors(source):
            problem = SchemaProblem(_line(error), self._message(error))
            if problem not in found:
                found.append(problem)
        return found

    def _message(self, error: XMLSchemaValidationError) -> str:
        where = _where(error.path)
        custom = _custom_message(error.validator)
        if custom is not None:
            return custom
        reason = " ".join(str(error.reason or error.msg).split())
        duplicate = _DUPLICATE.match(reason)
        if duplicate is not None:
            return self._duplicate_message(where, duplicate.group(1), duplicate.group(2))
        children = _children_message(error)
        if children is not None:
            return f"{where}: {children}"
        reason = reason.removesuffix(" for element").rstrip(".")
        return f"{where}: {reason}"

    def _duplicate_message(self, where: str, fields: str, identity: str) -> str:
        try:
            value = ", ".join(str(v) for v in ast.literal_eval(fields))
        except (ValueError, SyntaxError, TypeError):
            value = fields
        template = self._identity_messages.get(identity)
        if template is None:
            return f"{where}: value '{value}' is given more than once"
        return template.replace("{value}", value)


def _identity_messages(schema_root: Any) -> dict[str, str]:
    """Map xs:unique/xs:key names to the message template in their xn:message."""
    messages: dict[str, str] = {}
    for tag in ("unique", "key"):
        for node in schema_root.iter(_XS + tag):
            message = node.get(MESSAGE_ATTR)
            if message:
                messages[node.get("name", "")] = message
    return messages


def _custom_message(validator: Any) -> str | None:
    """The schema author's message for an assertion (xn:message), if any."""
    from xmlschema.validators import XsdAssert

    if not isinstance(validator, XsdAssert):
        return None
    text = validator.elem.get(MESSAGE_ATTR)
    return str(text) if text else None


def _children_message(error: XMLSchemaValidationError) -> str | None:
    """Short text for a content-model error (unexpected or missing child), else None."""
    from xmlschema.validators.exceptions import XMLSchemaChildrenValidationError

    if not isinstance(error, XMLSchemaChildrenValidationError):
        return None
    child = error.invalid_child
    if child is None:
        expected = ", ".join(f"<{tag}>" for tag in error.expected_tags)
        return f"missing required element {expected}" if expected else "content is incomplete"
    tag = str(child.tag)
    if tag in _declared_names(error.validator):
        return f"<{tag}> may appear only once here"
    return f"unexpected element <{tag}>"


def _declared_names(group: Any) -> set[str]:
    """Names of the elements a content model declares (its wildcard excluded)."""
    iter_elements = getattr(group, "iter_elements", None)
    if iter_elements is None:
        return set()
    return {str(element.name) for element in iter_elements() if element.name is not None}


def _line(error: XMLSchemaValidationError) -> int | None:
    """Source line of the element the error is about (the bad child for content errors)."""
    child = getattr(error, "invalid_child", None)
    line = getattr(child, "sourceline", None) if child is not None else None
    if line is None:
        line = error.sourceline
    return line if isinstance(line, int) else None


def _where(path: str | None) -> str:
    """``/domain/cpu/feature[2]`` -> ``cpu/feature``; the root itself stays ``domain``."""
    if not path:
        return "domain"
    steps = [step for step in _PREDICATE.sub("", path).split("/") if step]
    if len(steps) > 1 and steps[0] == "domain":
        steps = steps[1:]
    return "/".join(steps) or "domain"
