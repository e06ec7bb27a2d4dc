# -*- coding: utf-8 -*-
# Copyright (c) xmlnest developers
# MIT License (see xmlnest's pyproject.toml)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: nested
short_description: Enable (or disable) nested virtualization in domain XML
version_added: "0.1.0"
author:
  - xmlnest developers (@xmlnest)
description:
  - Returns the domain XML with the nesting edit xmlnest makes, every other byte kept.
  - Runs on the controller; needs xmlnest in the controller's Python.
  - A refused domain raises an error naming the rule and the line.
options:
  _input:
    description: Libvirt domain XML (the stored definition, not a running domain's).
    type: str
    required: true
  arch:
    description: C(auto), C(intel), C(amd), C(power9) or C(ibmz).
    type: str
    default: auto
  model:
    description: A named CPU model to use instead of the domain's CPU.
    type: str
  passthrough:
    description: Make the CPU host-passthrough.
    type: bool
    default: false
  host_model:
    description: Keep (or make) a host-model CPU and require the nesting feature in it.
    type: bool
    default: false
  level:
    description: C(l1) or C(l2) (POWER9 nested guests).
    type: str
    default: l1
  disable:
    description: Turn nesting off instead.
    type: bool
    default: false
  host_vendor:
    description: The x86 vendor to assume when the domain names none (C(intel) or C(amd)).
    type: str
"""

EXAMPLES = r"""
- name: Convert a template on the controller
  ansible.builtin.copy:
    content: "{{ lookup('file', 'build-01.xml') | xmlnest.libvirt.nested(arch='amd') }}"
    dest: /etc/libvirt/templates/build-01.xml
"""

RETURN = r"""
_value:
  description: The converted domain XML (the input itself when nothing changes).
  type: str
"""

from ansible.errors import AnsibleFilterError

try:
    import xmlnest
    import xmlnest.api  # noqa: F401
except ImportError:
    HAS_XMLNEST = False
else:
    HAS_XMLNEST = True


def nested(xml, arch="auto", model=None, passthrough=False, host_model=False, level="l1",
           disable=False, host_vendor=None):
    """The filter: ``{{ domain_xml | xmlnest.libvirt.nested(arch='amd') }}``."""
    if not HAS_XMLNEST:
        raise AnsibleFilterError(
            "the xmlnest.libvirt.nested filter needs xmlnest in the controller's Python: "
            "python3 -m pip install './xmlnest' from a clone of xmlnest"
        )
    if not isinstance(xml, (str, bytes)):
        raise AnsibleFilterError("nested: expected domain XML as a string, got %s"
                                 % type(xml).__name__)
    try:
        result = xmlnest.transform(
            str(xml) if isinstance(xml, str) else xml,
            arch=arch,
            model=model,
            passthrough=passthrough,
            host_model=host_model,
            level=level,
            disable=disable,
            host_vendor=host_vendor,
        )
    except xmlnest.UsageError as exc:
        raise AnsibleFilterError("nested: %s" % exc)
    except xmlnest.XmlnestError as exc:
        raise AnsibleFilterError("nested: %s" % exc.format("domain XML"))
    return result.output.decode("utf-8")


class FilterModule(object):
    def filters(self):
        return {"nested": nested}
