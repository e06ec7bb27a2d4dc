"""POWER9 (pseries): domains the transform must leave alone, and the edits it plans for the
rest. Positions: domain 0, name 1, os 2, type 3, then the rest from 4 in document order.
"""

from __future__ import annotations

import pytest

from xmlnest.engine import document, transforms
from xmlnest.engine.plan import Edit, Insert, NewElement, SetAttr
from xmlnest.model import Options

L1 = Options(arch="auto")
L2 = Options(arch="power9", level="l2")
NESTED_HV = NewElement("nested-hv", (("state", "on"),))


def domain(rest: str) -> bytes:
    return (
        "<domain type='kvm'><name>g</name>"
        f"<os><type arch='ppc64le' machine='pseries'>hvm</type></os>{rest}</domain>"
    ).encode()


def edits(rest: str, options: Options) -> tuple[Edit, ...]:
    source = document.parse(domain(rest))
    return transforms.plan(source.root, options).edits


NOOP: list[tuple[Options, str]] = [
    (L1, "<features><nested-hv state='on'/></features>"),
    (L1, "<features><acpi/><nested-hv state='on'/></features><cpu mode='host-model'/>"),
    (L1, "<features><nested-hv state='on'/></features><cpu><model>POWER9</model></cpu>"),
    (L2, "<features><nested-hv state='on'/></features>"),
]

FIX: list[tuple[Options, str, tuple[Edit, ...]]] = [
    (L1, "", (Insert(0, NewElement("features", children=(NESTED_HV,))),)),
    (L2, "<cpu mode='host-model'/>", (Insert(0, NewElement("features", children=(NESTED_HV,))),)),
    (L1, "<features/>", (Insert(4, NESTED_HV),)),
    (L1, "<features><acpi/></features>", (Insert(4, NESTED_HV),)),
    (L1, "<features><nested-hv state='off'/></features>", (SetAttr(5, "state", "on"),)),
    (L1, "<features><nested-hv/></features>", (SetAttr(5, "state", "on"),)),
]


@pytest.mark.parametrize(("options", "rest"), NOOP)
def test_noop(options: Options, rest: str) -> None:
    assert edits(rest, options) == ()


@pytest.mark.parametrize(("options", "rest", "expected"), FIX)
def test_fix(options: Options, rest: str, expected: tuple[Edit, ...]) -> None:
    assert edits(rest, options) == expected
