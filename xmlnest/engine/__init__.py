"""The engine: a domain's bytes in, its converted bytes out, with no I/O of its own.

Parse, plan (the per-architecture transforms and the rules table), render byte-preserving
(``lossless``), verify (meaning, idempotence, schema). It imports only ``xmlnest.errors`` and
``xmlnest.model`` outside itself.
"""
