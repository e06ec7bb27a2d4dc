"""Intel and AMD: domains the x86 transform must leave alone, and the edits it plans for the
rest (add-trailing-comma's tests/features are the model: a no-op list, a fix list).

Every domain is ``<domain><name/><os><type/></os>CPU</domain>``, so the positions edits name
are fixed: domain 0, name 1, os 2, type 3, then the CPU's elements from 4 in document order.
"""

from __future__ import annotations

import pytest

from xmlnest.engine import document, transforms
from xmlnest.engine.plan import Edit, Insert, NewElement, Remove, RemoveAttr, SetAttr, SetText
from xmlnest.model import HostFacts, Options, Vendor

INTEL = Options(arch="intel")
AMD = Options(arch="amd")
PASSTHROUGH = Options(arch="intel", passthrough=True)
SKYLAKE = Options(arch="intel", model="Skylake-Client")
VMX = NewElement("feature", (("policy", "require"), ("name", "vmx")))
SVM = NewElement("feature", (("policy", "require"), ("name", "svm")))


def domain(cpu: str) -> bytes:
    return (
        "<domain type='kvm'><name>g</name>"
        f"<os><type arch='x86_64' machine='q35'>hvm</type></os>{cpu}</domain>"
    ).encode()


def edits(cpu: str, options: Options) -> tuple[Edit, ...]:
    source = document.parse(domain(cpu))
    return transforms.plan(source.root, options).edits


NOOP: list[tuple[Options, str]] = [
    (INTEL, "<cpu mode='host-passthrough'/>"),
    (INTEL, "<cpu mode='maximum'/>"),
    (INTEL, "<cpu mode='host-passthrough' check='none' migratable='on'/>"),
    (INTEL, "<cpu mode='host-passthrough'><feature policy='require' name='vmx'/></cpu>"),
    (INTEL, "<cpu mode='host-passthrough'><feature policy='disable' name='avx'/></cpu>"),
    (
        INTEL,
        "<cpu mode='custom'><model>Haswell</model><feature policy='require' name='vmx'/></cpu>",
    ),
    (INTEL, "<cpu><model>Haswell</model><feature policy='force' name='vmx'/></cpu>"),
    (AMD, "<cpu mode='custom'><model>EPYC</model><feature policy='require' name='svm'/></cpu>"),
    (AMD, "<cpu mode='host-passthrough'/>"),
    (PASSTHROUGH, "<cpu mode='host-passthrough'/>"),
    (
        SKYLAKE,
        "<cpu mode='custom' match='exact' check='partial'><model fallback='allow'>"
        "Skylake-Client</model><feature policy='require' name='vmx'/></cpu>",
    ),
]

FIX: list[tuple[Options, str, tuple[Edit, ...]]] = [
    (INTEL, "", (Insert(0, NewElement("cpu", (("mode", "host-passthrough"),))),)),
    (INTEL, "<cpu mode='host-model'/>", (SetAttr(4, "mode", "host-passthrough"),)),
    (
        INTEL,
        "<cpu mode='host-model' match='exact'/>",
        (SetAttr(4, "mode", "host-passthrough"), RemoveAttr(4, "match")),
    ),
    (
        INTEL,
        "<cpu mode='custom'><topology sockets='1' cores='2' threads='1'/></cpu>",
        (SetAttr(4, "mode", "host-passthrough"),),
    ),
    (
        INTEL,
        "<cpu mode='host-passthrough'><feature policy='disable' name='vmx'/></cpu>",
        (Remove(5),),
    ),
    (
        AMD,
        "<cpu mode='maximum'><feature policy='disable' name='vmx'/>"
        "<feature policy='disable' name='svm'/></cpu>",
        (Remove(5), Remove(6)),
    ),
    (INTEL, "<cpu mode='custom'><model>Haswell</model></cpu>", (Insert(4, VMX),)),
    (AMD, "<cpu mode='custom'><model>EPYC</model></cpu>", (Insert(4, SVM),)),
    (
        INTEL,
        "<cpu mode='custom'><model>Haswell</model><feature policy='disable' name='vmx'/></cpu>",
        (SetAttr(6, "policy", "require"),),
    ),
    (
        INTEL,  # a feature without a policy gets one written out
        "<cpu mode='custom'><model>Haswell</model><feature name='vmx'/></cpu>",
        (SetAttr(6, "policy", "require"),),
    ),
    (
        INTEL,
        "<cpu mode='custom'><model>Haswell</model><feature policy='optional' name='vmx'/></cpu>",
        (SetAttr(6, "policy", "require"),),
    ),
    (
        INTEL,
        "<cpu mode='custom'><model>Haswell</model><feature policy='require' name='vmx'/>"
        "<feature policy='disable' name='vmx'/></cpu>",
        (Remove(7),),
    ),
    (
        PASSTHROUGH,
        "<cpu mode='custom' match='exact'><model>Haswell</model><vendor>Intel</vendor>"
        "<feature policy='disable' name='vmx'/></cpu>",
        (
            SetAttr(4, "mode", "host-passthrough"),
            RemoveAttr(4, "match"),
            Remove(5),
            Remove(6),
            Remove(7),
        ),
    ),
    (
        SKYLAKE,
        "",
        (
            Insert(
                0,
                NewElement(
                    "cpu",
                    (("mode", "custom"), ("match", "exact"), ("check", "partial")),
                    children=(
                        NewElement("model", (("fallback", "allow"),), text="Skylake-Client"),
                        VMX,
                    ),
                ),
            ),
        ),
    ),
    (
        SKYLAKE,
        "<cpu mode='host-model' migratable='off'/>",
        (
            SetAttr(4, "mode", "custom"),
            SetAttr(4, "match", "exact"),
            SetAttr(4, "check", "partial"),
            RemoveAttr(4, "migratable"),
            Insert(4, NewElement("model", (("fallback", "allow"),), text="Skylake-Client")),
            Insert(4, VMX),
        ),
    ),
    (
        SKYLAKE,
        "<cpu mode='custom' match='exact' check='partial'><model fallback='allow'>Haswell</model>"
        "<feature policy='require' name='vmx'/></cpu>",
        (SetText(5, "Skylake-Client"),),
    ),
    (
        Options(arch="amd", model="EPYC"),
        "<cpu mode='custom' match='exact' check='partial'><model fallback='allow'>Haswell</model>"
        "<vendor>Intel</vendor><feature policy='require' name='svm'/></cpu>",
        (Remove(6), SetText(5, "EPYC")),
    ),
]


@pytest.mark.parametrize(("options", "cpu"), NOOP)
def test_noop(options: Options, cpu: str) -> None:
    assert edits(cpu, options) == ()


@pytest.mark.parametrize(("options", "cpu", "expected"), FIX)
def test_fix(options: Options, cpu: str, expected: tuple[Edit, ...]) -> None:
    assert edits(cpu, options) == expected


@pytest.mark.parametrize(
    ("model", "host", "feature"),
    [("Haswell", "amd", "vmx"), ("EPYC", "intel", "svm"), ("Haswell", "intel", "vmx")],
)
def test_a_model_asked_for_names_the_vendor_even_without_a_cpu(
    model: str, host: str, feature: str
) -> None:
    """--model with --arch auto on a domain without <cpu>: the model's family decides the
    feature, not the machine running xmlnest (a second run would read the model and flip
    it: 'a second run would change the output again')."""
    from xmlnest.engine import core

    vendor: Vendor = "amd" if host == "amd" else "intel"
    out = core.process(domain(""), Options(model=model), host=HostFacts(vendor=vendor))
    assert f"name='{feature}'".encode() in out.output
    assert core.process(out.output, Options(model=model), host=HostFacts(vendor=vendor)).plan.empty
