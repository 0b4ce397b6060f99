"""Keyboard slips: the spellings one finger slip makes of a word.

A legal form typed with a slip ('GmH', 'Incc.', 'Limitted', 'Coporation', 'rSl', 'Pty Ld') is no
longer recognised as a legal form, so it stays in the name as a word no account has, and drags an
otherwise identical name below the auto threshold. Only slips people actually make are generated:
two neighbouring letters swapped, a letter doubled, a letter dropped (from words of 4 letters or
more) or replaced by the key beside it on the same keyboard row. Arbitrary one-letter edits would
turn real words into legal forms ('Blue Loop' is not a mistyped co-op, nor 'Apple Core' a 'Corp').
"""

from __future__ import annotations

from collections.abc import Container, Iterable

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Keys beside each letter on its row of a QWERTY keyboard.
NEIGHBOURS: dict[str, str] = {
    ch: row[max(i - 1, 0):i] + row[i + 1:i + 2] for row in _ROWS for i, ch in enumerate(row)
}


def slips(word: str) -> set[str]:
    """Every spelling of ``word`` one keyboard slip away (the word itself excluded).

    Words of 3 letters only get swapped or doubled letters: a dropped or replaced letter turns
    them into other short words ('sll' into 'all').
    """
    out: set[str] = set()
    n = len(word)
    for i in range(n):
        if i + 1 < n and word[i] != word[i + 1]:
            out.add(word[:i] + word[i + 1] + word[i] + word[i + 2:])  # swapped
        out.add(word[:i] + word[i] + word[i:])  # doubled
        if n >= 4:
            out.add(word[:i] + word[i + 1:])  # dropped
            for near in NEIGHBOURS.get(word[i], ""):
                out.add(word[:i] + near + word[i + 1:])  # the key beside
    out.discard(word)
    return out


def slip_table(words: Iterable[str], min_length: int = 3) -> dict[str, str]:
    """{slipped spelling: word} for words of ``min_length`` letters or more.

    A spelling that is itself one of the words is left out (it is not a slip); one that two words
    can give is read as the shorter ('ssrl': a doubled letter in 'srl' before a wrong key in 'sarl').
    """
    known = {w for w in words if len(w) >= min_length and w.isascii() and w.isalpha()}
    table: dict[str, str] = {}
    for word in sorted(known, key=lambda w: (len(w), w)):  # shortest first, then a-z
        for slipped in slips(word):
            if slipped not in known and len(slipped) >= 3:
                table.setdefault(slipped, word)
    return table


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def known_one_edit_away(word: str, vocabulary: Container[str], start: int = 0, end: int | None = None) -> list[str]:
    """Words of ``vocabulary`` one slip from ``word`` (a letter dropped, added, two swapped, or one hit
    instead of the key beside it), the slip falling between ``start`` and ``end`` (the part of a name
    that no account has).

    How a misspelt name word that no account has ('dnyara') finds the word it stands for ('dynara'):
    character n-grams miss a slip near the start of a short word, and looking up the ~30 x length
    spellings one slip away is cheap next to scoring (it is done once per distinct typed name).
    """
    found: list[str] = []
    seen: set[str] = set()
    stop = len(word) if end is None else min(end, len(word))
    for i in range(max(start, 0), stop + 1):
        head, tail = word[:i], word[i:]
        edits = [head + ch + tail for ch in _LETTERS]  # added
        if tail and i < stop:
            edits.append(head + tail[1:])  # dropped
            edits += [head + ch + tail[1:] for ch in NEIGHBOURS.get(tail[0], "")]  # the key beside
            if len(tail) > 1 and tail[0] != tail[1]:
                edits.append(head + tail[1] + tail[0] + tail[2:])  # swapped
        for edit in edits:
            if edit in vocabulary and edit not in seen:
                seen.add(edit)
                found.append(edit)
    return found
