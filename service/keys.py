"""API keys and their roles: parsed from CITEQA_API_KEYS, stored as sha256 hashes in a keys file.

A key is only ever held in memory as its sha256 hash. Checking a presented key hashes it and compares the
hash with every stored one using hmac.compare_digest, without stopping at the first match, so the time a check
takes says nothing about which stored key (if any) came close. Keys are never logged or written anywhere;
the keys file holds only hashes, so reading it does not reveal a key.

Keys file format, one key a line (blank lines and `#` comments ignored):

    write 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  # added 2026-11-25T10:00:00+00:00
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path

KEY_PREFIX = "citeqa_"  # makes a leaked key easy to recognise (and to find with a secret scanner)
MIN_KEY_CHARS = 16  # a configured key shorter than this is refused: it could be guessed
HASH = re.compile(r"^[0-9a-f]{64}$")


class Role(IntEnum):
    """Ordered: a write key may do everything a read key may."""

    READ = 1
    WRITE = 2

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise KeyConfigError(f"unknown role '{name.strip()}' (roles: read, write)") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class KeyConfigError(ValueError):
    """A malformed CITEQA_API_KEYS value or keys file; the message says what is wrong, never the key."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class StoredKey:
    role: Role
    digest: str  # sha256 hex of the key
    note: str = ""


def parse_keys_setting(value: str) -> list[StoredKey]:
    """'read:KEY1,write:KEY2' -> hashed entries. Errors name the entry's position, not its key."""
    keys = []
    for position, entry in enumerate((part.strip() for part in value.split(",")), start=1):
        if not entry:
            continue
        role, separator, key = entry.partition(":")
        if not separator:
            raise KeyConfigError(f"CITEQA_API_KEYS entry {position}: expected ROLE:KEY (for example read:…)")
        key = key.strip()
        if len(key) < MIN_KEY_CHARS:
            raise KeyConfigError(
                f"CITEQA_API_KEYS entry {position}: the key is shorter than {MIN_KEY_CHARS} characters; "
                "use `citeqa keys add` or a long random string"
            )
        keys.append(StoredKey(Role.parse(role), hash_key(key)))
    return keys


def read_keys_file(path: Path) -> list[StoredKey]:
    keys = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        content, _, note = line.partition("#")
        fields = content.split()
        if not fields:
            continue
        if len(fields) != 2 or not HASH.match(fields[1]):
            raise KeyConfigError(f"{path}:{number}: expected 'ROLE SHA256-HEX', found {len(fields)} field(s)")
        try:
            role = Role.parse(fields[0])
        except KeyConfigError as exc:
            raise KeyConfigError(f"{path}:{number}: {exc}") from None
        keys.append(StoredKey(role, fields[1], note.strip()))
    return keys


def write_keys_file(path: Path, keys: list[StoredKey]) -> None:
    """Atomically, readable by the owner only: a half-written keys file would lock everyone out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# citeqa API keys: role and sha256 of the key (the keys themselves are not stored)"]
    lines += [f"{k.role.label} {k.digest}" + (f"  # {k.note}" if k.note else "") for k in keys]
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".api-keys-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add_key(path: Path, role: Role, note: str = "") -> str:
    """A new random key with `role`, stored as its hash in `path`; the key is returned, once."""
    key = generate_key()
    existing = read_keys_file(path) if path.exists() else []
    added = f"added {datetime.now(UTC).isoformat(timespec='seconds')}" + (f", {note}" if note else "")
    write_keys_file(path, [*existing, StoredKey(role, hash_key(key), added)])
    return key


def remove_keys(path: Path, digest_prefix: str) -> int:
    """Drop the keys whose hash starts with `digest_prefix` (at least 8 hex digits); returns how many."""
    prefix = digest_prefix.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", prefix):
        raise KeyConfigError("give at least the first 8 hex digits of the key's hash (see `citeqa keys list`)")
    keys = read_keys_file(path) if path.exists() else []
    kept = [k for k in keys if not k.digest.startswith(prefix)]
    if len(kept) != len(keys):
        write_keys_file(path, kept)
    return len(keys) - len(kept)


class KeyRing:
    """The keys a server accepts: from the setting, plus the keys file (re-read when it changes, so a key
    added or removed with `citeqa keys` takes effect without a restart)."""

    def __init__(self, setting_keys: list[StoredKey], keys_file: Path | None) -> None:
        self._setting_keys = setting_keys
        self._file = keys_file
        self._file_stamp: tuple[int, int] | None = None
        self._file_keys: list[StoredKey] = []
        self._refresh()
        self._required = bool(self.keys)

    @classmethod
    def from_settings(cls, api_keys: str | None, keys_file: Path | None) -> KeyRing:
        return cls(parse_keys_setting(api_keys or ""), keys_file)

    def _refresh(self) -> None:
        if self._file is None:
            return
        try:
            stat = self._file.stat()
        except FileNotFoundError:
            self._file_stamp, self._file_keys = None, []
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._file_stamp:
            self._file_keys = read_keys_file(self._file)
            self._file_stamp = stamp

    @property
    def keys(self) -> list[StoredKey]:
        # A keys file broken while serving: keep the keys read last (never fall open).
        with contextlib.suppress(OSError, KeyConfigError):
            self._refresh()
        return self._setting_keys + self._file_keys

    @property
    def configured(self) -> bool:
        """With no keys at all the server is open (and `serve` allows that only on loopback). Once keys
        are required they stay required: removing the last key locks the server rather than opening it."""
        self._required = self._required or bool(self.keys)
        return self._required

    def role_of(self, presented: str) -> Role | None:
        digest = hash_key(presented)
        best: Role | None = None
        for stored in self.keys:  # every stored hash is compared: no early exit
            if hmac.compare_digest(stored.digest, digest) and (best is None or stored.role > best):
                best = stored.role
        return best
