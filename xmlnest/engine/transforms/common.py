"""What every transform reads from a domain, and the rule helpers they share."""

from __future__ import annotations

from lxml import etree

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Edit, Finding, Index, RemoveAttr, SetAttr
from xmlnest.errors import RuleError
from xmlnest.model import HostFacts, Options


class Context:
    """A domain being planned, with the options and what is known of the host; reads
    only, never changes the tree."""

    __slots__ = ("root", "options", "host", "index", "cpu", "os_type")

    def __init__(self, root: etree._Element, options: Options, host: HostFacts) -> None:
        self.root = root
        self.options = options
        self.host = host
        self.index = Index(root)  # the plan carries it on; built only if an edit needs it
        # Read once: every rule looks at these.
        self.cpu = self.child(root, "cpu")
        self.os_type = self.child(self.child(root, "os"), "type")

    def ref(self, el: etree._Element) -> int:
        """The element's index in document order: how an edit names it."""
        return self.index.position(el)

    def child(self, parent: etree._Element | None, name: str) -> etree._Element | None:
        """First un-namespaced child called ``name``. (``iterchildren`` filters in C;
        ``find`` goes through lxml's Python path parser and costs twice as much.)"""
        return None if parent is None else next(parent.iterchildren(name), None)

    def children(self, parent: etree._Element | None, name: str) -> list[etree._Element]:
        return [] if parent is None else list(parent.iterchildren(name))

    @property
    def arch(self) -> str | None:
        t = self.os_type
        return t.get("arch") if t is not None else None

    @property
    def machine(self) -> str | None:
        t = self.os_type
        return t.get("machine") if t is not None else None


def text_of(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def line(el: etree._Element | None) -> int | None:
    return el.sourceline if el is not None else None


class Builder:
    """Accumulates edits and findings while a transform walks a domain."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.edits: list[Edit] = []
        self.findings: list[Finding] = []

    def set(self, el: etree._Element, name: str, value: str) -> None:
        if el.get(name) != value:
            self.edits.append(SetAttr(self.ctx.ref(el), name, value))

    def unset(self, el: etree._Element, name: str) -> None:
        if el.get(name) is not None:
            self.edits.append(RemoveAttr(self.ctx.ref(el), name))

    def warn(self, finding: Finding) -> None:
        self.findings.append(finding)


def features_named(ctx: Context, cpu: etree._Element | None, name: str) -> list[etree._Element]:
    return [f for f in ctx.children(cpu, "feature") if f.get("name") == name]


def refuse_forbid(ctx: Context, cpu: etree._Element | None, name: str) -> None:
    """A ``forbid`` policy on the nesting feature is the user's explicit 'no'."""
    for f in features_named(ctx, cpu, name):
        if f.get("policy") == "forbid":
            raise RuleError(
                f"CPU feature '{name}' has policy 'forbid', which prohibits nested virtualization",
                hint=rule_hint("XN104"),
                line=line(f),
                rule="XN104",
            )
