"""What a ``--store`` argument names: a SQLite file, or a PostgreSQL database.

Why a parser of its own: a store argument that looks like a URL must never become a path. It
once did: ``--store postgresql://host/db`` created a folder ``postgresql:`` and a SQLite file in
it, and every later command read that back as if all were well. So anything of the form
``scheme:...`` with a scheme of two or more letters is a URL here; ``postgresql``/``postgres``
are the only schemes served, any other is refused (a file whose name has a colon is still
reachable as ``./name:with:colon``). One-letter schemes are left alone: ``C:\\...`` is a path.

Where a password must not sit in a command line, CI log or TOML, the argument may name an
environment variable instead: ``--store env:FLEET_DSN`` reads the DSN (or path) from
``$FLEET_DSN``, and with no ``--store`` at all ``$ACCELBENCH_STORE`` is used when set.

A PostgreSQL URL may carry ``?machine=ID`` (an id or a unique prefix): the store then shows only
that machine's sessions, so ``compare postgresql://...?machine=A postgresql://...?machine=B``
takes two machines from one fleet database (``env:VAR?machine=A`` does the same with the URL
in ``$VAR``). The selector is ours: it is removed before the
URL reaches the driver, and so is the password from every message (``text``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from harness.store.schema import StoreError

DEFAULT_PATH = Path("results") / "accelbench.sqlite"
ENV_DEFAULT = "ACCELBENCH_STORE"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_SELECTORS = ("machine",)


@dataclass(frozen=True)
class StoreRef:
    """A parsed store argument. ``text`` is what messages show (never a password)."""

    kind: str  # "sqlite" or "postgresql"
    text: str
    path: Path | None = None
    dsn: str | None = None
    machine: str | None = None
    via: str | None = None  # "env:VAR" when the argument named a variable

    def __str__(self) -> str:
        return self.text

    @property
    def cli(self) -> str:
        """How a hint in a message repeats this store on a command line: ``env:VAR`` stays
        ``env:VAR`` (the URL may hold a password); a URL shown has its password hidden."""
        return self.via or self.text

    @property
    def home(self) -> Path:
        """The local folder for what a command writes beside its store (reports, IR cache):
        next to a SQLite file; ``results/`` under the current directory for a database."""
        return self.path.parent if self.path is not None else DEFAULT_PATH.parent

    @property
    def stem(self) -> str:
        """A short label for compare's columns: the file's stem, or the database and machine."""
        if self.path is not None:
            return self.path.stem
        db = urlsplit(self.dsn or "").path.lstrip("/") or "postgres"
        return f"{db}@{self.machine}" if self.machine else db


def parse(text: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> StoreRef:
    """The store that ``text`` names; StoreError (a usage error) for what names none."""
    if isinstance(text, os.PathLike):  # a Path object is a path, whatever its characters
        return StoreRef("sqlite", str(text), path=Path(text))
    environ = os.environ if env is None else env
    if text.startswith("env:"):
        var, sep, selector = text[4:].partition("?")  # env:VAR?machine=ID adds a selector
        value = environ.get(var, "").strip()
        if not var or not value:
            raise StoreError(f"--store {text}: the environment variable {var or '(none)'} is not "
                             "set or is empty; set it to a store path or a postgresql:// URL")
        if value.startswith("env:"):
            raise StoreError(f"--store {text}: ${var} names another variable; give it the URL")
        if sep:
            if _SCHEME.match(value) is None:
                raise StoreError(f"--store {text}: ?{selector} selects from a database; "
                                 f"${var} holds a file path")
            value += ("&" if "?" in value else "?") + selector
        return dataclasses.replace(parse(value, env=environ), via=text)
    m = _SCHEME.match(text)
    if m is None:
        if not text:
            raise StoreError("--store is empty; give a file path or a postgresql:// URL")
        return StoreRef("sqlite", text, path=Path(text))
    scheme = m.group(1).lower()
    if scheme not in POSTGRES_SCHEMES:
        raise StoreError(f"store {_redact(text)!r}: unknown scheme {scheme!r}; a store is a SQLite "
                         "file path or a postgresql:// URL (write ./NAME for a file whose name "
                         "has a colon)")
    if not text[m.end():].startswith("//"):
        raise StoreError(f"store {_redact(text)!r} is not a URL: write postgresql://[user@]host"
                         "[:port]/database")
    return _postgres(text)


def _postgres(text: str) -> StoreRef:
    parts = urlsplit(text)
    query = parse_qsl(parts.query, keep_blank_values=True)
    picked = {k: v for k, v in query if k in _SELECTORS}
    if any(k in _SELECTORS and not v for k, v in query):
        raise StoreError(f"store {_redact(text)!r}: ?machine= needs a machine id (or a prefix)")
    rest = [(k, v) for k, v in query if k not in _SELECTORS]
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    return StoreRef("postgresql", _redact(text.split("#", 1)[0]), dsn=dsn,
                    machine=picked.get("machine"))


def _redact(text: str) -> str:
    """The URL with its password replaced by ``***`` (a message may end up in a CI log)."""
    try:
        parts = urlsplit(text)
        if parts.password is None:
            return text
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", text)


def default_text(env: Mapping[str, str] | None = None) -> str:
    """What ``--store`` means when not given: ``$ACCELBENCH_STORE``, else the local file."""
    return f"env:{ENV_DEFAULT}" if (os.environ if env is None else env).get(ENV_DEFAULT) \
        else str(DEFAULT_PATH)


def split_session(text: str) -> tuple[str, str | None]:
    """``STORE#SESSION`` -> (store text, session or None); ``#`` is a URL's fragment too."""
    store, sep, session = text.partition("#")
    return store, (session or None) if sep else None
