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
_SPACES = re.compile(r"\s+")


def strip_boilerplate(text: str) -> str:
    """The text without site widgets, ad markers and the page's footer."""
    cleaned = _WIDGET.sub("", text, count=1)
    tail = _TAIL_MARKERS.search(cleaned)
    # A marker in the first half is more likely part of the story than the page's footer.
    if tail and tail.start() > len(cleaned) // 2:
        cleaned = cleaned[: tail.start()]
    cleaned = _PHRASES.sub(" ", cleaned)
    return _SPACES.sub(" ", cleaned).strip()
