"""Salesforce record ids: 15 case-sensitive characters plus a 3-character
case-safe checksum, with the object's key prefix in front."""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# A made-up instance/pod code in positions 4-5, as real ids carry one.
POD = "8V"


def base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(ALPHABET[digit])
    if number:
        raise ValueError("number too large for the id width")
    return "".join(reversed(out))


def checksum(id15: str) -> str:
    """The 3-character suffix: one character per 5-char block, bit i set when char i is A-Z."""
    suffix = ""
    for block in range(3):
        bits = 0
        for i, char in enumerate(id15[block * 5 : block * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _CHECKSUM[bits]
    return suffix


def make_id(prefix: str, org_number: int, serial: int) -> str:
    """prefix(3) + pod(2) + org(3) + serial(7) + checksum(3): sorts in creation order."""
    id15 = prefix + POD + base62(org_number, 3) + base62(serial, 7)
    return id15 + checksum(id15)


def to18(value: str) -> str | None:
    """Normalise a 15- or 18-char id to 18 chars; None if it cannot be an id."""
    if not isinstance(value, str) or len(value) not in (15, 18):
        return None
    if any(c not in ALPHABET for c in value):
        return None
    full = value[:15] + checksum(value[:15])
    if len(value) == 18 and value[15:].upper() != full[15:]:
        return None
    return full


def random_locator() -> str:
    """A query-locator id (key prefix 01g), as in nextRecordsUrl."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return make15_checked("01g" + body)


def make15_checked(id15: str) -> str:
    return id15 + checksum(id15)
