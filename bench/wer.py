"""Word error rate of a transcript against the truth, after one normalisation applied to both sides.

WER = (substitutions + deletions + insertions) / truth words, summed over a set (not rates averaged). Whisper
writes "$4,500", "10%" and "third" where a transcriber may have written "4500 dollars", "10 percent" and
"3rd"; neither is a recognition error, so both sides go through `normalise` first (in the spirit of Whisper's
own EnglishTextNormalizer, much smaller):

1. Unicode NFKC, lower case; "’" is an apostrophe.
2. Symbols become words: "%" → "percent" ("per cent" too), "°" → "degrees", "&" → "and", a currency sign
   before or after a number → "dollars" / "euros" / "pounds" after it; "dollar", "euro", "pound" → plural.
3. Digit groups lose their separators ("4,500" → "4500"); "9:30" → "9 30"; a decimal point between digits
   stays ("4.5"); a digit ordinal stays ("22nd").
4. Apostrophes are dropped ("let's" → "lets"); every other punctuation mark, hyphen and slash is a space.
5. English only (`lang="en"`): number words become digits, within what English allows
   ("twelve hundred" → "1200", "two hundred and five" → "205", "four point five" → "4.5",
   "twenty second" → "22nd", "seven" → "7"); years said in pairs ("twenty twenty six") are not joined;
   "okay" → "ok".

German and Spanish get steps 1–4 only (their number words stay words; the set avoids numbers there).
Diacritics are kept: "für" and "fur" are different words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
TEENS = {w: i + 10 for i, w in enumerate(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}  # fmt: skip
TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
SCALES = {"thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30, "fortieth": 40, "fiftieth": 50, "sixtieth": 60, "seventieth": 70,
    "eightieth": 80, "ninetieth": 90, "hundredth": 100, "thousandth": 1000, "millionth": 1_000_000,
}  # fmt: skip
CURRENCY = {"$": "dollars", "€": "euros", "£": "pounds"}
PLURAL = {"dollar": "dollars", "euro": "euros", "pound": "pounds"}
ALIASES_EN = {"okay": "ok"}


def suffix(n: int) -> str:
    """The digit ordinal of n: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd..."""
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{({1: 'st', 2: 'nd', 3: 'rd'}).get(n % 10, 'th')}"


def _symbols(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("‘", "'")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 4,500 -> 4500 (and 1,000,000 -> 1000000)
    text = re.sub(r"(?<=\d):(?=\d)", " ", text)  # 9:30 -> 9 30
    for sign, word in CURRENCY.items():
        s = re.escape(sign)
        text = re.sub(rf"{s}\s*(\d[\d.]*)", rf"\1 {word}", text)  # $4500 -> 4500 dollars
        text = re.sub(rf"(\d)\s*{s}", rf"\1 {word}", text)  # 4500€ -> 4500 euros
        text = text.replace(sign, f" {word} ")
    text = text.replace("%", " percent ").replace("°", " degrees ").replace("&", " and ")
    text = re.sub(r"\bper cent\b", "percent", text)
    text = text.replace("'", "")  # let's -> lets
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # a full stop is a space, a decimal point is not
    return "".join(c if c.isalnum() or c in ". " else " " for c in text)


def _number(words: Sequence[str], i: int) -> tuple[str, int] | None:
    """The English number spoken from words[i] on, as digits, and the index after it (None: no number here)."""
    total = current = 0
    last = ""  # kind of the last word taken: unit, teen, ten, hundred, scale, and
    scale_cap = 10**12  # scales must shrink: "two thousand three hundred", not "thousand million" backwards
    j = i
    ordinal = False
    while j < len(words) and not ordinal:
        w = words[j]
        if w in ORDINALS:
            n = ORDINALS[w]
            if n < 10 and last in ("", "ten", "hundred", "scale", "and"):
                current += n
            elif 10 <= n < 100 and last in ("", "hundred", "scale", "and"):
                current += n
            elif n == 100 and last in ("unit", "teen", "ten") and current < 100:
                current *= 100
            elif n >= 1000 and last in ("unit", "teen", "ten", "hundred") and n < scale_cap:
                total += current * n
                current = 0
            else:
                break
            ordinal = True
        elif w in UNITS and last in ("", "ten", "hundred", "scale", "and"):
            current += UNITS[w]
            last = "unit"
        elif w in TEENS and last in ("", "hundred", "scale", "and"):
            current += TEENS[w]
            last = "teen"
        elif w in TENS and last in ("", "hundred", "scale", "and"):
            current += TENS[w]
            last = "ten"
        elif w == "hundred" and last in ("unit", "teen", "ten") and current < 100:
            current *= 100
            last = "hundred"
        elif w in SCALES and last in ("unit", "teen", "ten", "hundred") and SCALES[w] < scale_cap:
            total += current * SCALES[w]
            scale_cap = SCALES[w]
            current = 0
            last = "scale"
        elif w == "and" and last in ("hundred", "scale") and j + 1 < len(words):
            nxt = words[j + 1]
            if nxt not in UNITS and nxt not in TEENS and nxt not in TENS and nxt not in ORDINALS:
                break
            last = "and"
        else:
            break
        j += 1
    if j == i:
        return None
    if last == "and":  # never end on "and" (guarded above; kept for safety)
        j -= 1
    value = total + current
    if ordinal:
        return suffix(value), j
    if j + 1 < len(words) and words[j] == "point" and words[j + 1] in UNITS:
        k = j + 1
        digits = ""
        while k < len(words) and words[k] in UNITS:
            digits += str(UNITS[words[k]])
            k += 1
        return f"{value}.{digits}", k
    return str(value), j


def _english(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        got = _number(words, i)
        if got is None:
            out.append(ALIASES_EN.get(words[i], words[i]))
            i += 1
        else:
            out.append(got[0])
            i = got[1]
    return out


def normalise(text: str, lang: str = "en") -> list[str]:
    """The words of `text` after the normalisation above (the module docstring)."""
    words = [PLURAL.get(w, w) for w in _symbols(text).split()]
    return _english(words) if lang == "en" else words


@dataclass
class Score:
    subs: int = 0
    dels: int = 0
    ins: int = 0
    words: int = 0  # truth words
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (truth, transcript) where they differ

    @property
    def errors(self) -> int:
        return self.subs + self.dels + self.ins

    @property
    def wer(self) -> float | None:
        return self.errors / self.words if self.words else None

    def add(self, other: Score) -> None:
        self.subs += other.subs
        self.dels += other.dels
        self.ins += other.ins
        self.words += other.words
        self.pairs += other.pairs


def align(ref: Sequence[str], hyp: Sequence[str]) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) of the cheapest word alignment (each edit costs 1; among equally
    cheap alignments the one with the most substitutions, as jiwer and sclite count)."""
    Cell = tuple[int, int, int, int]  # edits, substitutions, deletions, insertions
    prev: list[Cell] = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i in range(1, len(ref) + 1):
        cur: list[Cell] = [(i, 0, i, 0)]
        for j in range(1, len(hyp) + 1):
            miss = int(ref[i - 1] != hyp[j - 1])
            e, s, d, k = prev[j - 1]
            diag = (e + miss, s + miss, d, k)
            e, s, d, k = prev[j]
            up = (e + 1, s, d + 1, k)
            e, s, d, k = cur[j - 1]
            left = (e + 1, s, d, k + 1)
            cur.append(min(diag, up, left, key=lambda c: (c[0], -c[1])))
        prev = cur
    _, s, d, k = prev[-1]
    return s, d, k


def score(truth: str, transcript: str, lang: str = "en") -> Score:
    """One utterance: edits between the normalised words of `truth` and `transcript`."""
    ref, hyp = normalise(truth, lang), normalise(transcript, lang)
    s, d, i = align(ref, hyp)
    pairs = [(" ".join(ref), " ".join(hyp))] if s + d + i else []
    return Score(s, d, i, len(ref), pairs)


def combine(scores: Sequence[Score]) -> Score:
    """Several utterances as one (edits and truth words summed)."""
    out = Score()
    for s in scores:
        out.add(s)
    return out
