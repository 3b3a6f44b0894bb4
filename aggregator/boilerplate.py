"""Site junk that scraped and republished articles carry around the story text.

Republishers wrap a (often spun) copy of a wire story in a weather widget, shop buttons,
"Related Articles", a comment form and ad markers. Left in, that text makes a copy look less
like the original and makes unrelated copies from one site look alike. Only whole, well-known
phrases are removed, so real article text is never cut.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import chain

_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
)

# A weather/date widget at the very start: "18.7 C New York Wednesday, September 27, 2023".
_WIDGET = re.compile(
    rf"^\s*-?\d{{1,3}}(?:\.\d)?\s*°?\s*[CF]\b\s*(?:[A-Z][\w.'-]*\s+){{0,3}}?{_WEEKDAY},?\s+"
    rf"{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}\s*"
)

# Everything after one of these is the page's footer, not the article.
_TAIL_MARKERS = re.compile(
    r"\s(?:Related Articles|Related Posts|You may also like|Leave a Reply|"
    r"Please enter your comment!?|Comments are closed\.?)\s.*$",
    re.IGNORECASE | re.DOTALL,
)


def _as_buttons(*phrases: str) -> str:
    """The phrases as a page's buttons and labels write them (as given, in title case, in
    capitals), never in a sentence's lower case: "urged shoppers to buy now" keeps its words."""
    forms = {form for p in phrases for form in (p, p.title(), p.upper())}
    return "|".join(rf"\b{re.escape(form)}\b" for form in sorted(forms, key=len, reverse=True))


# Case-sensitive: "advertisement spending fell" and "trying to stay connected" are text. A
# label that opens a sentence is junk only before another capital ("Buy now Minister lands"),
# not before the sentence's next word ("Buy now, pay later schemes"), nor after "The" (the
# Advertisement Standards Board).
_PHRASES = re.compile(
    r"-\s*(?:Advertisement|ADVERTISEMENT)\s*-(?:\s*spot_img)?|\bspot_img\b"
    rf"|(?<!The )(?:{_as_buttons('Advertisement', 'Buy now')})(?![,;:]|\.?\s*[a-z])"
    rf"|{_as_buttons('Stay Connected', 'Latest Articles', 'Please enter your name here', 'Sign up for our newsletter', 'Click here to subscribe', 'Share this article')}"
)
# Lower-case words without which the patterns above cannot match: most texts contain none of
# them, and testing for them is ~50x cheaper than running the case-insensitive patterns.
_TAIL_WORDS = ("related", "you may also like", "leave a reply", "please enter", "comments are")
_PHRASE_WORDS = (
    "advertisement", "spot_img", "buy now", "stay connected", "latest articles",
    "please enter", "sign up for", "click here", "share this",
)  # fmt: skip


# Letters that re.IGNORECASE matches to i or s but str.lower() does not turn into them (dotless
# ı, long ſ, and İ, which lowers to i + a combining dot).
_CASE_FOLDS = str.maketrans({"\u0131": "i", "\u017f": "s", "\u0307": None})


def strip_boilerplate(text: str) -> str:
    """The text without site widgets, ad markers and the page's footer."""
    cleaned = text
    if text[:1].isspace() or text[:1].isdigit() or text[:1] == "-":
        cleaned = _WIDGET.sub("", text, count=1)
    lower = cleaned.lower().translate(_CASE_FOLDS)
    if any(word in lower for word in _TAIL_WORDS):
        tail = _TAIL_MARKERS.search(cleaned)
        # A marker in the first half is more likely part of the story than the page's footer.
        if tail and tail.start() > len(cleaned) // 2:
            cleaned = cleaned[: tail.start()]
    if any(word in lower for word in _PHRASE_WORDS):
        cleaned = _PHRASES.sub(" ", cleaned)
    return " ".join(cleaned.split())


# ---------------------------------------------------------------- a feed's own template

# A feed wraps every entry's summary in the same text: "The post … appeared first on Blog",
# "submitted by /u/… [link] [comments]", an aggregator's "Article URL: … Comments URL: …
# Points: …", a podcast's sponsor lines. Such text says nothing about the entry, yet it makes one
# feed's unrelated entries look alike to the embedder and to word overlap, so they group as one
# story. It is found by comparison within one fetched feed, not by a list of generators.
TEMPLATE_MIN_ENTRIES = 3  # fewer summaries than this show no template
TEMPLATE_SHARE = 0.5  # the part of a feed's summaries that must carry the same text
TEMPLATE_MIN_UNITS = 3  # a shorter shared start or end ("The", "he said.") is ordinary prose
TEMPLATE_MAX_SLOT = 3  # words that vary inside a template: a user name, a number, a title's end

_URL_LIKE = re.compile(r"^\W*(?:[a-z][a-z0-9+.-]*://|www\.)", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_TITLE_UNIT = "\0title"
_URL = "\0url"
_SLOT = "\0slot"


def strip_feed_templates(entries: Sequence[tuple[str, str]]) -> list[str]:
    """Each (title, summary) of one fetched feed's entries: its summary without the start and
    end that at least half of the feed's summaries share. Links, numbers and the entry's own
    title count as the same wherever they stand in such text ("The post <its title> appeared
    first on"), and up to ``TEMPLATE_MAX_SLOT`` other words inside it may vary. Text in the
    middle of a summary is never cut, and a summary that is all template becomes empty."""
    summaries = [summary for _, summary in entries]
    with_text = sum(map(bool, summaries))
    needed = max(TEMPLATE_MIN_ENTRIES, math.ceil(TEMPLATE_SHARE * with_text))
    if with_text < needed:
        return summaries
    titles = [[_key(t) for t in title.split()] for title, _ in entries]
    if not _may_share_an_edge(summaries, titles, needed):
        return summaries  # most feeds: checked from each summary's first and last words
    words = [summary.split() for summary in summaries]
    units = [_edge_units(w, t) for w, t in zip(words, titles, strict=True)]
    counts = Counter(chain.from_iterable({u[0] for u in head + tail} for head, tail in units))
    frequent = {shape for shape, n in counts.items() if n >= needed}
    heads = [_edge_run(head, frequent) for head, _ in units]
    tails = [_edge_run(tail[::-1], frequent) for _, tail in units]
    head_template = _shared_template([shapes for shapes, _ in heads], needed)
    tail_template = _shared_template([shapes for shapes, _ in tails], needed)
    if not head_template and not tail_template:
        return summaries
    stripped = []
    for summary, w, (head, tail), (head_shapes, head_ends), (tail_shapes, tail_ends) in zip(
        summaries, words, units, heads, tails, strict=True
    ):
        start, end = 0, len(w)
        if head_template and head_shapes[: len(head_template)] == head_template:
            start = head[head_ends[len(head_template) - 1] - 1][2]
        if tail_template and tail_shapes[: len(tail_template)] == tail_template:
            end = tail[len(tail) - tail_ends[len(tail_template) - 1]][1]
        if (start, end) == (0, len(w)):
            stripped.append(summary)
        else:
            stripped.append(" ".join(w[start:end]) if start < end else "")
    return stripped


def _may_share_an_edge(summaries: list[str], titles: list[list[str]], needed: int) -> bool:
    """Whether at least ``needed`` summaries start alike, or end alike, in their first (last)
    word or in the entry's title: a template starts (ends) with what it shares. Reads only
    each summary's edges."""
    starts: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    for summary, title in zip(summaries, titles, strict=True):
        if not summary.strip():
            continue
        size = max(len(title), 1)
        first = summary.split(maxsplit=size)[:size]
        last = summary.rsplit(maxsplit=size)[-size:]
        starts.update({_shape(first[0]), _TITLE_UNIT if _is_edge_title(first, title) else ""})
        ends.update({_shape(last[-1]), _TITLE_UNIT if _is_edge_title(last, title) else ""})
    starts.pop("", None)
    ends.pop("", None)
    return max([*starts.values(), *ends.values()], default=0) >= needed


def _is_edge_title(words: list[str], title: list[str]) -> bool:
    return (
        len(words) == len(title)
        and _key(words[0]) == title[0]  # most differ here: the rest is then never read
        and _is_title(title)
        and [_key(w) for w in words] == title
    )


def _is_title(title: list[str]) -> bool:
    """A title of two words or more: a one-word title is as likely an ordinary word."""
    return sum(map(bool, title)) >= 2


# A unit is one word of a summary, or the run of words that repeats the entry's title: its shape
# (what must match across entries) and the words it spans (indexes into the summary's words).
Unit = tuple[str, int, int]

# How far from either end of a summary a template is looked for (a long summary's middle is
# never cut, so it need not be read).
TEMPLATE_EDGE_WORDS = 80


def _edge_units(words: list[str], title: list[str]) -> tuple[list[Unit], list[Unit]]:
    """The units of a summary's first and of its last ``TEMPLATE_EDGE_WORDS`` words (the same
    list when the summary is no longer than twice that)."""
    if len(words) <= 2 * TEMPLATE_EDGE_WORDS:
        units = _units(words, title, 0)
        return units, units
    tail_start = len(words) - TEMPLATE_EDGE_WORDS
    return (
        _units(words[:TEMPLATE_EDGE_WORDS], title, 0),
        _units(words[tail_start:], title, tail_start),
    )


def _units(words: list[str], title: list[str], offset: int) -> list[Unit]:
    folded = " ".join(words).casefold()
    folded_words = folded.split(" ")
    if len(folded_words) != len(words):  # a character that folds to a space
        folded_words = [w.casefold() for w in words]
    shapes = _DIGITS.sub("0", folded).split(" ")  # each word's shape, in one pass over the text
    if len(shapes) != len(words):
        shapes = [_shape(w) for w in words]
    elif "://" in folded or "www." in folded:
        shapes = [
            _URL if _URL_LIKE.match(w) else shape for w, shape in zip(words, shapes, strict=True)
        ]
    at: list[int] = []
    if _is_title(title) and all(key in folded for key in title):  # all its words appear
        keys = [w.strip(_PUNCTUATION) for w in folded_words]  # as _key reads them
        at = [
            k for k, key in enumerate(keys) if key == title[0] and keys[k : k + len(title)] == title
        ]
    if not at:  # most summaries do not repeat their title: one unit per word
        end = offset + len(words)
        return list(zip(shapes, range(offset, end), range(offset + 1, end + 1), strict=True))
    units: list[Unit] = []
    k = 0
    while k < len(words):
        if at and k == at[0]:
            units.append((_TITLE_UNIT, offset + k, offset + k + len(title)))
            k += len(title)
            at = [a for a in at if a >= k]  # occurrences overlapping this one are inside it
        else:
            units.append((shapes[k], offset + k, offset + k + 1))
            k += 1
    return units


_PUNCTUATION = "\"'“”‘’()[]{}<>«».,:;!?…-–—|/\\*#"


def _key(token: str) -> str:
    return token.casefold().strip(_PUNCTUATION)


def _shape(token: str) -> str:
    if _URL_LIKE.match(token):
        return _URL
    return _DIGITS.sub("0", token.casefold())


def _edge_run(units: Sequence[Unit], frequent: set[str]) -> tuple[tuple[str, ...], list[int]]:
    """The shapes from one edge inward while they are frequent (a slot of up to
    ``TEMPLATE_MAX_SLOT`` other units counts when frequent ones stand on both sides of it), and
    after each, how many units from the edge it reaches."""
    shapes: list[str] = []
    ends: list[int] = []
    k = 0
    while k < len(units):
        if units[k][0] in frequent:
            shapes.append(units[k][0])
            k += 1
            ends.append(k)
            continue
        gap = 0
        while k + gap < len(units) and units[k + gap][0] not in frequent:
            gap += 1
        if not shapes or gap > TEMPLATE_MAX_SLOT or k + gap == len(units):
            break
        shapes.append(_SLOT)
        k += gap
        ends.append(k)
    return tuple(shapes), ends


def _shared_template(runs: Sequence[tuple[str, ...]], needed: int) -> tuple[str, ...]:
    """The longest start of the runs that at least ``needed`` of them share, ending on a shape
    they share rather than on a slot; empty when shorter than ``TEMPLATE_MIN_UNITS``."""
    template: list[str] = []
    alive = [r for r in runs if r]
    while True:
        counts = Counter(r[len(template)] for r in alive if len(r) > len(template))
        if not counts:
            break
        shape, n = counts.most_common(1)[0]
        if n < needed:
            break
        alive = [r for r in alive if len(r) > len(template) and r[len(template)] == shape]
        template.append(shape)
    while template and template[-1] == _SLOT:
        template.pop()
    anchors = sum(map(_is_anchor, template))
    return tuple(template) if len(template) >= TEMPLATE_MIN_UNITS and anchors >= 2 else ()


# Words every summary uses: a shared start or end made of them and of punctuation ("… the") is
# how prose begins and ends, not a template. (A short list of its own: scikit-learn's stop words
# would cost every parse worker the library's import.)
_FUNCTION_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "had", "has", "have",
    "he", "her", "his", "i", "in", "is", "it", "its", "of", "on", "or", "our", "she", "that",
    "the", "their", "they", "this", "to", "was", "we", "were", "which", "who", "will", "with",
    "you",
))  # fmt: skip


def _is_anchor(shape: str) -> bool:
    """A unit that marks a template: a word other than a function word, a number, a link, the
    entry's title."""
    word = shape.strip(_PUNCTUATION)
    return shape != _SLOT and any(c.isalnum() for c in word) and word not in _FUNCTION_WORDS
