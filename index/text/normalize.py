"""The one text normalisation every parser applies, so that offsets into a parsed document mean the same thing
whatever the format it came from.

`normalize_text` does, in this order:

1. removes characters that carry no text: control characters (other than line breaks and tabs), the byte order
   mark, the noncharacters U+FFFE and U+FFFF, lone surrogates, and soft hyphens (a soft hyphen right before a line
   break joins the two lines, since it marks a word the writer broke there);
2. expands typographic ligatures (ﬁ -> fi, ﬂ -> fl, ...) so that words spelt with them can be found;
3. composes to Unicode NFC, so "é" is one code point whichever way the source wrote it. Not NFKC: that would
   also rewrite superscripts, fractions and full-width forms, which change meaning;
4. makes whitespace consistent: every line break (CRLF, CR, form feed, U+2028 ...) becomes LF, tabs and every
   Unicode space become one plain space, lines lose leading and trailing spaces;
5. rejoins a word hyphenated across a line break ("inter-\\nnational" -> "international") when both halves are
   lowercase letters. "well-\\nknown" also becomes "wellknown": without a dictionary the two cases look alike, and
   line-end hyphens in running text are far more often typesetting than compound words;
6. keeps at most one blank line between paragraphs and drops blank lines at both ends.

The result is a fixed point: normalising it again changes nothing.
"""

from __future__ import annotations

import re
import unicodedata

LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",  # long s + t
    "\ufb06": "st",
}
SOFT_HYPHEN = "\u00ad"
LINE_BREAKS = ("\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


# Every Unicode space separator (category Zs; a fixed list since Unicode 6.3) and the tab become a plain space.
UNICODE_SPACES = "\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"


def _translation_table() -> dict[int, str | None]:
    table: dict[int, str | None] = dict.fromkeys(range(0x00, 0x20))  # C0 controls ...
    table.update(dict.fromkeys(range(0x7F, 0xA0)))  # ... DEL and the C1 controls
    table.update(dict.fromkeys(range(0xD800, 0xE000)))  # lone surrogates cannot even be written as UTF-8
    table[0xFEFF] = None  # a byte order mark inside text is invisible noise
    table[0xFFFE] = table[0xFFFF] = None  # noncharacters: never text (PDFium uses U+FFFE as a marker)
    del table[ord("\n")]
    table.update({ord(space): " " for space in UNICODE_SPACES})
    return table


_TRANSLATION = _translation_table()
_LINE_BREAK = re.compile("|".join(re.escape(b) for b in LINE_BREAKS))
_SPACES = re.compile(r" {2,}")
_LINE_EDGE_SPACES = re.compile(r" *\n *")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_LIGATURE = re.compile("[" + "".join(LIGATURES) + "]")
# A hyphen (ASCII or U+2010) ending a line, between two letters; case is checked in _rejoin.
_HYPHENATED_BREAK = re.compile(r"(?<=[^\W\d_])[-\u2010]\n(?=[^\W\d_])")


def _word_around(text: str, start: int, end: int) -> tuple[str, str]:
    """The run of letters ending at `start` and the run starting at `end`."""
    before = start
    while before > 0 and text[before - 1].isalpha():
        before -= 1
    after = end
    while after < len(text) and text[after].isalpha():
        after += 1
    return text[before:start], text[end:after]


def _rejoin(match: re.Match[str]) -> str:
    head, tail = _word_around(match.string, match.start(), match.end())
    # Both halves wholly lowercase: "inter-/national" joins, "Anglo-/Saxon" and "Well-/known" (a capital) stay.
    return "" if head.islower() and tail.islower() else match.group(0)


def normalize_text(text: str) -> str:
    """The normalised form of `text` (see the module notes for every rule)."""
    # Line breaks first: the deletions below would otherwise drop the form feeds and NELs that separate lines.
    text = _LINE_BREAK.sub("\n", text)
    text = text.replace(SOFT_HYPHEN + "\n", "").translate(_TRANSLATION).replace(SOFT_HYPHEN, "")
    text = _LIGATURE.sub(lambda m: LIGATURES[m.group(0)], text)
    # NFC after every deletion, so that a removed character cannot leave a decomposed pair behind it; before the
    # hyphen rule, which asks whether a letter is lowercase.
    text = unicodedata.normalize("NFC", text)
    text = _SPACES.sub(" ", text)
    text = _LINE_EDGE_SPACES.sub("\n", text)
    text = _HYPHENATED_BREAK.sub(_rejoin, text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip(" \n")
