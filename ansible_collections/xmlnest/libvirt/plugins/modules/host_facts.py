#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) xmlnest developers
# MIT License (see xmlnest's pyproject.toml)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_facts
short_description: Can this libvirt host run nested guests (xmlnest's host check)
description:
  - Returns C(xmlnest --host-check --json) as the fact C(xmlnest_host), with the CPU and its
    vendor, the KVM module and its nested parameter, C(/dev/kvm), firmware, and the verdict
    (C(exit_code) 0 ready, 1 action needed, 3 cannot nest) with the commands that would
    enable nesting now and persistently.
  - When xmlnest reports the kernel's verdict on the nesting security advisories, it is the
    C(security) key of the fact, and C(kernel_fixed) sums it up.
  - Changes nothing.
version_added: "0.1.0"
author:
  - xmlnest developers (@xmlnest)
requirements:
  - xmlnest on the managed host
options:
  root:
    description:
      - The folder holding the host's C(/proc) and C(/sys) (a captured tree, for tests).
    type: path
    default: /
attributes:
  check_mode:
    description: Reads only.
    support: full
  diff_mode:
    description: Nothing to show.
    support: none
  facts:
    description: Sets C(xmlnest_host).
    support: full
"""

EXAMPLES = r"""
- name: Read the host's nesting facts
  xmlnest.libvirt.host_facts:

- name: Enable nesting only where the host can nest and its kernel is fixed
  xmlnest.libvirt.nested:
    all: true
  when:
    - ansible_facts.xmlnest_host.exit_code == 0
    - ansible_facts.xmlnest_host.kernel_fixed is not false
"""

RETURN = r"""
ansible_facts:
  description: The facts set.
  returned: always
  type: dict
  contains:
    xmlnest_host:
      description: The host check report (C(xmlnest --host-check --json)'s keys) with
        C(exit_code), C(ready) (exit code 0) and C(kernel_fixed) (C(true) patched, C(false)
        vulnerable, C(null) when xmlnest cannot tell or does not check).
      type: dict
      sample: {"arch": "x86_64", "vendor": "intel", "enabled": true, "exit_code": 0,
               "ready": true, "kernel_fixed": null}
"""

import dataclasses
import json

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xmlnest.libvirt.plugins.module_utils.xmlnest_common import (
    HAS_XMLNEST,
    INSTALL_LINE,
    XMLNEST_IMPORT_ERROR,
)

if HAS_XMLNEST:
    import xmlnest


def kernel_fixed(facts):
    """The kernel verdict as true (patched), false (vulnerable) or None (cannot tell).

    xmlnest's host report carries ``security``: a list of records whose ``kernel.state``
    is ``patched``, ``vulnerable`` or ``cannot tell`` (empty off x86). Any vulnerable one
    makes it false; all patched, true; else None. Read here, in one place.
    """
    security = facts.get("security")
    if isinstance(security, dict):
        security = [security]
    if not isinstance(security, list) or not security:
        return None
    states = set()
    for record in security:
        kernel = record.get("kernel") if isinstance(record, dict) else None
        states.add(kernel.get("state") if isinstance(kernel, dict) else None)
    if "vulnerable" in states:
        return False
    if states == {"patched"}:
        return True
    return None


def host_facts(report):
    """The report as plain JSON data: field names, ``arch`` as its word, the verdicts."""
    facts = json.loads(json.dumps(dataclasses.asdict(report)))  # tuples become lists
    facts["arch"] = str(report.arch.value)
    facts["exit_code"] = int(report.exit_code)
    facts["ready"] = report.exit_code == 0
    facts["kernel_fixed"] = kernel_fixed(facts)
    return facts


def main():
    module = AnsibleModule(
        argument_spec=dict(root=dict(type="path", default="/")),
        supports_check_mode=True,
    )
    if not HAS_XMLNEST:
        module.fail_json(
            msg=missing_required_lib("xmlnest") + " " + INSTALL_LINE,
            exception=XMLNEST_IMPORT_ERROR,
        )
    try:
        report = xmlnest.host_check(module.params["root"])
    except (xmlnest.UsageError, xmlnest.XmlnestError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts=dict(xmlnest_host=host_facts(report)))


if __name__ == "__main__":
    main()
