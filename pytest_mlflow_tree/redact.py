"""Keep secrets out of what we record: URL credentials and secret-looking arguments."""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = "***"

_SECRET_NAME = re.compile(r"(?i)(pass|secret|token|api[_-]?key|credential|auth|private[_-]?key)")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def url(text: str) -> str:
    """``https://user:token@host/x`` -> ``https://***@host/x``."""
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def command_line(args: Sequence[str]) -> list[str]:
    """Mask values of secret-looking options (``--token X``, ``--token=X``, ``TOKEN=X``)."""
    out: list[str] = []
    mask_next = False
    for arg in args:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        name, sep, _value = arg.partition("=")
        if sep and is_secret_name(name):
            out.append(f"{name}={MASK}")
        elif arg.startswith("-") and is_secret_name(arg):
            out.append(arg)
            mask_next = True
        else:
            out.append(url(arg))
    return out
