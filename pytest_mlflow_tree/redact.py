"""Keep secrets out of what we record: URL credentials, secret-looking arguments and the values
of secret-looking environment variables."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

MASK = "***"

_SECRET_NAME = re.compile(
    r"(?i)(pass|secret|token|api[_-]?key|credential|auth|private[_-]?key|(?:^|[_.-])key(?:$|[_.-]))"
)
# Shorter values ("1", "true", "none") are switches, not secrets, and masking them would mangle
# everything else that contains them.
_MIN_SECRET_LENGTH = 6
# A shard key names a group of CI jobs (the plugin's own --mlflow-tree-shard-key and
# PYTEST_MLFLOW_TREE_SHARD_KEY): masking it would split the shards over roots named "***".
_PUBLIC_NAME = re.compile(r"(?i)shard[_-]?key")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def url(text: str) -> str:
    """``https://user:token@host/x`` -> ``https://***@host/x``."""
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(_PUBLIC_NAME.sub("", name)))


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


@dataclass(frozen=True)
class Masker:
    """Replaces known secret values in text with ``***``."""

    values: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], *uris: str) -> Masker:
        found = {
            value.strip()
            for name, value in environ.items()
            if is_secret_name(name) and len(value.strip()) >= _MIN_SECRET_LENGTH
        }
        for uri in uris:
            for match in _URL_USERINFO.finditer(uri):
                userinfo = match["userinfo"]
                password = userinfo.partition(":")[2]
                for value in (userinfo, password, unquote(password)):
                    if len(value) >= _MIN_SECRET_LENGTH:
                        found.add(value)
        # Longest first: a secret containing another is masked whole.
        return cls(tuple(sorted(found, key=len, reverse=True)))

    def text(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return text

    def json(self, line: str) -> str:
        """Mask inside a JSON document, where a value may appear escaped."""
        for value in self.values:
            line = line.replace(value, MASK)
            escaped = json.dumps(value, ensure_ascii=False)[1:-1]
            if escaped != value:
                line = line.replace(escaped, MASK)
        return line
