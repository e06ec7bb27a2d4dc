#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) xmlnest developers
# MIT License (see xmlnest's pyproject.toml)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nested
short_description: Enable or disable nested virtualization in libvirt domains
description:
  - Reads each domain's stored definition (inactive, with security info; never the live XML),
    makes the nesting edit xmlnest makes (byte-preserving, verified, schema-checked) and
    defines it back, unless the stored definition changed since it was read.
  - Runs on the managed host next to libvirtd, through xmlnest's Python API (no subprocess).
  - A refused, unknown or transient domain fails the task with the rule's message, and then
    no domain is defined.
  - A running domain gets its new CPU only after a full power-off (not a reboot), and
    I(restart_required) says which.
  - Turning nesting on where the host's kernel has a guest-to-host escape reachable only
    through nesting (CVE-2026-53359, CVE-2026-46113) is said as a warning (rule XN223, with
    the fixed release), or with I(strict) refused before any domain is defined. The kernel
    is read for a local I(uri) (or under I(host_root)); I(host_kernel) returns the verdict.
version_added: "0.1.0"
author:
  - xmlnest developers (@xmlnest)
requirements:
  - xmlnest (with its C(libvirt) extra, or virsh) on the managed host
options:
  name:
    description:
      - The domain names or UUIDs to convert. One of I(name) and I(all) is required.
    type: list
    elements: str
    aliases: [domain]
  all:
    description:
      - Convert every persistent domain.
    type: bool
    default: false
  uri:
    description:
      - The libvirt URI. Libvirt's default (C(LIBVIRT_DEFAULT_URI)) when absent.
    type: str
  state:
    description:
      - C(enabled) turns nesting on, C(disabled) turns it off.
    type: str
    choices: [enabled, disabled]
    default: enabled
  arch:
    description:
      - The target. C(auto) reads it from each domain (and an x86 vendor from the host
        behind I(uri)).
    type: str
    choices: [auto, intel, amd, power9, ibmz]
    default: auto
  cpu:
    description:
      - C(passthrough) makes the CPU host-passthrough; C(host-model) keeps (or makes) it
        host-model and requires the nesting feature in it.
    type: str
    choices: [passthrough, host-model]
  model:
    description:
      - A named CPU model to use instead of the domain's own CPU.
    type: str
  level:
    description:
      - C(l1) for the guest that hosts VMs, C(l2) for a nested guest (POWER9 only).
    type: str
    choices: [l1, l2]
    default: l1
  strict:
    description:
      - Warnings refuse a domain, as errors do.
    type: bool
    default: false
  ignore:
    description:
      - Warning and note rule ids to leave out (C(XN2xx)); errors cannot be ignored.
    type: list
    elements: str
    default: []
  host_root:
    description:
      - Where the host's C(/) is mounted, for reading its kernel's version when nesting is
        turned on (a container that mounts the host at C(/host), say). Default C(/) for a
        local I(uri); a remote host's kernel is not read (XN224 in I(host_kernel)).
    type: path
attributes:
  check_mode:
    description: Reports what would change; defines nothing.
    support: full
  diff_mode:
    description: The stored definition before and after, byte for byte, one per changed domain.
    support: full
notes:
  - The libvirt backend is libvirt-python when it imports, else virsh
    (C(XMLNEST_LIBVIRT_BACKEND) chooses).
seealso:
  - module: xmlnest.libvirt.host_facts
"""

EXAMPLES = r"""
- name: Audit (run with --check --diff)
  xmlnest.libvirt.nested:
    all: true

- name: Enable nesting in two AMD domains as host-model CPUs
  xmlnest.libvirt.nested:
    name: [build-01, build-02]
    uri: qemu:///system
    arch: amd
    cpu: host-model
  register: nesting

- name: Say which running domains wait for a power-off
  ansible.builtin.debug:
    msg: "{{ nesting.domains | selectattr('restart_required') | map(attribute='name') }}"

- name: Turn nesting off everywhere
  xmlnest.libvirt.nested:
    all: true
    state: disabled
"""

RETURN = r"""
domains:
  description: One entry per domain, in the order named (unknown ones first).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The domain's name.
      type: str
      sample: build-01
    status:
      description: As C(xmlnest --json) says it, one of C(changed), C(would change) (check
        mode), C(unchanged) or C(rejected).
      type: str
      sample: changed
    findings:
      description: Warnings and notes (errors for a rejected domain), each with C(rule),
        C(level), C(line), C(message) and C(hint).
      type: list
      elements: dict
      sample: [{"rule": "XN202", "level": "warning", "line": 23, "message": "...", "hint": "..."}]
    restart_required:
      description: The domain runs, and its running definition is not yet what the edit
        made (in check mode, would make) the stored one, so only a full power-off (not a
        reboot) settles it. A running host-model guest on a host that offers the feature
        runs nested already, and needs no restart.
      type: bool
      sample: true
restart_required:
  description: Any domain's I(restart_required).
  returned: always
  type: bool
  sample: false
host_kernel:
  description: With C(state=enabled), what turning nesting on risks on the host, as a
    finding (C(rule), C(level), C(line), C(message), C(hint)); XN223 when its kernel has
    a nesting-only guest-to-host escape (also a task warning), XN224 when it is remote and
    was not read. Null when the kernel has the fixes or cannot be judged, and with
    C(state=disabled).
  returned: always
  type: dict
  sample: {"rule": "XN223", "level": "warning", "line": null,
           "message": "the host's kernel 6.1.170 (Debian 6.1.170-1) has CVE-2026-53359 ...",
           "hint": "upgrade the host kernel first, or keep nesting off ..."}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xmlnest.libvirt.plugins.module_utils.xmlnest_common import (
    HAS_XMLNEST,
    INSTALL_LINE,
    XMLNEST_IMPORT_ERROR,
    finding_dict,
    task_words,
)

if HAS_XMLNEST:
    import xmlnest

ARGUMENT_SPEC = dict(
    name=dict(type="list", elements="str", aliases=["domain"]),
    all=dict(type="bool", default=False),
    uri=dict(type="str"),
    state=dict(type="str", choices=["enabled", "disabled"], default="enabled"),
    arch=dict(type="str", choices=["auto", "intel", "amd", "power9", "ibmz"], default="auto"),
    cpu=dict(type="str", choices=["passthrough", "host-model"]),
    model=dict(type="str"),
    level=dict(type="str", choices=["l1", "l2"], default="l1"),
    strict=dict(type="bool", default=False),
    ignore=dict(type="list", elements="str", default=[]),
    host_root=dict(type="path"),
)


def api_arguments(params):
    """The task's parameters as keyword arguments of xmlnest.convert_domains."""
    return dict(
        arch=params["arch"],
        model=params["model"],
        passthrough=params["cpu"] == "passthrough",
        host_model=params["cpu"] == "host-model",
        level=params["level"],
        disable=params["state"] == "disabled",
        strict=params["strict"],
        ignore=list(params["ignore"]),
    )


def domain_entry(result, check_mode):
    """One domain's entry in ``domains``."""
    status = result.status
    if status == "changed" and check_mode:
        status = "would change"
    return {
        "name": result.name,
        "status": status,
        "findings": [finding_dict(f) for f in result.errors + result.findings],
        "restart_required": result.restart_required,
    }


def refusal_line(result):
    """The one line that says why a domain was refused (the CLI's line, task words)."""
    if result.error is not None:
        return task_words(result.error.format(result.name))
    lines = []
    for f in result.errors:  # strict: the warnings that refused it
        where = result.name if f.line is None else "%s:%s" % (result.name, f.line)
        message, hint = task_words(f.message), task_words(f.hint)
        lines.append("%s: %s %s; %s (strict)" % (where, f.rule, message, hint))
    return "\n".join(lines)


def diff_entry(result):
    """The stored definition before and after, byte for byte (decoded for display)."""
    return {
        "before_header": "%s (stored definition)" % result.name,
        "after_header": "%s (%s)" % (result.name, "as defined" if result.defined else "to define"),
        "before": result.before.decode("utf-8", "surrogateescape"),
        "after": result.after.decode("utf-8", "surrogateescape"),
    }


def shaped(results, check_mode, diff_mode):
    """The module's return values from the API's results, in order."""
    out = dict(
        changed=any(r.status == "changed" for r in results),
        domains=[domain_entry(r, check_mode) for r in results],
        restart_required=any(r.restart_required for r in results),
    )
    if diff_mode:
        out["diff"] = [diff_entry(r) for r in results if r.status == "changed"]
    return out


def kernel_risk(params, uri):
    """What turning nesting on risks on the host behind ``uri`` (``None`` when turning it
    off, or when the finding's rule is ignored)."""
    if params["state"] != "enabled":
        return None
    return xmlnest.enabling_risk(uri, host_root=params["host_root"], ignore=params["ignore"])


def risk_line(uri, found, strict):
    """The CLI's line for the host's finding, in task words."""
    line = "%s: %s %s; %s" % (uri, found.rule, task_words(found.message), task_words(found.hint))
    return line + (" (strict)" if strict else "")


def convert(module, host):
    """Check every domain first; define the changed ones only when none was refused.
    ``host``: the host's kernel finding goes in ``host["kernel"]``; XN223 is a warning,
    and with strict the refusal of every domain, before any is read."""
    params = module.params
    names = None if params["all"] else params["name"]
    arguments = api_arguments(params)
    with xmlnest.connect(params["uri"]) as conn:
        risk = kernel_risk(params, conn.uri)
        host["kernel"] = None if risk is None else finding_dict(risk)
        if risk is not None and risk.level.value == "warning":
            if params["strict"]:
                module.fail_json(msg=risk_line(conn.uri, risk, True), changed=False,
                                 domains=[], restart_required=False, host_kernel=host["kernel"])
            module.warn(risk_line(conn.uri, risk, False))
        checked = list(xmlnest.convert_domains(conn, names, **arguments))
        refused = [r for r in checked if r.status == "rejected"]
        if refused or module.check_mode:
            return checked, refused
        changing = [r.name for r in checked if r.status == "changed"]
        done = {}
        if changing:
            for r in xmlnest.convert_domains(conn, changing, define=True, **arguments):
                done[r.name] = r
        results = [done.get(r.name, r) for r in checked]
        return results, [r for r in results if r.status == "rejected"]


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("name", "all"), ("cpu", "model")],
        required_one_of=[("name", "all")],
        supports_check_mode=True,
    )
    if not HAS_XMLNEST:
        module.fail_json(
            msg=missing_required_lib("xmlnest") + " " + INSTALL_LINE,
            exception=XMLNEST_IMPORT_ERROR,
        )
    if module.params["all"] is False and not module.params["name"]:
        module.fail_json(msg="name needs at least one domain (or all: true)")
    host = {"kernel": None}
    try:
        results, refused = convert(module, host)
    except xmlnest.UsageError as exc:
        module.fail_json(msg=task_words(str(exc)).replace("disable and", "state: disabled and"))
    except xmlnest.XmlnestError as exc:  # the connection itself (cannot connect, lost)
        module.fail_json(msg=task_words(exc.format()))
    out = shaped(results, module.check_mode, module._diff)
    out["host_kernel"] = host["kernel"]
    if refused:
        out["changed"] = any(r.defined for r in results)
        module.fail_json(msg="\n".join(refusal_line(r) for r in refused), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
