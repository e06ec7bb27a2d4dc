"""``--host-check``: read a host's tree, judge whether it can run nested guests, report it."""
