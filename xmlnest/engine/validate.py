"""Schema validation behind one protocol: libvirt's RelaxNG (lxml) or the bundled XSD.

Schemas compile lazily, once per run, and only when a changed output needs checking.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from lxml import etree

from xmlnest.engine.problems import SchemaProblem as SchemaProblem  # re-exported: cli.py's names
from xmlnest.engine.problems import Validator as Validator
from xmlnest.errors import UsageError

if TYPE_CHECKING:
    from os import PathLike

SCHEMA_ENV = "XMLNEST_SCHEMA_DIR"
# Plain strings, no pathlib: this runs on every start of the pipe.
INSTALL_PLACES = ("/usr/share/libvirt/schemas", "/usr/local/share/libvirt/schemas")


class RngValidator:
    """libvirt's own ``domain.rng``, compiled on first use."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.name = f"libvirt {path}"
        self._schema: etree.RelaxNG | None = None

    def problems(self, root: etree._Element) -> list[SchemaProblem]:
        if self._schema is None:
            self._schema = etree.RelaxNG(etree.parse(self.path))
        if self._schema.validate(root.getroottree()):
            return []
        return [
            SchemaProblem(e.line or None, " ".join(e.message.split()))
            for e in self._schema.error_log
        ]


class LazyXsdValidator:
    """The bundled XSD; xmlschema is imported and the schema built on first use."""

    name = "bundled XSD (xmlnest/schemas/domain-nested.xsd)"

    def __init__(self) -> None:
        self._impl: Validator | None = None

    def problems(self, root: etree._Element) -> list[SchemaProblem]:
        if self._impl is None:
            from xmlnest.engine.xsd import XsdValidator

            impl: Validator = XsdValidator()
            self._impl = impl
        return self._impl.problems(root)


def schema_folders(schema_dir: str | None, env: Mapping[str, str]) -> list[str]:
    """Where ``domain.rng`` is looked for: ``--schema-dir``, else ``$XMLNEST_SCHEMA_DIR``,
    else the usual install places."""
    if schema_dir is not None:
        return [schema_dir]
    if env.get(SCHEMA_ENV):
        return [env[SCHEMA_ENV]]
    return list(INSTALL_PLACES)


def find_domain_rng(schema_dir: str | None, env: Mapping[str, str]) -> str | None:
    for folder in schema_folders(schema_dir, env):
        rng = os.path.join(folder, "domain.rng")
        if os.path.isfile(rng):
            return rng
    return None


class Choice(NamedTuple):
    """The schema a run validates against, as plain data: made once per run (from the
    options and the environment), picklable, and equal across ``--jobs`` workers."""

    kind: str  # "rng", "xsd", "none"; "auto" only in a configuration made by hand
    rng: str | None  # the domain.rng found, for kind "rng"
    notice: str | None  # said once on stderr when first used (not under -q)
    routine: bool = False  # the expected case: said only with -v

    def make_validator(self) -> Validator | None:
        """A new validator for this choice; it compiles its schema on first use."""
        if self.kind == "auto":  # not chosen by a run's configuration: choose now
            return choose("auto", None).make_validator()
        if self.kind == "rng" and self.rng is not None:
            return RngValidator(self.rng)
        if self.kind == "xsd":
            return LazyXsdValidator()
        return None


def choose(kind: str, schema_dir: str | None, env: Mapping[str, str] | None = None) -> Choice:
    """Pick the validator for ``--validate auto|rng|xsd|none``.

    An explicit ``--schema-dir`` without ``domain.rng`` is a usage error (never a silent
    fallback); otherwise a missing schema falls back to the bundled XSD, naming where it
    looked."""
    env = os.environ if env is None else env
    if kind == "none":
        return Choice("none", None, None)
    if schema_dir is not None and not os.path.isfile(os.path.join(schema_dir, "domain.rng")):
        state = "is not a folder" if not os.path.isdir(schema_dir) else "has no domain.rng"
        raise UsageError(
            f"--schema-dir {schema_dir} {state}; point it at the folder holding libvirt's "
            "domain.rng (e.g. /usr/share/libvirt/schemas)"
        )
    if kind == "xsd":
        return Choice("xsd", None, None)
    rng = find_domain_rng(schema_dir, env)
    tried = ", ".join(os.path.join(f, "domain.rng") for f in schema_folders(schema_dir, env))
    if env.get(SCHEMA_ENV) and schema_dir is None:
        tried = f"{tried} (from {SCHEMA_ENV})"
    if kind == "rng":
        if rng is None:
            raise UsageError(f"--validate rng: no domain.rng found; looked for {tried}")
        return Choice("rng", rng, None)
    if rng is not None:
        return Choice("rng", rng, f"validating against libvirt's {rng}", routine=True)
    return Choice(
        "xsd",
        None,
        f"libvirt's domain.rng not found (looked for {tried}); validating against the "
        "bundled XSD (install libvirt's schemas, e.g. Debian's libvirt0, for the full check)",
    )


RNG_NS = "{http://relaxng.org/ns/structure/1.0}"


def hyperv_children(schema_dir: str | None, env: Mapping[str, str]) -> frozenset[str] | None:
    """The ``<hyperv>`` children the installed libvirt's RelaxNG accepts (``stimer.direct``
    when ``<stimer>`` takes ``<direct>``), read from the ``*.rng`` files beside the
    ``domain.rng`` that validation would use; ``None`` without one (the bundled XSD
    leaves ``<features>`` open, so nothing is known to be refused)."""
    rng = find_domain_rng(schema_dir, env)
    if rng is None:
        return None
    defines: dict[str, etree._Element] = {}
    todo, seen = [rng], set()
    while todo:  # domain.rng and what it includes (domaincommon.rng, …)
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            tree = etree.parse(path, etree.XMLParser(resolve_entities=False, no_network=True))
        except (OSError, etree.XMLSyntaxError):
            continue
        for inc in tree.getroot().iter(f"{RNG_NS}include"):
            todo.append(os.path.join(os.path.dirname(path), inc.get("href") or ""))
        for d in tree.getroot().iter(f"{RNG_NS}define"):
            defines.setdefault(d.get("name") or "", d)
    hyperv = defines.get("hyperv")
    if hyperv is None:
        return None
    root = next(hyperv.iter(f"{RNG_NS}element"), None)
    if root is None:
        return None
    out = {el.get("name") or "" for el in root.iter(f"{RNG_NS}element") if el is not root}
    stimer = next((el for el in root.iter(f"{RNG_NS}element") if el.get("name") == "stimer"), None)
    if stimer is not None and _names_element(stimer, "direct", defines):
        out.add("stimer.direct")
    return frozenset(out)


def _names_element(el: etree._Element, name: str, defines: dict[str, etree._Element]) -> bool:
    """``el``'s content (following ``<ref>``s one level) declares an element ``name``."""
    for sub in el.iter(f"{RNG_NS}element", f"{RNG_NS}ref"):
        if sub.tag == f"{RNG_NS}element" and sub.get("name") == name:
            return True
        if sub.tag == f"{RNG_NS}ref":
            target = defines.get(sub.get("name") or "")
            if target is not None and any(
                e.get("name") == name for e in target.iter(f"{RNG_NS}element")
            ):
                return True
    return False
