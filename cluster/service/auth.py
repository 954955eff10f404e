"""Bearer tokens of the service: the file holds one ``NAME sha256:HEX`` line per token (the hash of
the token, never the token); ``create_token`` appends one and returns the token, shown once.
Tokens are 256 random bits, so an unsalted SHA-256 is a safe digest (nothing to guess)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from ledger.keys import ID_RULE, is_id
from taxview.core.errors import InputError

PREFIX = "tv_"


def digest(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def read_tokens(path: str | Path) -> dict[str, str]:
    """digest -> name, from the tokens file (``InputError`` naming the line when malformed)."""
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError("tokens", f"cannot read {path}: {exc.strerror}") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not is_id(parts[0]) or not parts[1].startswith("sha256:") or len(parts[1]) != 71:
            raise InputError("tokens", f"{path} line {n}: expected 'NAME sha256:HEX'")
        out[parts[1]] = parts[0]
    return out


def create_token(path: str | Path, name: str) -> str:
    """A new token named ``name`` (its hash appended to ``path``, created mode 0600): the token."""
    if not is_id(name):
        raise InputError("name", f"token name {name!r}: use {ID_RULE}")
    path = Path(path)
    if path.exists() and name in read_tokens(path).values():
        raise InputError("name", f"{path} already has a token named {name!r}")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as exc:
        raise InputError("tokens", f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "a+", encoding="utf-8") as f:
        f.seek(0, os.SEEK_END)
        # a file edited by hand may not end its last line: the new one must not join it
        lead = ""
        if f.tell() > 0:
            f.seek(f.tell() - 1)
            lead = "" if f.read(1) == "\n" else "\n"
        f.write(f"{lead}{name} {digest(token)}\n")
    return token


class Tokens:
    """The tokens file, read again when it changes (a token added while the service runs)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[float, int] | None = None
        self._known: dict[str, str] = {}
        self._load()

    def _load(self) -> None:
        st = self.path.stat()
        stamp = (st.st_mtime, st.st_size)
        if stamp != self._stamp:
            self._known, self._stamp = read_tokens(self.path), stamp

    def who(self, token: str | None) -> str | None:
        """The token's name, or None for a missing or unknown one (compared in constant time)."""
        if not token:
            return None
        try:
            self._load()
        except (OSError, InputError):
            pass  # keep the last good file
        mine = digest(token)
        for known, name in self._known.items():
            if hmac.compare_digest(known, mine):
                return name
        return None
