# -*- coding: utf-8 -*-
# Copyright (c) xmlnest developers
# MIT License (see xmlnest's pyproject.toml)
"""What the collection's plugins share: importing xmlnest, its install line, and the
rewording of the API's hints (``arch='intel'``) into task parameters (``arch: intel``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import traceback

XMLNEST_IMPORT_ERROR = None
try:
    # xmlnest.api, not just xmlnest (whose API loads lazily): it pulls in lxml too.
    import xmlnest.api  # noqa: F401  pylint: disable=unused-import
except ImportError:
    HAS_XMLNEST = False
    XMLNEST_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_XMLNEST = True

INSTALL_LINE = (
    "Install it into the Python that runs the module (ansible_python_interpreter) from a "
    "clone of xmlnest: python3 -m pip install './xmlnest[libvirt]'"
)

# Only the API's own keywords: a hint may also quote XML (<domain type='kvm'>).
_QUOTED = re.compile(r"\b(arch|level|model)='([^']*)'")
_TRUE = re.compile(r"\b(strict)=True\b")
_NAMED = re.compile(r"\bmodel=NAME\b")


def task_words(text):
    """A hint in xmlnest's API words (``arch='intel'``) in a task's (``arch: intel``)."""
    if not text:
        return text
    text = _NAMED.sub("model: NAME", text)
    text = text.replace("host_model=True", "cpu: host-model")
    text = text.replace("passthrough=True", "cpu: passthrough")
    text = text.replace("disable=True", "state: disabled")
    text = text.replace("xmlnest.host_check()", "xmlnest.libvirt.host_facts")
    text = _QUOTED.sub(r"\1: \2", text)
    return _TRUE.sub(r"\1: true", text)


def finding_dict(finding):
    """One finding as the module returns it (the ``--json`` shape)."""
    return {
        "rule": finding.rule,
        "level": finding.level.value,
        "line": finding.line,
        "message": task_words(finding.message),
        "hint": task_words(finding.hint),
    }
