"""Secrets out of text before it is embedded, published or stored: each becomes a marker "[redacted:<kind>]".

Built-in detectors, in this order (a marker is never matched again by a later one):
  private-key   PEM blocks, BEGIN to END; when OCR shows only part of one, the BEGIN line and the base64
                lines that follow it
  aws-key, github-token, gitlab-token, slack-token, api-key (sk-…), google-key, stripe-key, jwt
                the providers' published token shapes
  bearer        the token in "Authorization: Bearer …" / "Bearer …"
  secret        the value in "password: …", "DB_PASSWORD=…", "api_key = '…'", "client_secret: …" and the like,
                and the password in a URL (postgres://user:…@host)
  card          13–19 digits (contiguous or in card-style groups) with a card-network first digit, passing Luhn
  random        a run of ≥ 32 base64/hex characters that looks random (mixed letters and digits, high entropy)
User patterns run first and count as "custom".

What stays, on purpose: prose and identifiers (no digits, or one case only: snake_case, CamelCase, slugs),
URLs' hosts and paths (a long random query value, "?sig=…", is still redacted), file paths' parts, UUIDs,
and 40- or 64-character hex strings (git commits, SHA-1/SHA-256 digests: identifiers worth remembering, and
the "secret" detector still catches one written as "token = <hex>"). Numbers that fail Luhn or start like no
card (dates, phone and invoice numbers, millisecond timestamps) stay.

Text comes from OCR line by line: detectors match within a line ("\n" ends every match but a PEM block's), so
redacting a block's joined lines equals redacting each line, except that a PEM block spanning lines is found
whole. A redacted text keeps its lines (a PEM block becomes a marker on each of its lines, counted once), so
`Redactor.block` keeps every line's box. A secret the screen wraps onto two lines is caught only if a piece is
long enough on its own.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

from encoders.records import TextLine

from .blocks import Block

CUSTOM = "custom"

_BEGIN = r"-{2,} ?BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{2,}"  # OCR may drop a dash or add a space
_END = r"-{2,} ?END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{2,}"
_BODY = r"[^\n]*(?:\n[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*(?=\n|$))*"  # no END: the rest of the line, base64 lines after
_PEM = re.compile(f"{_BEGIN}(?:(?s:.*?){_END}|{_BODY})")

# (kind, regex, substrings one of which every match contains: a C-speed `in` skips most regexes on most text)
_TOKENS: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (kind, re.compile(rx), hints)
    for kind, rx, hints in (
        ("aws-key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", ("AKIA", "ASIA")),
        ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})", ("gh", "github_pat_")),
        ("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}", ("glpat-",)),
        ("slack-token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}", ("xox",)),
        ("stripe-key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}", ("k_live_", "k_test_")),
        ("api-key", r"\bsk-(?=[\w-]*\d)(?:[A-Za-z]+-)*[A-Za-z0-9_-]{20,}", ("sk-",)),  # a digit: no kebab-case
        ("google-key", r"\bAIza[0-9A-Za-z_-]{35}", ("AIza",)),
        ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", ("eyJ",)),
    )
)

_BEARER = re.compile(r"(?i)(\bbearer[ \t]+)([A-Za-z0-9._~+/-]{16,}=*)")

# a name ending in one of these words (DB_PASSWORD, client_secret, access_token, x-api-key; not "tokens",
# "password_hash" or "secretary"), then ":", "=", ":=" or "=>", then the value: quoted, <a placeholder>, or up
# to the next space. The key's start is not matched: the scan starts at the word itself. The regex runs on the
# lower-cased text (case-insensitive matching costs ~8x: 170 against 21 µs per kB), the values come from the text.
_KV_RX = (
    r"(password|passwd|pwd|secret|token|api[_ -]?key|apikey|access[_ -]?key|private[_ -]?key)"
    r"(?:[_-]?(?:key|value))?\b([\"']?[ \t]*(?::=|=>|[:=])[ \t]*)(?:\"([^\"\n]+)\"|'([^'\n]+)'|(<[^>\n]*>|[^\s\"',;]+))"
)
_KV, _KV_ANY_CASE = re.compile(_KV_RX), re.compile(_KV_RX, re.IGNORECASE)
_USERINFO = re.compile(r"(://[^/\s:@]+:)([^/\s@]+)(@)")  # postgres://app:PASSWORD@db
# Values that are no secret: shown masked, a placeholder (<password>, [PAD]) or marker, a variable ($TOKEN,
# {{ token }}), or code on screen (secret: bool, secret=True, token = load(path), pad_token=t["pad"], self.secret)
_NOT_SECRET = re.compile(
    r"[*•●·∙x.…]+|<[^>]*>|\[[^\]]*\]|\[redacted:[\w-]+|[$%{].*|[A-Za-z_][\w.]*[(\[].*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+"
    r"|(?i:true|false|none|null|nil|undefined|bool|bytes|str|string|int|float|optional)"
)

_CARD = re.compile(
    r"(?<![\w-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5})(?![\w-])"
)

_RUN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
HEX_BITS = 3.0  # bits per character; random hex is ~3.7 over 32 chars
B64_BITS = 4.0  # random base64 is ~4.6 over 32 chars; long CamelCase identifiers reach 4.4 too, hence:
# random base64 switches between lower, upper and digit at ~62% of its letters and digits (1st percentile 0.40
# over 32 characters), identifiers only where a word starts (HTMLElement2DContext3DRenderer 0.24, up to ~0.38)
SWITCHES = 0.4


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def looks_random(s: str) -> bool:
    """A run of base64/hex characters that is a key rather than a word, identifier or digest."""
    if _HEX.fullmatch(s):
        if len(s) in (40, 64):  # git commits, SHA-1 / SHA-256 digests
            return False
        return any(c.isdigit() for c in s) and any(c.isalpha() for c in s) and entropy(s) >= HEX_BITS
    kinds = [_kind(c) for c in s if c.isalnum()]  # separators (kebab-case, snake_case) do not count as switches
    if not {"a", "A", "0"} <= set(kinds):  # no digit or one case only: snake_case, slugs, words, "====…"
        return False
    switches = sum(a != b for a, b in itertools.pairwise(kinds)) / (len(kinds) - 1)
    return switches >= SWITCHES and entropy(s) >= B64_BITS


def _kind(c: str) -> str:
    return "a" if c.islower() else "A" if c.isupper() else "0"


def compile_patterns(values: Sequence[object], key: str = "redact.patterns") -> list[re.Pattern[str]]:
    """User regexes; ValueError naming the entry when one is not a string, does not compile, or matches ""."""
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v:
            raise ValueError(f"'{key}'[{i}] must be a non-empty regular expression string, got {v!r}")
        try:
            rx = re.compile(v)
        except re.error as e:
            raise ValueError(f"'{key}'[{i}] {v!r} is not a valid regular expression: {e}") from None
        if rx.search("") is not None:
            raise ValueError(f"'{key}'[{i}] {v!r} matches the empty string (it would redact between every letter)")
        out.append(rx)
    return out


class Redactor:
    """Precompiled detectors, one pass each: ~200 µs per kB of prose or code, ~360 on a screen full of secrets."""

    def __init__(self, patterns: Sequence[str] = (), builtin: bool = True) -> None:
        self.custom = compile_patterns(patterns)
        self.builtin = builtin

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """`text` with every secret replaced by "[redacted:<kind>]", and how many of each kind."""
        counts: Counter[str] = Counter()
        for rx in self.custom:
            text = _sub(rx, text, CUSTOM, counts)
        if not self.builtin:
            return text, counts
        if "PRIVATE KEY" in text:
            text = _sub(_PEM, text, "private-key", counts)
        for kind, rx, hints in _TOKENS:
            if any(h in text for h in hints):
                text = _sub(rx, text, kind, counts)
        if "bearer" in text.lower():
            text = _sub(_BEARER, text, "bearer", counts, lambda m: m.group(1) + _mark("bearer"))
        text = _key_values(text, counts)
        text = _sub(_USERINFO, text, "secret", counts, _userinfo)
        text = _sub(_CARD, text, "card", counts, _card)
        return _sub(_RUN, text, "random", counts, _random), counts

    def block(self, block: Block) -> tuple[Block, Counter[str]]:
        """The block with its text and each of its lines redacted (a redacted text keeps its lines, so each
        line keeps its box); the same block when nothing was found."""
        text, counts = self.redact(block.text)
        if not counts:
            return block, counts
        lines = tuple(TextLine(t, ln.box, ln.score) for t, ln in zip(text.split("\n"), block.lines, strict=True))
        return Block(text, block.box, lines), counts


def _mark(kind: str) -> str:
    return f"[redacted:{kind}]"


def _sub(
    rx: re.Pattern[str],
    text: str,
    kind: str,
    counts: Counter[str],
    replace: Callable[[re.Match[str]], str | None] | None = None,
) -> str:
    """rx's matches replaced (by `replace`, or by the marker on each of their lines, so the text keeps its
    lines); `replace` returning None keeps a match."""

    def one(m: re.Match[str]) -> str:
        out = replace(m) if replace else "\n".join([_mark(kind)] * (m.group(0).count("\n") + 1))
        if out is None:
            return m.group(0)
        counts[kind] += 1
        return out

    return rx.sub(one, text)


def _key_values(text: str, counts: Counter[str]) -> str:
    """The values of "password: …"-style pairs; matched on the lower-cased text, cut from the original."""
    low = text.lower()
    rx, hay = (_KV, low) if len(low) == len(text) else (_KV_ANY_CASE, text)  # a few letters lower to two
    out, at = [], 0
    for m in rx.finditer(hay):
        g = 3 if m.group(3) is not None else 4 if m.group(4) is not None else 5
        value = text[m.start(g) : m.end(g)]
        if _NOT_SECRET.fullmatch(value) or _NOT_SECRET.fullmatch(value.rstrip(")]}")):  # `f(secret=True)`
            continue
        if m.group(1).lower() == "pwd" and value.startswith(("/", "~")):  # $PWD, $OLDPWD: the working directory
            continue
        out += [text[at : m.start(g)], _mark("secret")]
        at = m.end(g)
        counts["secret"] += 1
    return "".join(out) + text[at:] if out else text


def _userinfo(m: re.Match[str]) -> str | None:
    return None if _NOT_SECRET.fullmatch(m.group(2)) else m.group(1) + _mark("secret") + m.group(3)


def _card(m: re.Match[str]) -> str | None:
    digits = re.sub(r"[ -]", "", m.group(0))
    if digits[0] not in "23456" or len(set(digits)) == 1 or not luhn(digits):
        return None
    return _mark("card")


def _random(m: re.Match[str]) -> str | None:
    run, text = m.group(0), m.string
    start = max(text.rfind(c, 0, m.start()) for c in " \t\n") + 1
    before = text[start : m.start()]  # the rest of its word
    if "://" in before and not re.search(r"[?#&=]", before):  # a URL's host or path: only its query values go
        return None
    if _UUID.fullmatch(run):
        return None
    path = run.startswith("/") or run.count("/") >= 3  # a file path's parts are judged one by one
    pieces = [p for p in run.split("/") if len(p) >= 32] if path else [run]
    return _mark("random") if any(looks_random(p) for p in pieces) else None
