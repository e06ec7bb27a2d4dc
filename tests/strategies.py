"""hypothesis strategies for realistic libvirt domains in many writing styles.

The shapes follow the corpus: CPU absent / host-model / host-passthrough / maximum /
custom with or without a model and the nesting feature in any policy; features absent
or full; topology and NUMA; every supported arch; quotes, indentation, newlines,
declaration and comments varied independently.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

ARCHES = {
    "intel": ("x86_64", "q35"),
    "amd": ("x86_64", "pc-i440fx-8.2"),
    "power9": ("ppc64le", "pseries-rhel8.2.0"),
    "ibmz": ("s390x", "s390-ccw-virtio"),
}
POLICIES = ("require", "optional", "disable", "force", None)
MODELS = {
    "intel": ("Haswell-noTSX", "Skylake-Client"),
    "amd": ("EPYC", "EPYC-Rome"),
    "power9": ("POWER9",),
    "ibmz": ("z14", "gen15a"),
}


@dataclass(frozen=True)
class Style:
    quote: str
    indent: str
    newline: str
    declaration: bool
    comments: bool
    final_newline: bool


@dataclass(frozen=True)
class Generated:
    xml: bytes
    target: str
    style: Style


styles = st.builds(
    Style,
    quote=st.sampled_from(["'", '"']),
    indent=st.sampled_from(["  ", "    ", "\t"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    declaration=st.booleans(),
    comments=st.booleans(),
    final_newline=st.booleans(),
)


@st.composite
def cpus(draw: st.DrawFn, target: str) -> list[tuple[int, str]] | None:
    """Lines (depth, text) of a <cpu> element, or None for no <cpu>."""
    kind = draw(
        st.sampled_from(
            ["none", "host-model", "host-passthrough", "maximum", "custom", "custom-nomodel"]
        )
    )
    if kind == "none":
        return None
    attrs = ""
    if kind in ("custom", "custom-nomodel"):
        if draw(st.booleans()):
            attrs += " mode='custom'"
        attrs += draw(st.sampled_from(["", " match='exact'", " match='minimum'"]))
    else:
        attrs += f" mode='{kind}'"
    attrs += draw(st.sampled_from(["", " check='partial'", " check='full'", " check='none'"]))
    body: list[tuple[int, str]] = []
    if kind == "custom":
        model = draw(st.sampled_from(MODELS[target]))
        body.append((2, f"<model fallback='allow'>{model}</model>"))
    elif kind == "host-model" and draw(st.booleans()):
        body.append((2, "<model fallback='allow'/>"))
    if draw(st.booleans()):
        body.append((2, "<topology sockets='1' dies='1' cores='2' threads='1'/>"))
    feats = {"intel": "vmx", "amd": "svm", "ibmz": "sief2", "power9": "altivec"}
    if kind != "custom-nomodel" and draw(st.booleans()):
        policy = draw(st.sampled_from(POLICIES))
        pol = f" policy='{policy}'" if policy else ""
        body.append((2, f"<feature{pol} name='{feats[target]}'/>"))
    if kind != "custom-nomodel" and draw(st.booleans()):
        body.append((2, "<feature policy='require' name='pcid'/>"))
    if draw(st.booleans()):
        body += [
            (2, "<numa>"),
            (3, "<cell id='0' cpus='0-1' memory='1048576' unit='KiB'/>"),
            (2, "</numa>"),
        ]
    if not body:
        return [(1, f"<cpu{attrs}/>")]
    return [(1, f"<cpu{attrs}>"), *body, (1, "</cpu>")]


@st.composite
def domains(draw: st.DrawFn, targets: tuple[str, ...] = tuple(ARCHES)) -> Generated:
    target = draw(st.sampled_from(targets))
    style = draw(styles)
    arch, machine = ARCHES[target]
    lines: list[tuple[int, str]] = [
        (0, "<domain type='kvm'>"),
        (1, "<name>gen-l1</name>"),
        (1, "<description>Caf\u00e9 &amp; M\u00fcller \u2013 test</description>"),
        (1, "<memory unit='KiB'>1048576</memory>"),
        (1, "<vcpu placement='static'>2</vcpu>"),
        (1, "<os>"),
        (2, f"<type arch='{arch}' machine='{machine}'>hvm</type>"),
        (2, "<boot dev='hd'></boot>"),
        (1, "</os>"),
    ]
    feats = draw(st.sampled_from(["none", "plain", "nested-on", "nested-off"]))
    if feats != "none":
        lines += [(1, "<features>"), (2, "<acpi/>")]
        if target in ("intel", "amd"):
            lines.append((2, "<apic/>"))
        if target == "power9" and feats.startswith("nested"):
            lines.append((2, f"<nested-hv state='{feats.split('-')[1]}'/>"))
        lines.append((1, "</features>"))
    cpu = draw(cpus(target))
    if cpu:
        lines += cpu
    lines.append((1, "<clock offset='utc'/>"))
    if style.comments:
        at = draw(st.integers(min_value=1, max_value=len(lines) - 1))
        lines.insert(at, (1, "<!-- kept: a comment between elements -->"))
    lines += [
        (1, "<devices>"),
        (2, "<emulator>/usr/bin/qemu-kvm</emulator>"),
        (1, "</devices>"),
        (0, "</domain>"),
    ]
    text = style.newline.join(style.indent * d + t.replace("'", style.quote) for d, t in lines)
    if style.declaration:
        text = (
            f"<?xml version={style.quote}1.0{style.quote} encoding={style.quote}UTF-8"
            f"{style.quote}?>{style.newline}" + text
        )
    if style.final_newline:
        text += style.newline
    return Generated(text.encode("utf-8"), target, style)
