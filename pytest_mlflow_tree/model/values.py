"""Turn arbitrary Python values into deterministic, JSON-safe text."""

from __future__ import annotations

import ast
import re

# Reprs of objects without their own __repr__ carry memory addresses, which differ between runs.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

# Enough for any real parameter; beyond it the journal would balloon for no reader's benefit.
MAX_TEXT = 100_000


# The reprs of floats that are no literals: a string spelled so would read as the float.
_FLOAT_WORDS = frozenset({"nan", "inf", "-inf"})


def describe(value: object) -> str:
    """Text for a value: strings as they are, anything else as its repr."""
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


def param_text(value: object) -> str:
    """Text for a parametrize value that tells values apart in the runs table: anything but a
    string as its repr, a string as it is unless it would read as another value (``'None'``,
    ``'1'``, ``'True'``, ``''``, ``'[1]'``), which is shown quoted as its repr."""
    if isinstance(value, str) and _reads_as_another_value(value):
        return describe(repr(value))
    return describe(value)


def _reads_as_another_value(text: str) -> bool:
    if not text or text in _FLOAT_WORDS:
        return True
    try:
        ast.literal_eval(text)
    except Exception:  # not a literal (SyntaxError, ValueError), or one nested too deep
        return False
    return True
