"""Byte-keeping XML edits: token tree, style, edit (the only code writing whitespace), render."""
