"""What "blank" and "trimmed" mean: the rule of migration 0010, in Python.

The database's CHECKs and this module use the same three sets of characters (a test
compares them over every code point), so the API refuses exactly what the database
would, before any SQL runs:

- spaces: Unicode's White_Space;
- invisibles: characters that render as nothing on their own (control characters,
  zero-width space, direction marks, word joiner, BOM, Hangul fillers, braille blank ...);
- attaching: invisible characters that modify the one before them (zero-width joiners,
  variation selectors, emoji tags).

Text is blank when it holds nothing else. A trimmed title begins with none of them and
ends with no space or invisible (an attaching character at the end belongs to the
character it follows, as the emoji selector of "❤️" does).
"""

from __future__ import annotations

from typing import Final


def _chars(*ranges: tuple[int, int] | int) -> frozenset[str]:
    out: set[str] = set()
    for r in ranges:
        first, last = r if isinstance(r, tuple) else (r, r)
        out.update(chr(c) for c in range(first, last + 1))
    return frozenset(out)


# chatstore_space_chars(), chatstore_invisible_chars(), chatstore_attaching_chars().
SPACES: Final = _chars(
    (0x09, 0x0D), 0x20, 0x85, 0xA0, 0x1680, (0x2000, 0x200A), 0x2028, 0x2029, 0x202F,
    0x205F, 0x3000,
)  # fmt: skip
INVISIBLES: Final = _chars(
    (0x01, 0x08), (0x0E, 0x1F), (0x7F, 0x84), (0x86, 0x9F), 0xAD, 0x34F, 0x61C, 0x115F,
    0x1160, 0x17B4, 0x17B5, 0x180E, 0x200B, 0x200E, 0x200F,
    (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), 0x2800, 0x3164, 0xFEFF, 0xFFA0,
    0x1D159, (0x1D173, 0x1D17A), 0xE0001,
)  # fmt: skip
ATTACHING: Final = _chars(
    (0x180B, 0x180D), 0x180F, 0x200C, 0x200D, (0xFE00, 0xFE0F), (0xE0020, 0xE007F),
    (0xE0100, 0xE01EF),
)  # fmt: skip

BLANK: Final = SPACES | INVISIBLES | ATTACHING
_LEADING: Final = "".join(sorted(BLANK))
_TRAILING: Final = "".join(sorted(SPACES | INVISIBLES))


def is_blank(text: str) -> bool:
    """Nothing a person sees: empty, or only spaces, invisibles and attaching characters."""
    return all(c in BLANK for c in text)


def trim(text: str) -> str:
    """``text`` without blank characters at its start, nor spaces and invisibles at its end."""
    return text.lstrip(_LEADING).rstrip(_TRAILING)


def has_blank(text: str) -> bool:
    """Any blank character anywhere (user ids hold none)."""
    return any(c in BLANK for c in text)
