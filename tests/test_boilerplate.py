"""Page junk around a republished article is removed; article text is kept."""

from __future__ import annotations

from aggregator.boilerplate import strip_boilerplate

STORY = (
    "The foreign minister arrived in the capital on Sunday for two days of talks, the first such "
    "visit in five years. Both sides played down hopes of a breakthrough but said that regular "
    "contact between the militaries was the most urgent goal of the trip."
)


def test_widgets_ads_and_footer_are_removed() -> None:
    page = (
        "21.4 C Lisbon Tuesday, March 5, 2024 Buy now Minister lands for talks | World News "
        f"{STORY} - Advertisement - More on the talks later. Related Articles Please enter your "
        "comment! Please enter your name here Stay Connected - Advertisement -spot_img Latest Articles"
    )
    cleaned = strip_boilerplate(page)
    assert cleaned.startswith("Minister lands for talks")
    assert STORY in cleaned
    assert "More on the talks later." in cleaned
    for junk in (
        "Buy now",
        "Advertisement",
        "Related Articles",
        "comment",
        "Stay Connected",
        "21.4 C",
    ):
        assert junk not in cleaned, junk


def test_article_text_is_left_alone() -> None:
    assert strip_boilerplate(STORY) == STORY
    # A marker early in the text is part of the story, not the footer.
    text = "Comments are closed on the ministry's site, officials said. " + STORY
    assert strip_boilerplate(text) == text


def test_markers_spelled_with_letters_that_fold_to_ascii_are_still_removed() -> None:
    # re.IGNORECASE matches İ and ı to i, ſ to s, which str.lower() alone does not.
    cleaned = strip_boilerplate(f"{STORY} ADVERT\u0130SEMENT Share th\u0131s article \u017fpot_img")
    assert cleaned == STORY


def test_text_without_any_marker_only_has_its_spaces_tidied() -> None:
    assert strip_boilerplate(f"  {STORY}\n\n{STORY}\t") == f"{STORY} {STORY}"
