"""IBM Z: domains the transform must leave alone, and the edits it plans for the rest.
Positions: domain 0, name 1, os 2, type 3, then the CPU's elements from 4 in document order.
"""

from __future__ import annotations

import pytest

from xmlnest.engine import document, transforms
from xmlnest.engine.plan import Edit, Remove, RemoveAttr, SetAttr
from xmlnest.model import Options

IBMZ = Options(arch="auto")
PASSTHROUGH = Options(arch="ibmz", passthrough=True)


def domain(cpu: str) -> bytes:
    return (
        "<domain type='kvm'><name>g</name>"
        f"<os><type arch='s390x' machine='s390-ccw-virtio'>hvm</type></os>{cpu}</domain>"
    ).encode()


def edits(cpu: str, options: Options) -> tuple[Edit, ...]:
    source = document.parse(domain(cpu))
    return transforms.plan(source.root, options).edits


NOOP: list[tuple[Options, str]] = [
    (IBMZ, ""),
    (IBMZ, "<cpu mode='host-model'/>"),
    (IBMZ, "<cpu mode='host-passthrough'/>"),
    (IBMZ, "<cpu mode='host-model'><feature policy='require' name='sief2'/></cpu>"),
    (IBMZ, "<cpu mode='host-model'><feature policy='disable' name='vx'/></cpu>"),
    (IBMZ, "<cpu mode='custom'><topology sockets='1' cores='2' threads='1'/></cpu>"),
    (PASSTHROUGH, "<cpu mode='host-passthrough'/>"),
    (PASSTHROUGH, "<cpu mode='maximum'/>"),
]

FIX: list[tuple[Options, str, tuple[Edit, ...]]] = [
    (IBMZ, "<cpu mode='host-model'><feature policy='disable' name='sief2'/></cpu>", (Remove(5),)),
    (
        IBMZ,
        "<cpu mode='custom' match='exact'><model>z14.2-base</model></cpu>",
        (SetAttr(4, "mode", "host-model"), RemoveAttr(4, "match"), Remove(5)),
    ),
    (IBMZ, "<cpu><model>z13</model></cpu>", (SetAttr(4, "mode", "host-model"), Remove(5))),
    (PASSTHROUGH, "<cpu mode='host-model'/>", (SetAttr(4, "mode", "host-passthrough"),)),
    (
        PASSTHROUGH,
        "<cpu mode='custom'><model>z14</model><feature policy='disable' name='sief2'/></cpu>",
        (SetAttr(4, "mode", "host-passthrough"), Remove(5), Remove(6)),
    ),
]


@pytest.mark.parametrize(("options", "cpu"), NOOP)
def test_noop(options: Options, cpu: str) -> None:
    assert edits(cpu, options) == ()


@pytest.mark.parametrize(("options", "cpu", "expected"), FIX)
def test_fix(options: Options, cpu: str, expected: tuple[Edit, ...]) -> None:
    assert edits(cpu, options) == expected
