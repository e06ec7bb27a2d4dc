"""The command-line shell: the click command, its run configuration, the run, the output sink.

Only this package prints or exits; nothing else in xmlnest imports it. ``main`` and ``entry``
(the console script ``xmlnest.cli:entry``) are the command's own, from ``command``.
"""

from xmlnest.cli.command import entry, main

__all__ = ["entry", "main"]
