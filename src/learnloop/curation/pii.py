"""Scrub personal data out of text before it is stored. Pure logic, no I/O, nothing downloaded.

What is detected, by kind (each replaced by its placeholder):

* ``email`` (``<EMAIL>``): ``local@domain.tld`` with an ASCII local part and a dotted domain.
* ``phone`` (``<PHONE>``): Google's libphonenumber (the ``phonenumbers`` package, metadata
  shipped inside it) at its ``VALID`` leniency: a number written with its ``+`` country code
  anywhere in the world, and national formats of the configured ``phone_regions`` (default
  US and GB). A number must be a valid, dialable number of its region, so years, prices,
  ratings ("5/5"), dates, version numbers and model names ("iPhone 12") are left alone. A
  10-digit order number that happens to be a valid US number is scrubbed: the price of
  catching "4155552671".
* ``card`` (``<CARD>``): 13 to 19 digits, optionally grouped by single spaces or dashes,
  that pass the Luhn check.
* ``iban`` (``<IBAN>``): two letters, two check digits and 11 to 30 letters or digits
  (spaces allowed between groups) that pass the ISO 13616 mod-97 check.
* ``ip`` (``<IP>``): dotted-quad IPv4 (each part 0-255; not when it directly follows "v",
  "version" or "build", where it is a version number) and IPv6 as the standard library
  parses it (at least two non-empty groups, so "::" or "std::map" are not taken).
* ``name`` (``<NAME>``): **only** names announced by context, since no NER model can be
  downloaded here: an honorific followed by capitalised words ("Mr. John Smith" ->
  "Mr. <NAME>"; Mr, Mrs, Ms, Miss, Mx, Dr, Prof, Sir, Dame, Madam, Mme, Mlle, Herr, Frau), and a
  self-introduction ("my name is John Smith", "my name's john", "I'm called Ann", "call me
  Ann"): the first word after it unless it is a common word ("not", "Monday"), then up to
  three more words that are capitalised (or lowercase, when the first was). A bare name
  ("John loved it"), a signature after "Thanks,", a user name or a street address is **not**
  detected.

Detections are made on the original text; where spans overlap the kind listed first above
wins (an e-mail address wins over the digits inside it). Scrubbing repeats until nothing more
is found, so it is idempotent.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

KINDS: tuple[str, ...] = ("email", "iban", "card", "ip", "phone", "name")
"""Every kind the scrubber knows, in the order that wins overlaps."""

PLACEHOLDERS: dict[str, str] = {
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "card": "<CARD>",
    "iban": "<IBAN>",
    "ip": "<IP>",
    "name": "<NAME>",
}

_Span = tuple[int, int]

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:[ -]\d+)*(?!\d)")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)")
_VERSION_BEFORE = re.compile(r"(?:\bv|\bversion\s*|\bver\.?\s*|\bbuild\s*)$", re.IGNORECASE)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")

_CAP = r"[A-Z](?:'[A-Z])?[a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z](?:'[A-Z])?[a-z]+(?:[A-Z][a-z]+)?)*"  # Ann, O'Neil, McKay-Lee
_HONORIFIC = re.compile(
    rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Madam|Mme|Mlle|Herr|Frau)\.?\s+((?:[A-Z]\.\s*)?{_CAP}(?:\s+{_CAP}){{0,2}})"
)
_INTRO = re.compile(r"\b(?:my\s+name\s+is|my\s+name's|i'?m\s+called|call\s+me)\b", re.IGNORECASE)
_NEXT_WORD = re.compile(r"\s+([A-Za-z][A-Za-z'-]*[a-z])\b")
_CAP_WORD = re.compile(_CAP)
_COMMON_WORDS = (
    "a an the not no so very just really also too and or but i is was am on in at of to for from with by what "
    "that this it if when as because back here there now today tomorrow yesterday monday tuesday wednesday "
    "thursday friday saturday sunday"
)
_NOT_A_NAME = frozenset(_COMMON_WORDS.split())
_MAX_NAME_WORDS = 4


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN without spaces (case-insensitive)."""
    s = iban.upper()
    if not (15 <= len(s) <= 34 and s[:2].isalpha() and s[2:4].isdigit() and s.isalnum()):
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _emails(text: str) -> list[_Span]:
    return [m.span() for m in _EMAIL.finditer(text)]


def _cards(text: str) -> list[_Span]:
    """Within each run of digit groups, the longest Luhn-valid stretches of 13-19 digits, leftmost first."""
    spans: list[_Span] = []
    for run in _DIGIT_RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"\d+", run.group())]
        i = 0
        while i < len(groups):
            found = None
            for j in range(len(groups) - 1, i - 1, -1):
                digits = "".join(text[a:b] for a, b in groups[i : j + 1])
                if 13 <= len(digits) <= 19 and luhn_valid(digits):
                    found = j
                    break
            if found is None:
                i += 1
            else:
                spans.append((groups[i][0], groups[found][1]))
                i = found + 1
    return spans


def _ibans(text: str) -> list[_Span]:
    spans: list[_Span] = []
    for m in _IBAN.finditer(text):
        candidate = m.group()
        # the pattern may run into the words after the IBAN: drop trailing space-separated groups
        cut = len(candidate)
        while cut > 0:
            if iban_valid(candidate[:cut].replace(" ", "")):
                spans.append((m.start(), m.start() + cut))
                break
            cut = candidate.rfind(" ", 0, cut)
    return spans


def _ips(text: str) -> list[_Span]:
    spans: list[_Span] = []
    for m in _IPV4.finditer(text):
        if not _VERSION_BEFORE.search(text, max(0, m.start() - 10), m.start()):
            spans.append(m.span())
    for m in _IPV6.finditer(text):
        candidate = m.group()
        if sum(1 for part in candidate.split(":") if part) < 2:
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        spans.append(m.span())
    return spans


def _names(text: str) -> list[_Span]:
    spans = [m.span(1) for m in _HONORIFIC.finditer(text)]
    for m in _INTRO.finditer(text):
        # the first word, capitalised or not; then capitalised words, or lowercase ones after a lowercase first
        start = end = m.end()
        lowercase = False
        for count in range(_MAX_NAME_WORDS):
            word = _NEXT_WORD.match(text, end)
            if word is None or word.group(1).casefold() in _NOT_A_NAME:
                break
            capitalised = _CAP_WORD.fullmatch(word.group(1)) is not None
            if count == 0:
                start, lowercase = word.start(1), not capitalised
            elif not (capitalised or (lowercase and word.group(1).islower())):
                break
            end = word.end(1)
        if end > start:
            spans.append((start, end))
    return spans


def _phones_finder(regions: Sequence[str]) -> Callable[[str], list[_Span]]:
    import phonenumbers  # lazily: its metadata takes a while to load, and most texts hold no digits

    def find(text: str) -> list[_Span]:
        spans: list[_Span] = []
        for region in regions:
            for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
                spans.append((match.start, match.end))
        return spans

    return find


# Cheap tests a text must pass before a kind's (slower) finder runs: most texts hold no
# personal data, and these keep scrubbing them at a few microseconds each.
_SIX_DIGITS = re.compile(r"\d(?:\W?\d){5}")  # six digits, maybe grouped: cards, IBANs
_PHONE_DIGITS = re.compile(r"\d(?:\W{0,2}\d){5}")  # "(415) 555-2671", "+44 20 7946 0958"
_IP_LIKE = re.compile(r"\d\.\d|[0-9A-Fa-f]:[0-9A-Fa-f]*:")
_MAYBE: dict[str, Callable[[str], bool]] = {
    "email": lambda text: "@" in text,
    "iban": lambda text: _SIX_DIGITS.search(text) is not None,
    "card": lambda text: _SIX_DIGITS.search(text) is not None,
    "phone": lambda text: _PHONE_DIGITS.search(text) is not None,
    "ip": lambda text: _IP_LIKE.search(text) is not None,
    "name": lambda text: bool(_HONORIFIC.search(text) or _INTRO.search(text)),
}


@dataclass(frozen=True)
class ScrubResult:
    """The scrubbed text and how many items of each kind were replaced (kinds found only)."""

    text: str
    found: dict[str, int] = field(default_factory=dict)


class Scrubber:
    """Replaces personal data of the configured ``kinds`` by placeholders (see the module doc).

    ``phone_regions`` are ISO 3166 region codes whose national formats count as phone
    numbers; numbers written with a ``+`` country code are found whatever the regions.
    """

    _MAX_PASSES = 5

    def __init__(self, kinds: Iterable[str] = KINDS, *, phone_regions: Sequence[str] = ("US", "GB")) -> None:
        chosen = set(kinds)
        unknown = chosen - set(KINDS)
        if unknown:
            raise ValueError(f"unknown PII kind(s) {sorted(unknown)}; known: {', '.join(KINDS)}")
        import phonenumbers

        for region in phone_regions:
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"unknown phone region {region!r}; use an ISO 3166 alpha-2 code such as 'US'")
        finders: dict[str, Callable[[str], list[_Span]]] = {
            "email": _emails,
            "iban": _ibans,
            "card": _cards,
            "ip": _ips,
            "phone": _phones_finder(tuple(phone_regions)),
            "name": _names,
        }
        self.kinds: tuple[str, ...] = tuple(k for k in KINDS if k in chosen)
        self._finders = [(kind, finders[kind]) for kind in self.kinds]

    def scrub(self, text: str) -> ScrubResult:
        found: Counter[str] = Counter()
        for _ in range(self._MAX_PASSES):
            text, counts = self._one_pass(text)
            if not counts:
                break
            found.update(counts)
        return ScrubResult(text, dict(found))

    def _one_pass(self, text: str) -> tuple[str, Counter[str]]:
        taken: list[tuple[int, int, str]] = []
        for kind, finder in self._finders:
            if not _MAYBE[kind](text):
                continue
            for start, end in sorted(set(finder(text))):
                if start < end and all(end <= a or start >= b for a, b, _ in taken):
                    taken.append((start, end, kind))
        counts: Counter[str] = Counter(kind for _, _, kind in taken)
        pieces: list[str] = []
        last = 0
        for start, end, kind in sorted(taken):
            pieces += [text[last:start], PLACEHOLDERS[kind]]
            last = end
        pieces.append(text[last:])
        return "".join(pieces), counts


@functools.lru_cache(maxsize=64)
def scrubber_for(kinds: str) -> Scrubber | None:
    """The scrubber of a policy's comma-separated ``pii_scrub`` kinds (None when empty), made once."""
    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip())
    return Scrubber(chosen) if chosen else None


def scrub_text(text: str, kinds: str) -> str:
    """``text`` with the personal data of ``kinds`` replaced (unchanged when ``kinds`` is empty)."""
    scrubber = scrubber_for(kinds)
    return scrubber.scrub(text).text if scrubber is not None else text
