"""The normalisers of the citation check: the numbers, dates, times and names a sentence states,
in forms that agree across languages and spellings; pure, no I/O.

``facts``          the numbers, dates, times and months written in a text, each with its readings
``fact_readings``  everything a (cited) text can support, parts and number words included
``names``          the words of a sentence that look like names
``name_key``       a spelling-neutral key: Lukashenko = Lukaschenko, Zelensky = Selenskyj
``name_matches``   a key against a text's keys, with an edit-distance tolerance and compounds
``name_keys``      the keys of every word of a text

Numbers are compared as sets of readings, both sides lenient where writing is ambiguous:
"11.00 Uhr", "11:00", "11 Uhr" and "11 a.m." are all the time 11:00, "9 p.m." is 21:00,
"1.186" and "1,186" may be 1186 or 1.186, "1,5 Millionen" is also 1500000, "15.08.2025",
"15. August 2025", "August 15, 2025" and "2025-08-15" are the day 08-15 of 2025. Number words
count on the passage side ("drei" supports "3"). Names are compared after :func:`name_key`
(lowercase, no diacritics, umlaut to vowel, sch/sh/tsch/ch, ck/k, z/s, w/v, y/j/i, doubled
letters...) with an edit-distance tolerance.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from qabot.lexicon import ENGLISH, GERMAN, MONTHS, STOPWORDS, detect_language

# -- numbers, dates and times -------------------------------------------------------------------

_MONTH_WORDS = "|".join(sorted((re.escape(m) for m in MONTHS), key=len, reverse=True))
_DATE_PATTERNS = (
    (re.compile(r"(?<![\w.])(\d{4})-(\d{1,2})-(\d{1,2})(?!\w)"), "ymd"),
    (re.compile(r"(?<![\w.])(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})?(?![\w])"), "dmy"),
    (re.compile(rf"(?<![\w.])(\d{{1,2}})(?:\.|st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_WORDS})\.?(?:,?\s+(\d{{4}}))?(?!\w)", re.I), "dMy"),
    (re.compile(rf"(?<!\w)({_MONTH_WORDS})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?(?![\w.]\d)", re.I), "Mdy"),
    (re.compile(rf"(?<!\w)({_MONTH_WORDS})(?:\s+(\d{{4}}))?(?!\w)", re.I), "My"),
)
_TIME = re.compile(
    r"(?<![\w.,:])(\d{1,2})(?:([:.])(\d{2}))?\s*(uhr|h(?!\w)|a\.?\s?m\.?|p\.?\s?m\.?|o'clock)?(?![\w:])(?!\.\d)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w])(\d{1,3}(?:(?:[.,]|(?<=\d)[  ’'])\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)(½|¼|¾)?"
                     r"(?:\s*(million(?:s|en)?|mio\.?|milliarde(?:n)?|mrd\.?|billion(?:s)?|thousand|tausend))?",
                     re.IGNORECASE)
_SCALE = {"million": 6, "mio": 6, "milliard": 9, "mrd": 9, "billion": 9, "thousand": 3, "tausend": 3}
_FRACTION = {"½": "0.5", "¼": "0.25", "¾": "0.75"}
_NUMBER_WORDS = {w: i + 2 for i, w in enumerate(
    ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"])}
_NUMBER_WORDS.update({w: i + 2 for i, w in enumerate(
    ["zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwölf"])})
_NUMBER_WORDS.update({"one": 1, "eins": 1, "einem": 1, "einer": 1, "dozen": 12, "dutzend": 12, "hundred": 100,
                      "hundert": 100, "thousand": 1000, "tausend": 1000, "twenty": 20, "zwanzig": 20})


def _canon(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _readings(token: str, fraction: str | None = None, scale: str | None = None) -> set[str]:
    """Every value ``token`` may stand for: "1.186" -> {"1186", "1.186"}, "1,5" -> {"1.5"}."""
    raw = re.sub(r"[  ’']", "", token)
    options: set[str] = set()
    groups = re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", raw)
    if groups:  # "1.186" / "1,186,000": thousands; one separator may also be a decimal point
        options.add(re.sub(r"[.,]", "", raw))
        if raw.count(".") + raw.count(",") == 1:
            options.add(raw.replace(",", "."))
    else:
        parts = re.split(r"[.,]", raw)
        options.add(parts[0] + ("." + parts[-1] if len(parts) > 1 else "") if len(parts) <= 2 else re.sub(r"[.,]", "", raw))
    values: set[str] = set()
    for option in options:
        try:
            number = Decimal(option) + (Decimal(_FRACTION[fraction]) if fraction else 0)
        except InvalidOperation:
            continue
        values.add(_canon(number))
        if scale:
            key = next((k for k in _SCALE if scale.lower().startswith(k)), None)
            if key:
                values.add(_canon(number * Decimal(10) ** _SCALE[key]))
    return values


@dataclass(frozen=True)
class _Fact:
    shown: str  # as written
    readings: frozenset[str]


def _time_readings(hour: int, minute: int, marker: str, *, english: bool) -> set[str]:
    marker = marker.lower().replace(".", "").replace(" ", "")
    if marker == "pm" and hour < 12:
        hour += 12
    elif marker == "am" and hour == 12:
        hour = 0
    out = {f"t{hour}:{minute:02d}"}
    if english and not marker.endswith("m") and 1 <= hour < 12:  # "at 9:00" may be 21:00
        out.add(f"t{hour + 12}:{minute:02d}")
    return out


def facts(text: str) -> list[_Fact]:
    """The numbers, dates, times and months written in ``text``, each with its readings."""
    found: list[_Fact] = []
    taken = [False] * len(text)
    english = detect_language(None, text) == "en"

    def claim(match: re.Match[str], *alternatives: set[str]) -> None:
        """One fact per requirement: a date's day and its year must each be found."""
        for i in range(match.start(), match.end()):
            taken[i] = True
        found.extend(_Fact(match.group(0).strip(), frozenset(readings)) for readings in alternatives)

    for pattern, kind in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(taken[m.start():m.end()]):
                continue
            groups = m.groups()
            if kind == "ymd":
                year, month, day = groups
            elif kind == "dmy":
                day, month, year = groups
                if year is None and not re.match(r"\s", text[m.end():m.end() + 1] or " "):
                    continue
            elif kind == "dMy":
                day, month, year = groups[0], str(MONTHS[groups[1].lower()]), groups[2]
            elif kind == "Mdy":
                month, day, year = str(MONTHS[groups[0].lower()]), groups[1], groups[2]
            else:
                ambiguous = groups[0].lower() in {"may", "mai", "mar", "jun", "jul", "sep", "dec", "aug"}
                if ambiguous and not groups[1] and (groups[0][0].islower() or groups[0].lower() in {"may", "mar"}):
                    continue  # "may" the verb, "Mar" a name: a month only with a day or year
                month, day, year = str(MONTHS[groups[0].lower()]), None, groups[1]
            if not (month and 1 <= int(month) <= 12) or (day and not 1 <= int(day) <= 31):
                continue
            parts = [{f"d{int(month)}-{int(day)}" if day else f"m{int(month)}"}]
            if year:
                parts.append({str(int(year) + (2000 if len(year) == 2 else 0))})
            claim(m, *parts)
    for m in _TIME.finditer(text):
        hour, sep, minute, marker = m.group(1), m.group(2), m.group(3), m.group(4)
        if any(taken[m.start():m.end()]) or not (marker or sep == ":") or int(hour) > 24 or int(minute or 0) > 59:
            continue
        readings = _time_readings(int(hour), int(minute or 0), marker or "", english=english)
        if sep == "." and not marker:
            readings |= _readings(m.group(0))
        claim(m, readings)
    for m in _NUMBER.finditer(text):
        if any(taken[m.start():m.end()]):
            continue
        readings = _readings(m.group(1), m.group(2), m.group(3))
        if re.fullmatch(r"\d{1,2}[.:]\d{2}", m.group(1)):  # "11.00" without "Uhr" may still be a time
            h, mm = re.split(r"[.:]", m.group(1))
            if int(h) <= 24 and int(mm) <= 59:
                readings |= _time_readings(int(h), int(mm), "", english=english)
        claim(m, readings)
    return found


def fact_readings(text: str) -> set[str]:
    """Everything ``text`` can support: its facts' readings, plus the parts of each (a date's
    day and year, a time's hour) and the numbers it writes as words ("drei")."""
    out: set[str] = set()
    for fact in facts(text):
        out |= fact.readings
        for reading in fact.readings:
            if reading.startswith("d"):
                month, day = reading[1:].split("-")
                out.update({day, month, f"m{month}"})
            elif reading.startswith("t"):
                hour, minute = reading[1:].split(":")
                out.add(hour)
                if minute != "00":
                    out.add(f"{hour}.{minute}".rstrip("0"))
    for word in re.findall(r"[^\W\d_]+", text.lower()):
        if word in _NUMBER_WORDS:
            out.add(str(_NUMBER_WORDS[word]))
    return out


# -- names --------------------------------------------------------------------------------------

_NAME_RULES = (
    ("ß", "s"), ("ae", "a"), ("oe", "o"), ("ue", "u"), ("tsch", "ch"), ("tch", "ch"), ("sch", "s"), ("sh", "s"),
    ("kh", "h"), ("ch", "h"), ("ck", "k"), ("ph", "f"), ("th", "t"), ("ts", "s"), ("tz", "s"), ("z", "s"),
    ("c", "k"), ("q", "k"), ("x", "ks"), ("w", "v"), ("y", "i"), ("j", "i"), ("ij", "i"),
)
_NOUN_SUFFIXES = ("ung", "heit", "keit", "schaft", "tion", "tät", "ismus", "nis", "tum", "ling", "chen", "ment",
                  "ität", "enz", "anz", "ei", "ik", "ur", "ie", "sion", "gung", "ismus", "ist", "eur")
_COMMON = STOPWORDS | ENGLISH | GERMAN | frozenset({
    "i", "mr", "mrs", "ms", "dr", "prof", "st", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
    "sunday", "cet", "cest", "mez", "mesz", "utc", "gmt", "est", "edt", "pst", "pdt", "akdt", "montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag", "sonnabend",
})
_TOKEN = re.compile(r"[^\W\d_][\w'’-]*")
# Capitalised only because they open a sentence: a first word is a name unless it is one of these.
_STARTERS = frozenset("""
according after afterwards again also although as at because before both but by despite during each earlier
even eventually finally first for from further furthermore however if in including instead it its later many
meanwhile more moreover most no not now on once only other overall several since so some such that the their
then there these they this those though thus to today tomorrow under until upon we when where while with within
without yesterday yet he she you our local officials reports according last next one two
laut nach am im um zudem außerdem auch aber doch dann danach davor heute gestern morgen bereits zuvor später
zunächst damit dabei dort hier so wie wenn weil da als bei seit trotz während zwar nur erst noch schon es er sie
wir man das dies diese dieser dieses ein eine einer insgesamt demnach demzufolge deshalb daher jedoch allerdings
inzwischen mittlerweile unter vor zum zur beim vom ab bis gegen ohne mit für über
his her their my your behind between throughout nearby among around across along beyond into through toward
towards against like unlike besides beside near above below over every all any another either neither much few
three four five six seven eight nine ten hundreds thousands
sein seine ihr ihre unser drei vier fünf sechs sieben acht neun zehn alle jeder jede viele einige mehrere
""".split())  # noqa: SIM905 (a word list reads better as text)


def name_key(word: str) -> str:
    """A spelling-neutral key for a name: Lukashenko and Lukaschenko, Zelensky and Selenskyj agree."""
    text = word.lower().replace("ß", "ss").replace("ł", "l").replace("ø", "o").replace("đ", "d")
    text = text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"[^a-z]", "", text)
    for old, new in _NAME_RULES:
        text = text.replace(old, new)
    return re.sub(r"(.)\1+", r"\1", text)  # doubled letters once


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, giving up (limit + 1) once it exceeds ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def _tolerance(key: str) -> int:
    return 0 if len(key) <= 2 else 1 if len(key) <= 7 else 2


def name_matches(key: str, keys: Iterable[str]) -> bool:
    """True when the name key ``key`` is one of ``keys``: equal, within the edit tolerance, or an
    inflected or compound form ("Putins", "Kremlangaben" for "Kreml")."""
    for other in keys:
        if key == other:
            return True
        shorter, longer = sorted((key, other), key=len)
        if len(shorter) >= 4 and (longer.startswith(shorter) or (len(shorter) >= 5 and shorter in longer)):
            return True
        if _distance(key, other, _tolerance(shorter)) <= _tolerance(shorter):
            return True
        if len(key) >= 5 and len(other) > len(key) and _distance(key, other[:len(key)], 1) <= 1:
            return True  # the head of a compound: "Kremlin" in "Kremlangaben"
    return False


def names(sentence: str) -> list[str]:
    """The words of ``sentence`` that look like names: capitalised, not its first word, not a
    function word or month; in German (where every noun is capitalised) not a typical noun."""
    german = detect_language(None, sentence) == "de"
    out: list[str] = []
    for i, m in enumerate(_TOKEN.finditer(sentence)):
        word = re.sub(r"['’]s?$", "", m.group(0)).strip("-")
        before = sentence[:m.start()].rstrip()
        opening = i == 0 or before.endswith((".", ":", "!", "?", "\"", "„", "“", "«", "»"))
        if not word or (opening and _plain_opening(word)):
            continue
        for part in [word] if not german else word.split("-"):
            low = part.lower()
            if not part[:1].isupper() or low in _COMMON or low in MONTHS or len(part) < 2:
                continue
            if german and not part.isupper() and (low.endswith(_NOUN_SUFFIXES) or len(part) > 12):
                continue
            out.append(part)
    return list(dict.fromkeys(out))


def _plain_opening(word: str) -> bool:
    """A sentence's first word that is a function word or reads as an adverb, participle or compound
    adjective ("Meanwhile", "Published", "Six-time"): capitalised only because it opens the sentence."""
    low = word.lower()
    return (low in _STARTERS or low.endswith(("ly", "ing")) or (len(low) > 4 and low.endswith("ed"))
            or bool(re.fullmatch(r"[^\W\d_][a-zäöüß]*-[a-zäöüß-]+", word)))


def name_keys(text: str) -> set[str]:
    """The name keys of every word of ``text`` (and of each part of a hyphenated word)."""
    keys: set[str] = set()
    for m in _TOKEN.finditer(text):
        word = re.sub(r"['’]s?$", "", m.group(0))
        for part in {word, *word.split("-")}:
            if key := name_key(part):
                keys.add(key)
    return keys
