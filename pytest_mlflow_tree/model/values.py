"""Turn arbitrary Python values into deterministic, JSON-safe text."""

from __future__ import annotations

import re

# Reprs of objects without their own __repr__ carry memory addresses, which differ between runs.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

# Enough for any real parameter; beyond it the journal would balloon for no reader's benefit.
MAX_TEXT = 100_000


def describe(value: object) -> str:
    """Text for a parameter value: strings as they are, anything else as its repr."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = repr(value)
        except Exception as exc:  # a broken __repr__ must not break the test run
            text = f"<{type(value).__qualname__} object; repr() raised {type(exc).__name__}>"
    text = _ADDRESS.sub("", text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"...[{len(text)} chars]"
    # Lone surrogates cannot be encoded as UTF-8 anywhere downstream.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
