"""Keep secrets out of what we record: URL credentials, secret-looking arguments and the values
of secret-looking environment variables and options.

One ``Masker`` per session masks everything that leaves the pytest process: the journal's
records (and through them the tracking store, the descriptions and the HTML report), the
GitHub step summary and the plugin's terminal lines. It masks values only: never a record's
keys, structure or the fields that say what the record is (ids, times, numbers, the store).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

from pytest_mlflow_tree.model.names import NODEID
from pytest_mlflow_tree.model.records import Record

MASK = "***"

# "auth" but not "author" (GIT_AUTHOR_NAME): an author's name is no secret.
_SECRET_NAME = re.compile(
    r"(?i)(pass|secret|token|api[_-]?key|credential|auth(?!ors?(?:$|[_.-]))|private[_-]?key"
    r"|(?:^|[_.-])key(?:$|[_.-]))"
)
# A value shorter than this, or a plain word or number no longer than _PLAIN_LENGTH, is too
# weak to mask: such text turns up by chance in test names, paths, tracebacks and durations,
# and masking it would rewrite what is not the secret while hiding little.
_MIN_SECRET_LENGTH = 8
_PLAIN_LENGTH = 16
_PLAIN = re.compile(r"[a-z]+|[A-Z][a-z]*|[A-Z]+|[0-9]+")
# Values that turn a feature on or off: not secrets, nothing to warn about.
_SWITCHES = frozenset({"", "0", "1", "true", "false", "yes", "no", "on", "off", "none", "null"})
# A shard key names a group of CI jobs (the plugin's own --mlflow-tree-shard-key and
# PYTEST_MLFLOW_TREE_SHARD_KEY): masking it would split the shards over roots named "***".
_PUBLIC_NAME = re.compile(r"(?i)shard[_-]?key")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# NAME=value on a command line: an environment assignment or an ini override (-o name=value).
_ASSIGNED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Record fields of text that came from the tests; the others say what the record is.
_TEXT_FIELDS = ("name",)
_KEY_FIELDS = ("key", "parent")
# Tags that name a run as its key does: readers find tests by them.
_KEY_TAGS = frozenset({NODEID})
_TEXT_MAPS = ("tags", "params", "artifacts")


def url(text: str) -> str:
    """``https://user:token@host/x`` -> ``https://***@host/x``."""
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(_PUBLIC_NAME.sub("", name)))


def is_weak(value: str) -> bool:
    """Too short or too common to mask (see ``_MIN_SECRET_LENGTH``)."""
    if len(value) < _MIN_SECRET_LENGTH:
        return True
    return len(value) <= _PLAIN_LENGTH and _PLAIN.fullmatch(value) is not None


@dataclass(frozen=True)
class _Option:
    """A secret-looking option on a command line and where its value is."""

    index: int  # of the argument holding the value
    name: str
    value: str
    inline: bool  # ``--token=X`` or ``TOKEN=X`` rather than ``--token X``


# Whether a command line option takes a value; without one, every option is assumed to.
TakesValue = Callable[[str], bool]


def _secret_options(args: Sequence[str], takes_value: TakesValue | None) -> Iterator[_Option]:
    """``--token=X``, ``--token X`` and ``TOKEN=X`` (an assignment or an ini override).

    A secret-looking flag (``--skip-auth``) is followed by an argument that is no secret: its
    value, a test path, would be masked in every record.
    """
    index = 0
    while index < len(args):
        arg = args[index]
        name, sep, value = arg.partition("=")
        bare = name.lstrip("-")
        if sep and _ASSIGNED_NAME.fullmatch(bare) and is_secret_name(bare):
            yield _Option(index, name, value, inline=True)
        elif (
            not sep
            and arg.startswith("-")
            and is_secret_name(arg)
            and index + 1 < len(args)
            and (takes_value is None or takes_value(arg))
        ):
            index += 1
            yield _Option(index, arg, args[index], inline=False)
        index += 1


def command_line(args: Sequence[str], takes_value: TakesValue | None = None) -> list[str]:
    """Mask values of secret-looking options (``--token X``, ``--token=X``, ``TOKEN=X``)."""
    out = [url(arg) for arg in args]
    for option in _secret_options(args, takes_value):
        out[option.index] = f"{option.name}={MASK}" if option.inline else MASK
    return out


def _url_credentials(uri: str) -> Iterator[tuple[str, bool]]:
    """(value, is it a password) for the userinfo of each URL in ``uri`` and its password, as
    written and decoded. A userinfo without a password may be a token or a mere user name."""
    for match in _URL_USERINFO.finditer(uri):
        userinfo = match["userinfo"]
        yield userinfo, False
        password = userinfo.partition(":")[2]
        if password:
            yield from ((password, True), (unquote(password), True))


@dataclass(frozen=True)
class Masker:
    """Replaces known secret values and URL credentials in text with ``***``.

    ``weak`` names the sources (variables, options) whose values are too short or too common
    to mask; they are left as they are and the session says so, naming them, never the values.
    """

    values: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()

    @classmethod
    def collect(
        cls,
        environ: Mapping[str, str],
        args: Sequence[str],
        *uris: str,
        takes_value: TakesValue | None = None,
    ) -> Masker:
        """From secret-looking variables, secret-looking options and the URIs' credentials."""
        # (where from, value, warn when it is too weak to mask)
        sources = [(name, value, True) for name, value in environ.items() if is_secret_name(name)]
        options = _secret_options(args, takes_value)
        sources += [(option.name, option.value, True) for option in options]
        for uri in uris:
            sources += [("the tracking URI's password", v, p) for v, p in _url_credentials(uri)]
        found: set[str] = set()
        weak: list[str] = []
        for name, raw, warn in sources:
            value = raw.strip()
            if not is_weak(value):
                found.add(value)
            elif warn and value.lower() not in _SWITCHES and name not in weak:
                weak.append(name)
        # Longest first: a secret containing another is masked whole.
        return cls(tuple(sorted(found, key=lambda v: (-len(v), v))), tuple(weak))

    def text(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        # Every record passes here: the pattern runs only where a URL may hold credentials.
        return url(text) if "@" in text else text

    def value(self, value: Any) -> Any:
        """``value`` masked wherever it holds text: strings, and those in lists and dicts."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        # The journal writes any other value as its text.
        return self.text(str(value))


class RecordMasker:
    """Masks the values of journal records, keeping every record what it was.

    Keys, parents and node ids stay unique: two tests whose ids differ only in different secrets
    must not become one run, so a masked key already given to another gets a ``#2``, ``#3``
    suffix. The same key is masked the same way each time, so a child finds its parent.
    """

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        # Each secret as JSON writes it: a record holding the secret anywhere holds this in its
        # line, since JSON escapes character by character.
        self._written = tuple(json.dumps(v, ensure_ascii=False)[1:-1] for v in masker.values)
        # Only keys the mask changed: an unmasked key is its own mapping.
        self._keys: dict[str, str] = {}
        self._taken: set[str] = set()

    def key(self, key: str) -> str:
        known = self._keys.get(key)
        if known is not None:
            return known
        masked = self.masker.text(key)
        if masked == key:
            return key
        unique, number = masked, 1
        while unique in self._taken:
            number += 1
            unique = f"{masked}#{number}"
        self._keys[key] = unique
        self._taken.add(unique)
        return unique

    def may_change(self, line: str) -> bool:
        """Whether masking may change the record that JSON wrote as ``line``.

        False when the line holds no secret and no ``@`` (so no URL credentials): most records,
        whose masking then costs one search of their line instead of a walk of the record.
        """
        return "@" in line or any(secret in line for secret in self._written)

    def __call__(self, record: Record) -> Record:
        if record.get("kind") not in ("open", "start", "run", "close"):
            # The header and the end: the plugin's own fields (the store, ids, times).
            return record
        return self._masked(record)

    def _masked(self, record: Record) -> Record:
        data = dict(cast(dict[str, Any], record))
        for name in _KEY_FIELDS:
            if isinstance(data.get(name), str):
                data[name] = self.key(data[name])
        for name in _TEXT_FIELDS:
            if name in data:
                data[name] = self.masker.value(data[name])
        for name in _TEXT_MAPS:
            if isinstance(data.get(name), dict):
                data[name] = {key: self._value(key, v) for key, v in data[name].items()}
        return cast(Record, data)

    def _value(self, key: str, value: Any) -> Any:
        if key in _KEY_TAGS and isinstance(value, str):
            return self.key(value)
        return self.masker.value(value)
