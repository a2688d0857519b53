"""Salted pseudonyms so that no source patient identifier reaches any output."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SALT_ENV = "MAMMOSYNTH_SALT"


def _salt_file() -> Path:
    home = Path(os.environ.get("MAMMOSYNTH_HOME", Path.home() / ".mammosynth"))
    return home / "salt"


def resolve_salt(salt: str | None = None) -> str:
    """The secret salt: ``salt`` if given, else ``$MAMMOSYNTH_SALT``, else a per-user random secret.

    The per-user secret is created once in ``~/.mammosynth/salt`` (mode 600) so pseudonyms are stable
    across runs on one machine but cannot be reversed by hashing a list of known patient ids.
    """
    if salt:
        return salt
    if os.environ.get(SALT_ENV):
        return os.environ[SALT_ENV]
    path = _salt_file()
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def pseudonymise(value: str, salt: str, namespace: str = "", prefix: str = "P", digits: int = 12) -> str:
    """Keyed hash (HMAC-SHA256) of ``value``: the same input and salt always give the same pseudonym.

    Example:
        >>> pseudonymise("P_00001", salt="s", namespace="cbis")
        'Pa5d6c8a2887a'
    """
    # surrogateescape: a file name that is not UTF-8 (Python keeps its bytes as surrogates) still hashes
    digest = hmac.new(
        salt.encode(), f"{namespace}\x00{value}".encode("utf-8", "surrogateescape"), hashlib.sha256
    ).hexdigest()
    return f"{prefix}{digest[:digits]}"
