"""The bundled XSD (schemas/domain-nested.xsd) through xmlnest.engine.xsd.XsdValidator.

Two promises are checked here:

* it never rejects what libvirt accepts: every domain of the shared real-world corpus that
  libvirt's RelaxNG schema accepts validates (the corpus test fails, not skips, under CI);
* it rejects the mistakes users make around nested virtualization, each with the right
  source line and a one-line message, and accepts the corrected document.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import CORPUS, require_corpus
from xmlnest.engine.problems import SchemaProblem
from xmlnest.engine.xsd import XsdValidator, schema_bytes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def validator() -> XsdValidator:
    return XsdValidator()


def parse(text: str) -> etree._Element:
    """Parse an inline document; line 1 is the line right after the opening quotes."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(textwrap.dedent(text).lstrip("\n").encode(), parser)


# --------------------------------------------------------------------------------------
# Never reject what libvirt accepts: the real-world corpus
# --------------------------------------------------------------------------------------


def corpus_rows() -> list[dict[str, str]]:
    with (CORPUS / "index.tsv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def libvirt_accepts(row: dict[str, str]) -> bool:
    """Last column: libvirt RelaxNG verdict, ``valid`` or ``invalid: ...``."""
    return row["root"] == "domain" and list(row.values())[-1].strip() == "valid"


def test_every_domain_libvirt_accepts_validates(validator: XsdValidator) -> None:
    require_corpus()
    accepted = [row for row in corpus_rows() if libvirt_accepts(row)]
    assert len(accepted) >= 300, "index.tsv lists fewer libvirt-valid domains than expected"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    rejected: list[str] = []
    for row in accepted:
        root = etree.parse(str(CORPUS / row["path"]), parser).getroot()
        rejected.extend(f"{row['path']}:{p.line}: {p.message}" for p in validator.problems(root))
    assert rejected == [], "\n".join(rejected)


# --------------------------------------------------------------------------------------
# Mistakes: rejected on the right line, fixed document accepted
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    id: str
    bad: str
    line: int
    message: str  # substring of the reported message
    fixed: str


MISTAKES = [
    Mistake(
        "feature-without-policy",
        """
        <domain type='kvm'>
          <name>l1</name>
          <cpu mode='custom' match='exact'>
            <model fallback='allow'>Haswell-noTSX</model>
            <feature name='vmx'/>
          </cpu>
        </domain>
        """,
        5,
        "cpu/feature: missing required attribute 'policy'",
        """
        <domain type='kvm'>
          <name>l1</name>
          <cpu mode='custom' match='exact'>
            <model fallback='allow'>Haswell-noTSX</model>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "unknown-policy",
        """
        <domain type='kvm'>
          <cpu mode='host-model'>
            <feature policy='required' name='vmx'/>
          </cpu>
        </domain>
        """,
        3,
        "cpu/feature: attribute policy='required'",
        """
        <domain type='kvm'>
          <cpu mode='host-model'>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "unknown-mode",
        """
        <domain type='kvm'>
          <name>l1</name>
          <os>
            <type arch='x86_64' machine='q35'>hvm</type>
          </os>
          <cpu mode='host'/>
        </domain>
        """,
        6,
        "cpu: attribute mode='host'",
        """
        <domain type='kvm'>
          <name>l1</name>
          <os>
            <type arch='x86_64' machine='q35'>hvm</type>
          </os>
          <cpu mode='host-passthrough'/>
        </domain>
        """,
    ),
    Mistake(
        "nested-hv-without-state",
        """
        <domain type='kvm'>
          <os>
            <type arch='ppc64le' machine='pseries'>hvm</type>
          </os>
          <features>
            <htm state='on'/>
            <nested-hv/>
          </features>
        </domain>
        """,
        7,
        "features/nested-hv: missing required attribute 'state'",
        """
        <domain type='kvm'>
          <os>
            <type arch='ppc64le' machine='pseries'>hvm</type>
          </os>
          <features>
            <htm state='on'/>
            <nested-hv state='on'/>
          </features>
        </domain>
        """,
    ),
    Mistake(
        "same-feature-twice",
        """
        <domain type='kvm'>
          <cpu mode='custom' match='exact' check='partial'>
            <model fallback='allow'>EPYC-IBPB</model>
            <feature policy='disable' name='svm'/>
            <feature policy='require' name='x2apic'/>
            <feature policy='require' name='svm'/>
          </cpu>
        </domain>
        """,
        6,
        "cpu/feature: feature named 'svm' is given more than once",
        """
        <domain type='kvm'>
          <cpu mode='custom' match='exact' check='partial'>
            <model fallback='allow'>EPYC-IBPB</model>
            <feature policy='require' name='x2apic'/>
            <feature policy='require' name='svm'/>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "features-in-implicit-custom-mode-without-model",
        """
        <domain type='kvm'>
          <name>l1</name>
          <cpu>
            <topology sockets='1' dies='1' cores='2' threads='1'/>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
        """,
        3,
        "cpu: <feature> in custom mode needs a <model>",
        """
        <domain type='kvm'>
          <name>l1</name>
          <cpu mode='host-model'>
            <topology sockets='1' dies='1' cores='2' threads='1'/>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "features-in-custom-mode-with-empty-model",
        """
        <domain type='kvm'>
          <cpu mode='custom' match='exact'>
            <model fallback='allow'/>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
        """,
        2,
        "cpu: <feature> in custom mode needs a <model>",
        """
        <domain type='kvm'>
          <cpu mode='custom' match='exact'>
            <model fallback='allow'>Skylake-Client</model>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "vendor-without-model",
        """
        <domain type='kvm'>
          <cpu match='exact'>
            <vendor>Intel</vendor>
          </cpu>
        </domain>
        """,
        2,
        "cpu: <vendor> needs a <model>",
        """
        <domain type='kvm'>
          <cpu match='exact'>
            <model>Haswell</model>
            <vendor>Intel</vendor>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "migratable-outside-passthrough",
        """
        <domain type='kvm'>
          <cpu mode='host-model' migratable='on'/>
        </domain>
        """,
        2,
        "cpu: migratable is only allowed with mode='host-passthrough' or 'maximum'",
        """
        <domain type='kvm'>
          <cpu mode='host-passthrough' migratable='on'/>
        </domain>
        """,
    ),
    Mistake(
        "bad-feature-name",
        """
        <domain type='kvm'>
          <cpu mode='host-passthrough'>
            <feature policy='require' name='+vmx'/>
          </cpu>
        </domain>
        """,
        3,
        "cpu/feature: attribute name='+vmx'",
        """
        <domain type='kvm'>
          <cpu mode='host-passthrough'>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "vendor-id-not-12-chars",
        """
        <domain type='kvm'>
          <cpu mode='custom'>
            <model vendor_id='Intel'>Haswell</model>
          </cpu>
        </domain>
        """,
        3,
        "cpu/model: attribute vendor_id='Intel'",
        """
        <domain type='kvm'>
          <cpu mode='custom'>
            <model vendor_id='GenuineIntel'>Haswell</model>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "topology-zero",
        """
        <domain type='kvm'>
          <cpu mode='host-passthrough'>
            <topology sockets='0' cores='2' threads='1'/>
          </cpu>
        </domain>
        """,
        3,
        "cpu/topology: attribute sockets='0'",
        """
        <domain type='kvm'>
          <cpu mode='host-passthrough'>
            <topology sockets='1' cores='2' threads='1'/>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "unknown-cpu-child",
        """
        <domain type='kvm'>
          <cpu mode='host-model'>
            <features policy='require' name='vmx'/>
          </cpu>
        </domain>
        """,
        3,
        "cpu: unexpected element <features>",
        """
        <domain type='kvm'>
          <cpu mode='host-model'>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
        """,
    ),
    Mistake(
        "second-features-element",
        """
        <domain type='kvm'>
          <features>
            <acpi/>
          </features>
          <cpu mode='host-passthrough'/>
          <features>
            <nested-hv state='on'/>
          </features>
        </domain>
        """,
        6,
        "domain: <features> may appear only once here",
        """
        <domain type='kvm'>
          <features>
            <acpi/>
            <nested-hv state='on'/>
          </features>
          <cpu mode='host-passthrough'/>
        </domain>
        """,
    ),
    Mistake(
        "hugepage-without-size",
        """
        <domain type='kvm'>
          <memoryBacking>
            <hugepages>
              <page unit='M'/>
            </hugepages>
          </memoryBacking>
        </domain>
        """,
        4,
        "memoryBacking/hugepages/page: missing required attribute 'size'",
        """
        <domain type='kvm'>
          <memoryBacking>
            <hugepages>
              <page size='1' unit='M'/>
            </hugepages>
          </memoryBacking>
        </domain>
        """,
    ),
    Mistake(
        "domain-without-type",
        """
        <domain>
          <name>l1</name>
        </domain>
        """,
        1,
        "domain: missing required attribute 'type'",
        """
        <domain type='qemu'>
          <name>l1</name>
        </domain>
        """,
    ),
    Mistake(
        "os-without-type",
        """
        <domain type='kvm'>
          <os>
            <boot dev='hd'/>
          </os>
        </domain>
        """,
        2,
        "os: missing required element <type>",
        """
        <domain type='kvm'>
          <os>
            <type arch='x86_64'>hvm</type>
            <boot dev='hd'/>
          </os>
        </domain>
        """,
    ),
]


@pytest.mark.parametrize("case", MISTAKES, ids=[m.id for m in MISTAKES])
def test_mistake_is_rejected_on_its_line(validator: XsdValidator, case: Mistake) -> None:
    problems = validator.problems(parse(case.bad))
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.line == case.line, problem
    assert case.message in problem.message, problem
    assert "\n" not in problem.message


@pytest.mark.parametrize("case", MISTAKES, ids=[m.id for m in MISTAKES])
def test_fixed_document_is_accepted(validator: XsdValidator, case: Mistake) -> None:
    assert validator.problems(parse(case.fixed)) == []


def test_all_problems_are_reported_in_document_order(validator: XsdValidator) -> None:
    root = parse(
        """
        <domain type='kvm'>
          <features>
            <nested-hv state='yes'/>
          </features>
          <cpu mode='custom'>
            <model>Haswell</model>
            <feature name='vmx'/>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
        """
    )
    assert validator.problems(root) == [
        SchemaProblem(
            3, "features/nested-hv: attribute state='yes': value must be one of ['on', 'off']"
        ),
        SchemaProblem(7, "cpu/feature: missing required attribute 'policy'"),
        SchemaProblem(8, "cpu/feature: feature named 'vmx' is given more than once in one <cpu>"),
    ]


# --------------------------------------------------------------------------------------
# Accepted shapes: order never matters, unknown parts are open, newer libvirt additions
# --------------------------------------------------------------------------------------

ACCEPTED = {
    "children-in-any-order": """
        <domain type='kvm'>
          <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
          <cpu mode='custom' match='exact' check='full'>
            <feature policy='require' name='vmx'/>
            <numa>
              <cell id='0' cpus='0-1' memory='1048576' unit='KiB' memAccess='shared'/>
            </numa>
            <topology sockets='1' cores='2' threads='1'/>
            <vendor>Intel</vendor>
            <feature policy='disable' name='svm'/>
            <model fallback='forbid'>Skylake-Client-IBRS</model>
          </cpu>
          <features><acpi/><apic/><vmport state='off'/></features>
          <os><boot dev='hd'/><type arch='x86_64' machine='pc-q35-8.2'>hvm</type></os>
          <name>l1</name>
          <memoryBacking><locked/><hugepages/><source type='memfd'/></memoryBacking>
        </domain>
    """,
    "host-model-features-without-model": """
        <domain type='kvm'>
          <cpu mode='host-model' check='partial'>
            <model fallback='allow'/>
            <feature policy='optional' name='vmx'/>
            <feature policy='optional' name='svm'/>
          </cpu>
        </domain>
    """,
    "host-passthrough-with-features-and-extras": """
        <domain type='kvm'>
          <cpu mode='host-passthrough' check='none' migratable='off'>
            <cache mode='passthrough'/>
            <maxphysaddr mode='passthrough' limit='39'/>
            <feature policy='disable' name='hypervisor'/>
          </cpu>
        </domain>
    """,
    "maximum-migratable": "<domain type='qemu'><cpu mode='maximum' migratable='on'/></domain>",
    "topology-only-cpu": """
        <domain type='qemu'>
          <cpu><topology sockets='2' dies='1' clusters='2' cores='4' threads='2'/></cpu>
        </domain>
    """,
    "empty-vendor-is-no-vendor": "<domain type='kvm'><cpu><vendor/></cpu></domain>",
    "deprecated-features": """
        <domain type='kvm'>
          <os><type arch='s390x' machine='s390-ccw-virtio'>hvm</type></os>
          <cpu mode='host-model' check='partial' deprecated_features='on'/>
        </domain>
    """,
    "pseries-features-open": """
        <domain type='kvm'>
          <os><type arch='ppc64' machine='pseries'>hvm</type></os>
          <features>
            <hpt resizing='required'><maxpagesize unit='GiB'>1</maxpagesize></hpt>
            <nested-hv state='off'/>
            <cfpc value='workaround'/>
          </features>
        </domain>
    """,
    "hugepages-per-node": """
        <domain type='kvm'>
          <memoryBacking>
            <hugepages>
              <page size='1048576' unit='KiB' nodeset='0-3,5'/>
              <page size='2048'/>
            </hugepages>
            <nosharepages/>
          </memoryBacking>
        </domain>
    """,
    "namespaced-and-unknown-elements": """
        <domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
          <metadata>
            <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>
              <libosinfo:os id='http://redhat.com/rhel/8.6'/>
            </libosinfo:libosinfo>
          </metadata>
          <qemu:commandline><qemu:arg value='-cpu'/></qemu:commandline>
          <something-from-a-newer-libvirt with='attributes'><cpu/></something-from-a-newer-libvirt>
        </domain>
    """,
    "comments-and-processing-instructions": """
        <domain type='kvm'>
          <!-- a comment -->
          <cpu mode='host-model'><!-- inside --><?pi data?>
            <feature policy='require' name='vmx'/>
          </cpu>
        </domain>
    """,
    "xen-os": """
        <domain type='xen'>
          <bootloader>/usr/bin/pygrub</bootloader>
          <os><type arch='x86_64' machine='xenpv'>linux</type></os>
        </domain>
    """,
}


@pytest.mark.parametrize("text", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_shapes(validator: XsdValidator, text: str) -> None:
    assert validator.problems(parse(text)) == []


# --------------------------------------------------------------------------------------
# Module contract
# --------------------------------------------------------------------------------------


def test_validator_name() -> None:
    assert XsdValidator.name == "bundled XSD"


def test_bundled_schema_is_the_repository_file() -> None:
    assert schema_bytes() == (REPO / "schemas" / "domain-nested.xsd").read_bytes()


def test_lines_are_none_without_source_lines(validator: XsdValidator) -> None:
    root = etree.Element("domain")  # built in memory: no source lines
    assert validator.problems(root) == [
        SchemaProblem(None, "domain: missing required attribute 'type'")
    ]


def test_importing_the_module_does_not_import_xmlschema() -> None:
    code = "import sys, xmlnest.engine.xsd; print('xmlschema' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
