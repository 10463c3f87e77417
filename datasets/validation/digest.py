"""The example digest: SHA-256 of an example's normalized content (duplicates and the train/validation split).

Normalized content is, per message, ``role + "\\x1f" + " ".join(content.split()).lower()``, messages joined by
``"\\x1e"``, UTF-8 (:func:`reference_digest`). :func:`example_digest` computes the same bytes without the
per-word objects of ``str.split()``, which were most of the validator's time on natural text.
"""

from __future__ import annotations

import hashlib
from typing import Any

ROLES = ("system", "user", "assistant")


def reference_digest(messages: list[dict[str, Any]]) -> bytes:
    """The definition of the digest (``messages``: ``{"role", "content"}`` dicts with string content)."""
    text = "\x1e".join(m["role"] + "\x1f" + " ".join(m["content"].split()).lower() for m in messages)
    return hashlib.sha256(text.encode("utf-8")).digest()


# Bytes 0xFE and 0xFF never occur in UTF-8: they mark the message and role separators while the text is
# folded, and the last translate turns them into the real \x1e and \x1f (which content may not contain).
_MSG_MARK, _ROLE_MARK = 0xFE, 0xFF
_ROLE_PREFIX = {role: bytes([_MSG_MARK]) + role.encode() + bytes([_ROLE_MARK]) for role in ROLES}
_FIRST_PREFIX = {role: role.encode() + bytes([_ROLE_MARK]) for role in ROLES}
_ASCII_AND_MARKS = bytes([*range(128), _MSG_MARK, _ROLE_MARK])
_ASCII_WS = b" \t\n\r\x0b\x0c"  # what bytes.split() and bytes.strip() treat as whitespace
_CONTROL_WS = b"\x1c\x1d\x1e\x1f"  # whitespace to str.split() only


def _table(byte: int) -> int:
    if byte in _ASCII_WS:
        return 1
    return 2 if byte in _CONTROL_WS else 0


#: 1 for ASCII whitespace (two adjacent 1s are a whitespace run), 2 for \x1c-\x1f, 0 otherwise.
_WS_BITS = bytes(_table(byte) for byte in range(256))


def _fold(byte: int) -> int:
    if 65 <= byte <= 90:
        return byte + 32
    if byte in _ASCII_WS:
        return 32
    return {_MSG_MARK: 0x1E, _ROLE_MARK: 0x1F}.get(byte, byte)


#: Lower-case A-Z, turn (isolated) whitespace into spaces and the marks into the separators, in one pass.
_FOLD = bytes(_fold(byte) for byte in range(256))


def _reference(roles: list[str], contents: list[str]) -> bytes:
    return reference_digest([{"role": r, "content": c} for r, c in zip(roles, contents, strict=True)])


def example_digest(roles: list[str], contents: list[str]) -> bytes:
    """The digest of :func:`reference_digest`, computed with bulk operations.

    ``str.split()`` allocates one object per word, which made it most of the validator's time on natural
    text. Here the stripped contents are encoded into one buffer, line breaks (with the whitespace around them,
    the usual runs) are folded by splitting on ``\\n`` alone, and any other run of whitespace is found by one
    big-integer AND over a whitespace bitmap (two adjacent whitespace bytes); only then does a full
    ``bytes.split()`` run. Case, isolated whitespace and the separators are folded by one ``translate``.

    That equals the definition when no content holds \\x1c-\\x1f (whitespace to ``str.split`` but not to
    ``bytes.split``) and every non-ASCII character is lower case and not whitespace (all non-ASCII whitespace
    is non-printable); otherwise the definition itself runs.
    """
    parts: list[bytes] = [b""] * (2 * len(roles))
    parts[::2] = map(_ROLE_PREFIX.__getitem__, roles)
    parts[0] = _FIRST_PREFIX[roles[0]]
    parts[1::2] = map(str.encode, map(str.strip, contents))
    raw = b"".join(parts)
    if not all(map(str.isascii, contents)):
        rest = raw.translate(None, _ASCII_AND_MARKS).decode()
        if not rest.isprintable() or rest.lower() != rest:
            return _reference(roles, contents)
    if b"\n" in raw:
        # Line breaks make the common whitespace runs (paragraphs, lists): split on them alone, a few pieces.
        raw = b" ".join(filter(None, map(bytes.strip, raw.split(b"\n"))))
    classes = raw.translate(_WS_BITS)
    if b"\x02" in classes:
        return _reference(roles, contents)
    bits = int.from_bytes(classes, "little")
    if bits & (bits >> 8):
        raw = b" ".join(raw.split())
    return hashlib.sha256(raw.translate(_FOLD)).digest()
