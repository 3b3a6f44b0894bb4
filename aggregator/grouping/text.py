"""Text features of items: the project's one text library for grouping, stories and evaluation.

``clean_text`` is the one cleaner; ``embedding_text`` decides what the embedder sees; words,
shingles, names (a light NER: words a batch capitalises inside sentences), numbers and TF-IDF
weights are what the evidence model compares.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from itertools import chain, count, pairwise

import numpy as np
from scipy.sparse import csr_matrix

from aggregator.models import Item
from aggregator.text import DATED, LEADING_STAMP, MONTH_NAME, outlet_name

# Items whose time is unknown (e.g. a labelled file without dates) carry this timestamp;
# grouping then ignores time for them.
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)

# Characters of the summary embedded after the title (~150 tokens with it). The lede carries the
# who/where/when that tells two similar events apart: 300 or 450 characters measured worse on
# ECB+. An embedder that keeps only 112 tokens drops the tail, which costs little.
EMBED_SUMMARY_CHARS = 600

# A summary this long (in words) counts as full text: cosine means more for such items than for
# two headlines. Shorter ones count in proportion: a one- or two-sentence RSS summary of one
# facet of an event says little more than a headline (20 words split such reports of one event).
FULL_SUMMARY_WORDS = 40

SHINGLE_WORDS = 3

# Characters of the summary that count as its lead (the first sentence or two).
LEAD_CHARS = 200

# Tag-shaped spans only (a letter or "/", "!", "?" after "<"): stored summaries are plain text,
# where "fell to < 2%, while wages rose > 3%" is text, not markup.
_TAG = re.compile(r"<[/!?]?[A-Za-z][^<>]*>|<!--.*?-->", re.DOTALL)
# Only references closed by ";": html.unescape alone also reads "&not" in "&nothing" as "¬".
_CHARACTER_REFERENCE = re.compile(
    r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
)


def _decoded(reference: re.Match[str]) -> str:
    return html.unescape(reference.group())


_TRAILING_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*$")
# Letters and digits of any script: text in Cyrillic, Greek or Chinese has words too (read as
# ASCII letters only, it had just its numbers, and two items giving one number were copies).
_WORD = re.compile(r"[^\W_]+(?:'[^\W\d_]+)?")


def clean_text(text: str) -> str:
    """Plain, single-spaced text: strips tags, decodes character references ("AT&amp;T",
    "&#233;"), normalises Unicode and a trailing ellipsis."""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:  # after the tags: an escaped "&lt;b&gt;" is text, not markup
        text = _CHARACTER_REFERENCE.sub(_decoded, text)
    text = unicodedata.normalize("NFKC", text)
    text = " ".join(text.split())  # str.split() and re's \s agree on what is whitespace
    if text.endswith(("...", "…")):  # nothing else can match the anchored pattern
        text = _TRAILING_ELLIPSIS.sub("", text)
    return text


def embedding_text(title: str, summary: str) -> str:
    """What the embedder sees for one item: the title, then the start of the summary.

    A summary that merely repeats the title (some feeds do) is not repeated.
    """
    return _join_parts(*_clean_parts(title, summary))


def _clean_parts(title: str, summary: str) -> tuple[str, str]:
    """Cleaned title, and the cleaned summary without a repeated title, cut to the embedded length."""
    return _trim_summary(clean_text(title), clean_text(summary))


def _trim_summary(title: str, summary: str) -> tuple[str, str]:
    """Of a cleaned title and summary: the summary without a repeated title, cut to length."""
    if summary.lower().startswith(title.lower()):
        summary = summary[len(title) :].lstrip(" .:-")
    return title, _cut_at_word(summary, EMBED_SUMMARY_CHARS)


def _join_parts(title: str, summary: str) -> str:
    if not summary:
        return title
    if not title:
        return summary
    separator = " " if title[-1] in ".!?:" else ". "
    return title + separator + summary


def _cut_at_word(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


# Writing systems an English embedding model reads poorly: it gives their texts a large shared
# component (unknown tokens, letters one by one), so two unrelated Arabic headlines come out
# more alike than two reports of one English story. Han and kana are read together: a text of
# them with any kana is Japanese ("kana"), one without is Chinese ("han"). Arabic letters are
# told apart by language ("arabic", "persian", "urdu", "kurdish"): a model reads each its own
# way.
_SCRIPTS = tuple(
    (name, re.compile(f"[{chars}]"))
    for name, chars in (
        ("arabic", "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"),
        ("hebrew", "\u0590-\u05ff\ufb1d-\ufb4f"),
        ("cyrillic", "\u0400-\u052f"),
        ("greek", "\u0370-\u03ff\u1f00-\u1fff"),
        ("han", "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"),
        ("hangul", "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"),
        ("devanagari", "\u0900-\u097f"),
        ("bengali", "\u0980-\u09ff"),
        ("gurmukhi", "\u0a00-\u0a7f"),
        ("gujarati", "\u0a80-\u0aff"),
        ("oriya", "\u0b00-\u0b7f"),
        ("tamil", "\u0b80-\u0bff"),
        ("telugu", "\u0c00-\u0c7f"),
        ("kannada", "\u0c80-\u0cff"),
        ("malayalam", "\u0d00-\u0d7f"),
        ("sinhala", "\u0d80-\u0dff"),
        ("thai", "\u0e00-\u0e7f"),
        ("lao", "\u0e80-\u0eff"),
        ("tibetan", "\u0f00-\u0fff"),
        ("myanmar", "\u1000-\u109f"),
        ("georgian", "\u10a0-\u10ff\u1c90-\u1cbf"),
        ("armenian", "\u0530-\u058f"),
        ("ethiopic", "\u1200-\u139f"),
        ("khmer", "\u1780-\u17ff"),
    )
)
# hiragana and katakana, not the katakana middle dot (Chinese writes "唐纳德・特朗普" too)
_KANA = re.compile("[\u3040-\u309f\u30a0-\u30fa\u30fc-\u30ff]")
# Languages written in Arabic letters that a model reads differently from Arabic: Urdu and
# Kurdish by letters of their own, Persian by its forms of yeh and kaf (Arabic writes ي and
# ك) and its letters پ چ ژ گ.
_URDU = re.compile("[\u0679\u0688\u0691\u06ba\u06be\u06c1\u06d2\u06d3]")
_KURDISH = re.compile("[\u0695\u06b5\u06c6\u06ce\u06d5]")
_PERSIAN, _ARABIC_YEH_KAF = (
    re.compile("[\u06cc\u06a9\u067e\u0686\u0698\u06af]"),
    re.compile("[\u064a\u0643]"),
)


def script_of(text: str) -> str:
    """The writing system most of ``text``'s letters are in: "latin" (also for none), or one
    of ``_SCRIPTS``'s names."""
    if text.isascii():
        return "latin"
    letters = sum(1 for char in text if char.isalpha())
    for name, pattern in _SCRIPTS:
        if 2 * len(pattern.findall(text)) > letters:
            if name == "han" and _KANA.search(text):
                return "kana"
            if name == "arabic":
                return _arabic_letters_language(text)
            return name
    return "latin"


def _arabic_letters_language(text: str) -> str:
    if _URDU.search(text):
        return "urdu"
    if _KURDISH.search(text):
        return "kurdish"
    persian = len(_PERSIAN.findall(text))
    return "persian" if persian and persian > len(_ARABIC_YEH_KAF.findall(text)) else "arabic"


def item_script(item: Item) -> str:
    """The writing system of an item's title and the start of its summary (``script_of``)."""
    text = f"{item.title} {item.summary[:300]}"
    return "latin" if text.isascii() else script_of(text)  # ASCII: the common case, one check


# A date or clock time in a title ("21 July 2013", "2024-09-18", "5:12PM", "11: 11 GMT"): a
# stamp, no slot of a template. Narrower than DATED, whose "3.0 - 21" is a date.
_TITLE_STAMP = re.compile(
    rf"(?<!\w)(?:{MONTH_NAME}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTH_NAME}(?:,?\s+\d{{4}})?"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|(?:19|20)\d{2}"
    r"|\d{1,2}\s?:\s?\d{2}(?:\s?[ap]\.?m\.?)?(?:\s?(?:gmt|utc|[ecmp][sd]?t))?"
    r"|\d{1,2}\s?[ap]\.?m\.?)(?!\w)",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
# what ends a title without being part of it: a label in brackets, an ellipsis where it was cut
_TRAILING_LABEL = re.compile(r"\s*(?:\([^()]*\)|\[[^\[\]]*\]|\.{3}|…)\s*$")
_DECIMAL_FIGURE = re.compile(r"\d[.,]\d")
_WIRE_VERSION = re.compile(r"^\s*(?:update|wrapup)\s\d{1,2}\s?[-:]\s*", re.IGNORECASE)
_EDGE_PUNCTUATION = ".,:;!?()[]{}\"'‘’“”-–—|/"


def title_template(
    title: str,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None:
    """A title as a template, the names it fills each slot with, and its counts: lower-case
    words stay, each run of capitalised words becomes a slot "N" and each run of tokens with
    digits a slot "#" ("M 2.9 - 5 km NE of Ridgecrest, CA": ("N", "#", "km", "N", "of", "N")
    with "M", "2.9", "NE", "Ridgecrest CA", and the count "5"). A measurement (a figure with
    decimals: a magnitude, a rate) names its event too; a count or a score does not: an outlet
    updates it under one title ("Storm kills 3 in Texas", then 5; a live score). Dates, clock
    times, calendar words ("Wednesday's" too), a wire story's version ("UPDATE 2-") and a
    trailing label ("(VIDEO)", "...") are left out (a page's stamp, not what it reports).
    None when the title is no template:
    fewer than two parts, no name, or no lower-case word and a run of capitals longer than a
    name ("Mayor Opens New Library", whatever it says)."""
    if _DIGIT.search(title):  # every stamp has one
        title = _TITLE_STAMP.sub(" ", _WIRE_VERSION.sub("", title))
    for _ in range(3):  # "(VIDEO) ...": no slot, nor where a cut title ends
        title = _TRAILING_LABEL.sub("", title)
    parts: list[str] = []
    slots: list[list[str]] = []  # each slot's names
    counts: list[str] = []
    run = longest_run = 0
    for raw in title.split():
        token = raw.strip(_EDGE_PUNCTUATION)
        if not token or _POSSESSIVE.sub("", token.lower()) in CALENDAR_WORDS:
            continue
        kind = "#" if any(c.isdigit() for c in token) else "N" if token[0].isupper() else ""
        run = run + 1 if kind == "N" else 0
        longest_run = max(longest_run, run)
        if not kind:
            parts.append(token.lower())
            continue
        if not parts or parts[-1] != kind:
            parts.append(kind)
            slots.append([])
        if kind == "N" or _DECIMAL_FIGURE.search(token):
            slots[-1].append(token)
        else:
            counts.append(token)
    literal = any(part not in ("N", "#") for part in parts)
    # without a word of its own, a template's capitals must be names ("Argyle 4-1 Athletic"),
    # not a headline in title case ("New Game Of Thrones Season 4 Trailer")
    if len(parts) < 2 or not any(slots) or (not literal and longest_run > _NAME_RUN):
        return None
    return tuple(parts), tuple(" ".join(slot) for slot in slots), tuple(counts)


_POSSESSIVE = re.compile(r"['’]s$")  # "Wednesday's" draw: a calendar word
_NAME_RUN = 3  # capitalised words a name runs to ("Nottingham Forest", "Palm Beach County")


def words(text: str) -> list[str]:
    """Lower-case word tokens of already clean text, accents folded ("Beyoncé" -> beyonce)."""
    return _WORD.findall(fold_accents(text).lower().replace("’", "'"))


def _fold_table() -> dict[int, str]:
    """Latin letters with diacritics -> their base letters (é -> e, ß -> ss): the word patterns
    read ASCII letters (fast), and a name is one name with or without its accents."""
    table = {
        ord(c): "".join(b for b in unicodedata.normalize("NFKD", c) if not unicodedata.combining(b))
        for c in chain(map(chr, range(0xC0, 0x250)), map(chr, range(0x1E00, 0x1F00)))
    }
    table.update({ord(c): base for c, base in _LIGATURES.items()})
    return {k: v for k, v in table.items() if v.isascii() and v.isalpha()}


_LIGATURES = {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE",
              "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "Th", "ı": "i"}  # fmt: skip
_FOLD = _fold_table()


# Any letter that _FOLD changes: most non-ASCII text holds only quotes and dashes, and a search
# for these is cheaper than translating it.
_FOLDABLE = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")


def fold_accents(text: str) -> str:
    """``text`` with Latin letters' diacritics removed; letters of other scripts stay as they are
    (their words are words too, though only Latin capitals mark names)."""
    if text.isascii() or not _FOLDABLE.search(text):
        return text
    return text.translate(_FOLD)


def shingles(text: str, size: int = 3) -> frozenset[str]:
    """Word n-grams of a text; a text shorter than ``size`` words is one shingle."""
    return _shingles(words(clean_text(text)), size)


def _shingles(tokens: Sequence[str], size: int) -> frozenset[str]:
    if len(tokens) <= size:
        return frozenset([" ".join(tokens)]) if tokens else frozenset()
    return frozenset(" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1))


def shingle_keys(tokens: Sequence[str], size: int) -> frozenset[tuple[str, ...]]:
    """``_shingles`` as word tuples: the same equalities and overlaps (words hold no spaces),
    without building a string per shingle."""
    if len(tokens) <= size:
        return frozenset([tuple(tokens)]) if tokens else frozenset()
    return frozenset(zip(*(tokens[i:] for i in range(size)), strict=False))


def shingle_sets(token_lists: Sequence[Sequence[str]], size: int) -> list[frozenset]:
    """``_shingles`` of many token lists at once, each shingle coded as one integer: its words'
    numbers (1, 2, ...) as the digits of a base-(vocabulary + 1) number. The coding is one-to-one
    (a text of fewer than ``size`` words has fewer digits), so the sets compare, hash and overlap
    exactly as the shingle strings would; only sets of one call are comparable."""
    numbers = {w: i for i, w in enumerate(dict.fromkeys(chain.from_iterable(token_lists)), 1)}
    base = len(numbers) + 1
    if base**size >= 2**63:  # too many distinct words to code in 64 bits
        return [shingle_keys(t, size) for t in token_lists]
    flat = np.fromiter(map(numbers.__getitem__, chain.from_iterable(token_lists)), dtype=np.int64)
    padded = np.concatenate([flat, np.zeros(size, dtype=np.int64)])
    codes = np.zeros(len(flat), dtype=np.int64)
    for j in range(size):  # windows that run past a text's end are never read
        codes = codes * base + padded[j : j + len(flat)]
    code_list = codes.tolist()
    sets: list[frozenset] = []
    start = 0
    for tokens in token_lists:
        length = len(tokens)
        if length > size:
            sets.append(frozenset(code_list[start : start + length - size + 1]))
        elif length:
            code = 0
            for w in tokens:
                code = code * base + numbers[w]
            sets.append(frozenset([code]))
        else:
            sets.append(frozenset())
        start += length
    return sets


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)  # the union's size, without building it


_SENTENCE_END = re.compile(r"[.!?]['\"’”)]*\s+")
_LOWER_WORD = re.compile(r"\b[a-z][a-z]+\b")
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z’'-]*[a-zA-Z]")
# Days and months, as words() reads them: no names, and what a series' titles differ by.
CALENDAR_WORDS = frozenset(
    """
    monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs
    fri sat january february march april may june july august september october november
    december jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()  # noqa: SIM905 (a word list reads better than 40 quoted lines)
)
# Capitalised words that name no one: calendar words, clock and time-zone abbreviations,
# titles, and wire-agency credits (a dateline's "(Reuters)" says who wrote it, not what happened).
# Abbreviations that are also names (Jan, Jun, Mar) are left out.
_NOT_NAMES = (CALENDAR_WORDS - {"jan", "jun", "mar"}) | frozenset(
    """
    am pm gmt utc est edt cst cdt mst mdt pst pdt akst akdt hst bst cet cest eet eest ist jst
    hkt aest aedt awst mr mrs ms dr sir gov sen rep lt jr sr gen capt col sgt esq ceo ap afp
    reuters dpa
    """.split()  # noqa: SIM905
)
# The full stop of a title ends no sentence: the name after "Sen." is inside one.
_TITLE_STOP = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|Prof|Rev|Sen|Rep|Gov|Gen|Capt|Col|Sgt|Lt|Cmdr|Adm|St|Mt|Ft)\.\s+"
)
# A run of capitalised words with a capitalised function word after two of them is a quoted
# title ("Sox Make Offer To Teixeira"): its verbs and nouns name no one. Organisations write
# such words in lower case ("Bank of America"). An article ends a run: after a headline with no
# full stop, "The" usually starts the text. Whole runs are matched, then checked: linear time.
_RUN_WORD = r"(?!(?:The|A|An)\b)[A-Z][\w’'-]*"
_CAPITALISED_RUN = re.compile(rf"\b{_RUN_WORD}(?: {_RUN_WORD})+")
_TITLE_FUNCTION_WORDS = frozenset(
    "And Are As At Be By For From In Into Is It Its Of On Or That This To With".split()  # noqa: SIM905
)


def _blank_quoted_titles(text: str) -> str:
    """``text`` with each quoted title-case headline replaced by as many spaces (positions kept)."""

    def blank(run: re.Match[str]) -> str:
        is_title = not _TITLE_FUNCTION_WORDS.isdisjoint(run.group().split(" ")[2:])
        return " " * len(run.group()) if is_title else run.group()

    return _CAPITALISED_RUN.sub(blank, text)


# A label in capitals before a colon ("BREAKING NEWS:", "UPDATE:", "POSTED:") that opens a
# sentence is a banner, not a name, and the word after it opens the sentence.
_LABEL = re.compile(r"[A-Z]{2,}(?: [A-Z]{2,}){0,2}:[ \t]+")


# Three or more words in capitals ("FALLOUT CONTINUES AFTER BRAZEN ESCAPE"): a shouted
# headline or banner a page put in the text, not names.
_SHOUTED = re.compile(r"\b[A-Z][A-Z'’-]+(?:[ ,]+[A-Z][A-Z'’-]+){2,}\b")


def _blank_shouted(text: str) -> str:
    return _SHOUTED.sub(lambda m: " " * len(m.group()), text)


def _blank_labels(text: str, starts: set[int]) -> str:
    """``text`` with each label at one of ``starts`` blanked; the word after it joins ``starts``.
    Only sentence starts are tried: matching there is 10x faster than searching the text."""
    spans = sorted(m.span() for start in starts if (m := _LABEL.match(text, start)))
    if not spans:
        return text
    starts.update(end for _, end in spans)
    pieces, done = [], 0
    for start, end in spans:
        pieces += [text[done:start], " " * (end - start)]
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


_OPENING_QUOTES = re.compile(r"[\s\"'“‘(]*")


def _after_dateline(text: str, start: int) -> int:
    """Where the text at ``start`` goes on after a dateline (a stamp with a date) it opens with;
    ``start`` itself without one ("At 10 am Google said" opens with no dateline)."""
    stamp = LEADING_STAMP.match(text, start)
    if stamp is None or not DATED.search(stamp.group()):
        return start
    return _OPENING_QUOTES.match(text, stamp.end()).end()


# Contractions ("I'm", "Don't") are capitalised at a quote's start, inside a sentence.
_CONTRACTION_ENDS = ("'m", "'d", "'ll", "'ve", "'re", "'t")


def name_vocabulary(clean_summaries: Iterable[str]) -> frozenset[str]:
    """Lower-cased words the batch writes with a capital inside sentences and seldom in lower case:
    mostly people, places and organisations. Sentence-initial words and title-case headlines are
    no evidence, so only summaries count."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    # Searching all summaries at once finds what searching their sentences one by one would: the
    # NUL that joins them belongs to no pattern, no pattern matches inside a sentence end, and the
    # characters around both are no word characters; so only where sentences start is needed.
    summaries = [fold_accents(summary) for summary in clean_summaries]
    text = "\0".join(summaries)
    starts = {0}
    offset = 0
    for summary in summaries:
        # a page's dateline that opens a summary ("June 6, 2013 7: 38pm EDT Championship
        # swimmer ..."): the word after it opens the sentence
        starts.update((offset, _after_dateline(text, offset)))
        offset += len(summary) + 1
    starts.update(m.end() for m in _SENTENCE_END.finditer(text))
    starts.difference_update(m.end() for m in _TITLE_STOP.finditer(text))
    text = _blank_labels(text, starts)
    text = _blank_quoted_titles(text)  # blanked to equal length: the sentence starts stay put
    text = _blank_shouted(text)
    capital_words = [m.group() for m in _CAPITALISED.finditer(text) if m.start() not in starts]
    # words never span a space, so the words of all matches at once are each match's words
    capitalised = Counter(w[:-2] if w.endswith("'s") else w for w in words(" ".join(capital_words)))
    lower = Counter(_LOWER_WORD.findall(text))
    return frozenset(
        w
        for w, n in capitalised.items()
        if n >= 2 * lower[w]
        and len(w) > 1
        and w not in ENGLISH_STOP_WORDS
        and w not in _NOT_NAMES
        and not w.endswith(_CONTRACTION_ENDS)
    )


def names_in(tokens: Iterable[str], vocabulary: frozenset[str]) -> frozenset[str]:
    return frozenset(w for w in map(_base_form, tokens) if w in vocabulary)


def _names_of(
    tokens: list[str], vocabulary: frozenset[str], possessives: frozenset[str]
) -> frozenset[str]:
    """``names_in`` by set operations; ``possessives``: the batch's words that end in ``'s``."""
    found = vocabulary.intersection(tokens)
    owned = possessives.intersection(tokens)
    if not owned:
        return found
    bases = vocabulary.intersection(w[:-2] for w in owned)
    return frozenset(w for w in found if not w.endswith("'s")) | bases


def _base_form(word: str) -> str:
    """``palin's`` -> ``palin``: a name is the same name in the possessive."""
    return word[:-2] if word.endswith("'s") else word


# ---------------------------------------------------------------- per-item features of a batch

_NUMBER = re.compile(r"\d+(?:[.,:\-–٫٬]\d+)*")  # ٫ ٬: the Arabic decimal and thousands marks
# When a report was written, not what happened: a date's day ("Dec. 14", "Dec.14"), clock
# times ("8:00", "8 am", wire copy's "0300 GMT"), numeric dates, and which version of a wire
# story it is ("UPDATE 2-", "WRAPUP 1-": the first and the third version of one report).
# Two reports of one event, written hours or days apart, give different ones. Nor is an age
# ("60-year-old", "aged 61") a figure of the event: it describes a person, and reports of one
# arrest disagree on it (60 and 61), while two events differ in whose age it is (their names).
# Nor is a stock index's number ("S&P 500", "FTSE 100"): part of its name, which markets
# reports of different days and companies share.
_STAMP_OR_AGE = re.compile(
    rf"\b{MONTH_NAME}(?:\s+|(?<=\.))\d{{1,2}}(?:st|nd|rd|th)?\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH_NAME}(?!\w)"
    r"|\b\d{1,2}\s?:\s?\d{2}(?:\s?:\s?\d{2})?(?!\d)"
    r"|\b(?:[01]\d|2[0-3])[0-5]\d\s?(?:gmt|utc|local\s+time)\b"
    r"|\b\d{1,2}(?:\s?[.:]\s?\d{2})?\s?[ap]\.?m\b\.?"
    # a numeric date writes one mark twice: "4.2 - 14" (a magnitude, then a distance) is none
    r"|\b\d{1,4}\s?(?P<mark>[/.\-])\s?\d{1,2}\s?(?P=mark)\s?\d{2,4}\b"
    r"|\b\d{1,3}\s?-?\s?years?\s?-?\s?old\b|\baged?\s+\d{1,3}\b"
    r"|\b(?:update|wrapup)\s\d{1,2}\s?[-:](?!\d)"
    r"|\b(?:s\s?&\s?p\s?500|ftse\s?(?:100|250)|nikkei\s?225|russell\s?[123]000|stoxx\s?600"
    r"|stoxx\s?50|asx\s?200|nasdaq\s?100|dax\s?(?:30|40)|cac\s?40|fortune\s?(?:500|1000))"
    r"\b(?![.,]\d)",
    re.IGNORECASE,
)


_STAMP_REACH = 16  # a stamp reaches this far from its number ("th of September")
# News gives most ages in apposition: "Eric Kirkpatrick, 61, of Vancouver" (see above).
_AGE_IN_APPOSITION = re.compile(r", (\d{1,2}),(?!\d)")  # not "In Detroit, 12,000 workers"
_ENDS_WITH_NAME = re.compile(r"\b[A-Z][\w'’.-]*\Z")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")
_DECIMAL = re.compile(r"\d+\.\d+")
_DECIMAL_COMMA = re.compile(r"\d+,\d{1,2}")  # "5,1", "2,25": no thousands are written so
_SCORE_COLON = re.compile(r"\d{1,3}:\d{1,3}")  # "2:1" (a clock time was left out before)
# Digits of other scripts ("٥", "५", "５") as ASCII: one figure, however a feed writes it
_ASCII_DIGITS = {
    ord(char): str(value)
    for char, value in (
        (chr(code), unicodedata.digit(chr(code), None)) for code in range(0x80, 0x10000)
    )
    if value is not None and unicodedata.category(char) == "Nd"
}


def in_ascii(number: str) -> str:
    """A number as written, in ASCII digits and marks, a decimal comma as a point: "٥٫١" and
    "5,1" are "5.1" ("1,200" stays as it is)."""
    if not number.isascii():
        number = number.translate(_ASCII_DIGITS).replace("٫", ".").replace("٬", ",")
    if "," in number and _DECIMAL_COMMA.fullmatch(number):
        number = number.replace(",", ".")
    return number


def _one_form(number: str) -> str:
    """One number written one way: "1,200" and "1200", "2–0", "2:0" and "2-0", "6.0" and "6",
    the decimal comma of most of Europe ("5,1" and "5.1"), other scripts' digits ("٥" and "5"):
    two reports giving one figure in two forms do not conflict on it."""
    number = in_ascii(number)
    if ":" in number and _SCORE_COLON.fullmatch(number):
        number = number.replace(":", "-")
    if "," in number and _THOUSANDS.fullmatch(number):
        number = number.replace(",", "")
    elif "." in number and _DECIMAL.fullmatch(number):
        whole, _, fraction = number.partition(".")
        fraction = fraction.rstrip("0")
        number = f"{whole}.{fraction}" if fraction else whole
    return number.replace("–", "-")


def numbers_in(text: str) -> frozenset[str]:
    """The numbers a text gives (scores, magnitudes, amounts, counts, years), leaving out the
    days of dates, clock times and ages."""
    return frozenset(_one_form(m.group()) for m in _numbers_kept(text))


def numbers_as_written(numbers: Iterable[str], texts: Iterable[str]) -> tuple[str, ...]:
    """Each of ``numbers`` (as ``numbers_in`` gives them) as the texts first write it: "1,200"
    where ``numbers_in`` reads 1200; a number no text writes is given as it is."""
    wanted = list(numbers)
    written: dict[str, str] = {}
    for text in texts:
        if all(number in written for number in wanted):
            break
        for match in _numbers_kept(text):
            written.setdefault(_one_form(match.group()), match.group())
    return tuple(written.get(number, number) for number in wanted)


def _lead_and_all_numbers(lead: str, text: str) -> tuple[frozenset[str], frozenset[str]]:
    """``numbers_in`` of an item's lead and of its whole text, reading the text once where the
    lead is its start: the lead's numbers are those that end within it (a day the text's next
    words make a date, "5 | September", is a date's day in the lead too)."""
    if not text.startswith(lead):
        return numbers_in(lead), numbers_in(text)
    kept = _numbers_kept(text)
    return (
        frozenset(_one_form(m.group()) for m in kept if m.end() <= len(lead)),
        frozenset(_one_form(m.group()) for m in kept),
    )


def _numbers_kept(text: str) -> list[re.Match[str]]:
    found = list(_NUMBER.finditer(text))
    if not found:
        return []
    # every stamp lies beside a number: looking for them only there is 7x faster than a scan
    # of the whole text, which tries the month names at every position
    stamps: list[tuple[int, int]] = []
    start, end = found[0].start(), found[0].end()
    for number in [*found[1:], None]:
        if number is not None and number.start() - _STAMP_REACH <= end + _STAMP_REACH:
            end = number.end()
            continue
        window = _STAMP_OR_AGE.finditer(
            text, max(0, start - _STAMP_REACH), min(len(text), end + _STAMP_REACH)
        )
        stamps.extend(m.span() for m in window)
        if number is not None:
            start, end = number.start(), number.end()
    if ", " in text:
        stamps.extend(
            age.span(1)
            for age in _AGE_IN_APPOSITION.finditer(text)
            if _ENDS_WITH_NAME.search(text, max(0, age.start() - 40), age.start())
        )
        stamps.sort()
    # numbers and stamps both come in text order: one sweep drops the numbers a stamp covers
    kept: list[re.Match[str]] = []
    k = 0
    for m in found:
        while k < len(stamps) and stamps[k][1] <= m.start():
            k += 1
        if k == len(stamps) or stamps[k][0] >= m.end():
            kept.append(m)
    return kept


_UNKNOWN_OUTLETS = frozenset(["", "unknown"])


def known_outlet(outlet: str) -> bool:
    """Whether an outlet name names one ("unknown", as some sources write it, does not, nor
    one of invisible characters only)."""
    return outlet_name(outlet).lower() not in _UNKNOWN_OUTLETS


@dataclass(frozen=True)
class ItemText:
    """What the evidence model reads from one item of a batch."""

    tokens: list[str]  # words of the title and the embedded summary
    names: frozenset[str]  # names the batch knows (see ``name_vocabulary``)
    lead_names: frozenset[str]  # those of its names the title and lead mention
    # numbers of the title and embedded summary: scores, magnitudes, amounts, years
    numbers: frozenset[str]
    lead_numbers: frozenset[str]  # those of the title and lead
    terms: frozenset[str]  # its content words (no stop words, no numbers)
    richness: float  # 0 for a headline-only item, 1 for one with a full summary
    day: float  # publication time in days, NaN where unknown
    outlet: str  # lower-cased outlet, "" where unknown


@dataclass(frozen=True)
class TextMatrix:
    """The items' text signals as one sparse row each, in the column segments of ``Segment``:
    content words (unit TF-IDF), names and lead names (square roots of their rarity, so that a
    product is the rarity), numbers, outlet and lead numbers. ``pair_sums`` of two rows is each
    signal's overlap."""

    rows: csr_matrix  # one row per item
    segment_of: csr_matrix  # column -> its segment (columns x SEGMENTS indicator)
    totals: np.ndarray  # each row's overlap with itself, per segment (items x SEGMENTS)
    # one dense row, zero between calls: ``row_overlaps`` spreads a summed row out in it
    _scratch: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scratch", np.zeros(self.rows.shape[1]))

    def pair_sums(
        self, groups_a: Sequence[Sequence[int]], groups_b: Sequence[Sequence[int]]
    ) -> np.ndarray:
        """Per pair of groups of items, the overlap in each segment summed over all pairs of
        items across them (pairs x SEGMENTS)."""
        size_a = np.fromiter(map(len, groups_a), dtype=np.int64, count=len(groups_a))
        size_b = np.fromiter(map(len, groups_b), dtype=np.int64, count=len(groups_b))
        sizes = size_a * size_b
        if len(sizes) == 0:
            return np.zeros((0, SEGMENTS))
        if sizes.sum() > _ITEM_PAIRS_AT_ONCE:  # big groups: the product of their summed rows
            return self._overlap(self._summed(groups_a), self._summed(groups_b))
        # small groups: every pair of items (each of a's items with each of b's, in order),
        # summed back per pair of groups (no summed rows, whose sparse product costs as much as
        # the whole vocabulary)
        items_a = np.fromiter(chain.from_iterable(groups_a), dtype=np.int64)
        items_b = np.fromiter(chain.from_iterable(groups_b), dtype=np.int64)
        owner = np.repeat(np.arange(len(sizes)), sizes)
        local = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        width = size_b[owner]
        left = items_a[(np.cumsum(size_a) - size_a)[owner] + local // width]
        right = items_b[(np.cumsum(size_b) - size_b)[owner] + local % width]
        per_item_pair = self.item_overlaps(left, right)
        return np.add.reduceat(per_item_pair, np.cumsum(sizes) - sizes)  # no group is empty

    def item_overlaps(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Each segment's overlap of the rows ``left[k]`` and ``right[k]`` (pairs x SEGMENTS).

        Few pairs (the merge pass asks once per merge) are matched by a sorted search on
        (pair, column) keys, a few array operations, where scipy's row indexing and product
        cost a millisecond even for one pair."""
        if len(left) > _PAIRS_FOR_SCIPY:  # many pairs: scipy's row-by-row merge is faster
            product = self.rows[left].multiply(self.rows[right]).tocsr()
            pair = np.repeat(np.arange(len(left)), np.diff(product.indptr))
            cells = pair * SEGMENTS + product.indices % SEGMENTS
            return np.bincount(cells, product.data, len(left) * SEGMENTS).reshape(-1, SEGMENTS)
        if len(left) == 0:
            return np.zeros((0, SEGMENTS))
        width = self.rows.shape[1]
        pair_l, at_l = self._entries(left)
        pair_r, at_r = self._entries(right)
        keys_l = pair_l * width + self.rows.indices[at_l]  # ascending: columns sorted per row
        columns_r = self.rows.indices[at_r]
        return _matched_overlaps(
            (keys_l, self.rows.data[at_l]),
            (pair_r * width + columns_r, self.rows.data[at_r]),
            pair_r,
            columns_r,
            len(left),
        )

    def _entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the stored entries of ``rows`` in order: which of ``rows`` holds each, and where
        it sits in the matrix's ``indices``/``data``."""
        starts = self.rows.indptr[rows]
        lengths = self.rows.indptr[rows + 1] - starts
        pair = np.repeat(np.arange(len(rows)), lengths)
        offsets = np.cumsum(lengths) - lengths
        return pair, np.arange(int(lengths.sum())) + np.repeat(starts - offsets, lengths)

    def summed_rows(self, groups: Sequence[Sequence[int]]) -> list[SummedRow]:
        """Each group's rows summed, as its sorted columns and their values."""
        summed = self._summed(groups)
        summed.sort_indices()
        columns = summed.indices.astype(np.int64)  # one conversion, then views of it
        return [
            (columns[start:end], summed.data[start:end])
            for start, end in pairwise(summed.indptr.tolist())
        ]

    def row_overlaps(self, row: SummedRow, others: Sequence[SummedRow]) -> np.ndarray:
        """Each segment's overlap of the summed row ``row`` with each of ``others`` (others x SEGMENTS):
        ``pair_sums`` of groups from their summed rows, whose size does not grow with the number
        of item pairs (equal to it up to the order in which floats are added)."""
        if not others:
            return np.zeros((0, SEGMENTS))
        columns, values = row
        scratch = self._scratch
        scratch[columns] = values
        cols = np.concatenate([c for c, _ in others])
        products = scratch[cols] * np.concatenate([v for _, v in others])
        scratch[columns] = 0.0
        owner = np.repeat(np.arange(len(others)), [len(c) for c, _ in others])
        cells = owner * SEGMENTS + cols % SEGMENTS
        return np.bincount(cells, products, len(others) * SEGMENTS).reshape(-1, SEGMENTS)

    def group_overlaps(
        self, items: np.ndarray, groups: Sequence[Sequence[int]], of_group: np.ndarray
    ) -> np.ndarray:
        """Each segment's overlap of item ``items[k]`` with the rows of ``groups[of_group[k]]``
        summed (pairs x SEGMENTS): ``pair_sums`` of one item and a group, for many pairs at
        once, each looked up in the summed rows instead of once per item pair."""
        if len(items) == 0:
            return np.zeros((0, SEGMENTS))
        summed = self._summed(groups)
        summed.sort_indices()
        width = self.rows.shape[1]
        owner = np.repeat(np.arange(len(groups), dtype=np.int64), np.diff(summed.indptr))
        group_keys = owner * width + summed.indices  # ascending: groups, then sorted columns
        pair, at = self._entries(items)
        columns = self.rows.indices[at]
        keys = of_group[pair].astype(np.int64) * width + columns
        return _matched_overlaps(
            (group_keys, summed.data), (keys, self.rows.data[at]), pair, columns, len(items)
        )

    def _overlap(self, a: csr_matrix, b: csr_matrix) -> np.ndarray:
        return np.asarray((a.multiply(b) @ self.segment_of).todense())

    def _summed(self, groups: Sequence[Sequence[int]]) -> csr_matrix:
        indptr = np.cumsum([0, *map(len, groups)])
        indices = np.fromiter(chain.from_iterable(groups), dtype=np.int64, count=int(indptr[-1]))
        membership = csr_matrix(
            (np.ones(len(indices)), indices, indptr), shape=(len(groups), self.rows.shape[0])
        )
        return membership @ self.rows


def _matched_overlaps(
    sorted_entries: tuple[np.ndarray, np.ndarray],
    entries: tuple[np.ndarray, np.ndarray],
    pair: np.ndarray,
    columns: np.ndarray,
    pairs: int,
) -> np.ndarray:
    """Each segment's overlap per pair (pairs x SEGMENTS): each of ``entries`` (keys of pair
    and column, values) times the entry of the same key among ``sorted_entries`` (ascending
    keys), summed per pair (``pair``) and segment (of ``columns``)."""
    sorted_keys, sorted_values = sorted_entries
    keys, values = entries
    if len(sorted_keys) == 0:
        return np.zeros((pairs, SEGMENTS))
    found = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    hit = sorted_keys[found] == keys
    products = sorted_values[found[hit]] * values[hit]
    cells = pair[hit] * SEGMENTS + columns[hit] % SEGMENTS
    return np.bincount(cells, products, pairs * SEGMENTS).reshape(pairs, SEGMENTS)


# A group's rows summed: its sorted columns and their values.
SummedRow = tuple[np.ndarray, np.ndarray]


def add_rows(a: SummedRow, b: SummedRow) -> SummedRow:
    """The summed row of two groups together."""
    # a stable sort of two sorted runs is a merge (np.unique's sort is not), and keeps a's value
    # of a shared column before b's, so each sum is a's + b's, as bincount in row order adds them
    order = np.argsort(np.concatenate([a[0], b[0]]), kind="stable")
    columns = np.concatenate([a[0], b[0]])[order]
    first = np.diff(columns, prepend=-1) != 0  # columns are >= 0
    at = np.cumsum(first) - 1
    columns = columns[first]
    return columns, np.bincount(at, np.concatenate([a[1], b[1]])[order], len(columns))


_ITEM_PAIRS_AT_ONCE = 200_000
_PAIRS_FOR_SCIPY = 512  # from here scipy's fixed cost (about a millisecond) pays off


class Segment(IntEnum):
    """The text matrix's column segments: one text signal each. Column ``c`` belongs to segment
    ``c % SEGMENTS``."""

    WORDS = 0  # content words, unit TF-IDF
    NAMES = 1  # names anywhere, square root of rarity
    LEAD_NAMES = 2  # names of the title and lead
    NUMBERS = 3  # numbers anywhere
    OUTLET = 4
    LEAD_NUMBERS = 5  # numbers of the title and lead
    # each name once for being named and once more for being in the lead: its overlap less the
    # NAMES and LEAD_NAMES overlaps is how much of each side's lead the other side names anywhere
    # (a's lead with b's text plus b's lead with a's text), so that a lead name the other side
    # gives further down is no conflict
    NAMES_PLUS_LEAD = 6
    NUMBERS_PLUS_LEAD = 7  # the same for numbers


SEGMENTS = len(Segment)


@dataclass(frozen=True)
class BatchText:
    items: list[ItemText]
    name_weight: dict[str, float]  # name -> rarity weight in (0, 1]
    titles: list[str]
    outlets: list[str]  # as written, for explanations
    matrix: TextMatrix


def batch_text(items: Sequence[Item]) -> BatchText:
    """Text features of every item of one grouping batch (rarity is counted within the batch)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    clean_summaries = [clean_text(i.summary) for i in items]
    parts = [
        _trim_summary(clean_text(i.title), summary)
        for i, summary in zip(items, clean_summaries, strict=True)
    ]
    # the lead (title and first sentences) says who and where: two events of one kind differ
    # there, while the rest of two reports of one event may name different people. So with
    # numbers: the lead's conflict, and any number both give is shared, since reports of one
    # event give the same figures in different sentences.
    lead_summaries = [_cut_at_word(summary, LEAD_CHARS) for _, summary in parts]
    leads = [
        _join_parts(title, lead) for (title, _), lead in zip(parts, lead_summaries, strict=True)
    ]
    whole = [_join_parts(*part) for part in parts]
    both_words = [_lead_and_all_words(lead, text) for lead, text in zip(leads, whole, strict=True)]
    tokens = [all_words for _, all_words in both_words]
    # only an item with a summary has names: a headline-only item's evidence must not depend on
    # which full-text items share its batch (title case makes every title word look like a name);
    # nor has German text, which capitalises every noun, nor a summary written in capitals
    named = [
        bool(summary) and not _capitalises_nouns(t) and not _in_capitals(summary)
        for t, (_, summary) in zip(tokens, parts, strict=True)
    ]
    vocabulary = name_vocabulary(s for s, has in zip(clean_summaries, named, strict=True) if has)
    distinct = set(chain.from_iterable(tokens))
    possessives = frozenset(w for w in distinct if w.endswith("'s"))
    names = [
        _names_of(t, vocabulary, possessives) if has else frozenset()
        for t, has in zip(tokens, named, strict=True)
    ]
    lead_names = [
        _names_of(both_words[k][0], names[k], possessives) if names[k] else frozenset()
        for k in range(len(items))
    ]
    # each distinct word's content form once per batch, not once per occurrence
    content_form = {
        w: _base_form(w) for w in distinct - ENGLISH_STOP_WORDS if len(w) > 1 and not w.isdigit()
    }
    content_words = frozenset(content_form)
    content = [
        frozenset(map(content_form.__getitem__, content_words.intersection(t))) for t in tokens
    ]
    rarity = _rarity(content)
    name_weight = _rarity(names)
    # numbers from title and summary joined where no stamp pattern reaches across: joined with
    # ". ", the score in "Lions beat Tigers 3-2" and a summary's "15,000 fans" read "3-2. 15",
    # a numeric date
    numbers = [
        _lead_and_all_numbers(_join_for_numbers(title, lead), _join_for_numbers(title, summary))
        for (title, summary), lead in zip(parts, lead_summaries, strict=True)
    ]
    texts = [
        ItemText(
            tokens=tokens[k],
            names=names[k],
            lead_names=lead_names[k],
            numbers=numbers[k][1],
            lead_numbers=numbers[k][0],
            terms=content[k],
            richness=min(1.0, _word_count(parts[k][1]) / FULL_SUMMARY_WORDS),
            day=_day(item),
            outlet=outlet_name(item.outlet).lower() if known_outlet(item.outlet) else "",
        )
        for k, item in enumerate(items)
    ]
    return BatchText(
        items=texts,
        name_weight=name_weight,
        titles=[title for title, _ in parts],
        outlets=[i.outlet for i in items],
        matrix=_text_matrix(texts, rarity, name_weight),
    )


# German capitalises every noun, so there capitalisation marks no names. Its commonest function
# words tell it apart: four different ones among a text's first 40 words (German news: 5-8;
# the labelled English files: at most 1; Dutch, which capitalises as English does: at most 1).
# Spelled as words() reads them: für, über folded.
_GERMAN_FUNCTION_WORDS = frozenset(
    """
    der die das und ist nicht ein eine einen einem einer eines mit von zu den dem des sich auf
    fur im bei nach wurde wurden sind haben werden auch noch aus dass vom zum zur uber wie als
    oder aber sie wir ich er es
    """.split()  # noqa: SIM905
)


def _capitalises_nouns(tokens: list[str]) -> bool:
    return len(_GERMAN_FUNCTION_WORDS.intersection(tokens[:40])) >= 4


def _in_capitals(text: str) -> bool:
    """Written in capitals (an alert feed, a wire flash): of the vowels in its first 300
    characters, more are capitals (counted in C: a per-letter loop costs a second per 50,000)."""
    head = text[:300]
    upper = sum(map(head.count, "AEIOU"))
    return upper >= 8 and upper > sum(map(head.count, "aeiou"))


def _join_for_numbers(title: str, summary: str) -> str:
    return f"{title} | {summary}" if title and summary else title or summary


def _lead_and_all_words(lead: str, text: str) -> tuple[list[str], list[str]]:
    """``words`` of an item's lead and of its whole text, reading the lead once: where the lead
    ends at a space of the text (or at its end), the text's words are the lead's and then the
    rest's, since no word spans a space and lower-casing is done character by character."""
    lead_words = words(lead)
    if len(lead) == len(text):
        return lead_words, lead_words
    if text.startswith(lead) and text[len(lead)] == " ":
        return lead_words, lead_words + words(text[len(lead) :])
    return lead_words, words(text)  # the lead was cut inside a word


def _text_matrix(
    texts: Sequence[ItemText], rarity: dict[str, float], name_weight: dict[str, float]
) -> TextMatrix:
    """Each segment's keys and values flattened over all items, numbered by C-level look-ups."""
    segments = {
        Segment.WORDS: ([t.terms for t in texts], rarity),  # made unit length per row below
        Segment.NAMES: ([t.names for t in texts], name_weight),  # square roots taken below
        Segment.LEAD_NAMES: ([t.lead_names for t in texts], name_weight),
        Segment.NUMBERS: ([t.numbers for t in texts], None),
        Segment.OUTLET: ([frozenset([t.outlet]) if t.outlet else frozenset() for t in texts], None),
        Segment.LEAD_NUMBERS: ([t.lead_numbers for t in texts], None),
        # a key twice in one row: its values add up (the sparse matrix sums duplicates)
        Segment.NAMES_PLUS_LEAD: ([(*t.names, *t.lead_names) for t in texts], name_weight),
        Segment.NUMBERS_PLUS_LEAD: ([(*t.numbers, *t.lead_numbers) for t in texts], None),
    }
    row_parts, column_parts, value_parts = [], [], []
    width = 1
    for segment, (sets, weight) in segments.items():
        counts = np.fromiter(map(len, sets), dtype=np.int64, count=len(sets))
        keys = list(chain.from_iterable(sets))
        numbers = dict(zip(dict.fromkeys(keys), count()))  # each distinct key's column
        columns = np.fromiter(map(numbers.__getitem__, keys), dtype=np.int64, count=len(keys))
        width = max(width, len(numbers))
        rows = np.repeat(np.arange(len(sets)), counts)
        values = (  # each distinct key's weight looked up once
            np.fromiter(map(weight.__getitem__, numbers), np.float64, len(numbers))[columns]
            if weight is not None
            else np.ones(len(keys))
        )
        if segment == Segment.WORDS:
            norms = np.sqrt(np.bincount(rows, values * values, minlength=len(sets)))
            values = values / np.where(norms > 0, norms, 1.0)[rows]
        elif segment in (Segment.NAMES, Segment.LEAD_NAMES, Segment.NAMES_PLUS_LEAD):
            values = np.sqrt(values)
        row_parts.append(rows)
        column_parts.append(columns * SEGMENTS + int(segment))
        value_parts.append(values)
    width *= SEGMENTS
    rows = csr_matrix(
        (np.concatenate(value_parts), (np.concatenate(row_parts), np.concatenate(column_parts))),
        shape=(len(texts), width),
    )
    # column c belongs to segment c % SEGMENTS
    rows.sort_indices()
    segment_of = csr_matrix(
        (np.ones(width), (np.arange(width), np.arange(width) % SEGMENTS)), shape=(width, SEGMENTS)
    )
    totals = np.asarray((rows.multiply(rows) @ segment_of).todense())
    return TextMatrix(rows, segment_of, totals)


def _rarity(sets: Sequence[Iterable[str]]) -> dict[str, float]:
    """Smoothed inverse document frequency scaled to (0, 1]: 1 for a word one item uses, whatever
    the batch size, so that weights fitted on one batch size mean the same on another."""
    counts = Counter(chain.from_iterable(sets))
    top = math.log(1 + len(sets)) + 1
    return {w: (math.log((1 + len(sets)) / (1 + df)) + 1) / top for w, df in counts.items()}


# Scripts written without spaces between words (Chinese, Japanese kana, Thai, Lao, Khmer,
# Myanmar): about two characters a word.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)


def _word_count(text: str) -> int:
    """Words of a summary (its richness: a headline's few words say less than a report's)."""
    if not text:
        return 0
    spaced = text.count(" ") + 1
    if text.isascii():
        return spaced
    return spaced + len(_UNSPACED.findall(text)) // 2


def _day(item: Item) -> float:
    return math.nan if item.published == UNKNOWN_TIME else item.published.timestamp() / 86400
