"""Site junk that scraped and republished articles carry around the story text.

Republishers wrap a (often spun) copy of a wire story in a weather widget, shop buttons,
"Related Articles", a comment form and ad markers. Left in, that text makes a copy look less
like the original and makes unrelated copies from one site look alike. Only whole, well-known
phrases are removed, so real article text is never cut.
"""

from __future__ import annotations

import re

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

_PHRASES = re.compile(
    r"(?:-\s*Advertisement\s*-(?:\s*spot_img)?|\bAdvertisement\b\s*(?=[A-Z])|"
    r"\bspot_img\b|\bBuy now\b|\bStay Connected\b|\bLatest Articles\b|"
    r"\bPlease enter your name here\b|\bSign up for our newsletter\b|"
    r"\bClick here to subscribe\b|\bShare this article\b)",
    re.IGNORECASE,
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
