"""Page junk around a republished article is removed; article text is kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.boilerplate import strip_boilerplate, strip_feed_templates

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


def test_footer_markers_spelled_with_letters_that_fold_to_ascii_are_still_removed() -> None:
    # re.IGNORECASE matches İ and ı to i, ſ to s, which str.lower() alone does not.
    cleaned = strip_boilerplate(f"{STORY} RELATED ART\u0130CLES Storm h\u0131ts the coast")
    assert cleaned == STORY


def test_text_without_any_marker_only_has_its_spaces_tidied() -> None:
    assert strip_boilerplate(f"  {STORY}\n\n{STORY}\t") == f"{STORY} {STORY}"


# ---------------------------------------------------------------- a feed's own template

EXCERPTS = [
    ("Council approves new cycle lanes", "The council voted 7-2 for cycle lanes on Main Street."),
    ("Library reopens after flood repairs", "The central library opened its doors on Monday."),
    ("Ferry strike enters third day", "Crossings stayed cancelled as crews stayed out over pay."),
    ("Bakery wins regional bread prize", "A family bakery took first place for its rye loaf."),
    ("Storm closes coastal road", "Police shut the coast road after waves washed over it."),
]


def test_a_wordpress_footer_naming_each_post_is_removed_and_the_excerpt_kept() -> None:
    entries = [
        (title, f"{text} […] The post {title} appeared first on Riverside Daily.")
        for title, text in EXCERPTS
    ]
    assert strip_feed_templates(entries) == [text for _, text in EXCERPTS]


def test_a_summary_that_is_all_template_becomes_empty() -> None:
    """An aggregator's summary names only links and counts; a forum's only its poster."""
    link_posts = [
        (
            title,
            f"Article URL: https://site{k}.example/post/{k * 37} Comments URL: "
            f"https://forum.example/item?id={4100 + k * 13} Points: {k * 11 + 2} # Comments: {k}",
        )
        for k, (title, _) in enumerate(EXCERPTS)
    ]
    assert strip_feed_templates(link_posts) == [""] * len(EXCERPTS)
    posters = ["bob", "al_x", "Zed9", "marta", "k"]
    forum = [
        (title, f"submitted by /u/{who} to r/localnews [link] [comments]")
        for (title, _), who in zip(EXCERPTS, posters, strict=True)
    ]
    assert strip_feed_templates(forum) == [""] * len(EXCERPTS)
    show = "A weekly show about the city's food, from markets to kitchens, with Ana and Tom."
    podcast = [(title, show) for title, _ in EXCERPTS]  # every episode: the show's description
    assert strip_feed_templates(podcast) == [""] * len(EXCERPTS)


def test_a_sponsor_line_most_episodes_carry_is_removed_from_those_that_carry_it() -> None:
    sponsor = "Support the show. Learn more about your ad choices at ads.example/choices"
    entries = [(t, f"{text} {sponsor}" if k != 2 else text) for k, (t, text) in enumerate(EXCERPTS)]
    assert strip_feed_templates(entries) == [text for _, text in EXCERPTS]


def test_ordinary_prose_keeps_every_word() -> None:
    """Summaries that start and end alike as prose does ("The …", "… the city.") and text that
    repeats in the middle of summaries are no template; nor is anything in fewer than three."""
    prose = [
        ("Council approves cycle lanes", "The council said on Monday it would add lanes to the city."),
        ("Library reopens", "The library reopened on Monday after repairs, the city said."),
        ("Ferry strike goes on", "The crews said on Monday they would strike for a week in the city."),
        ("Prize for bakery", "The bakery won a prize on Monday for bread, the city said."),
    ]  # fmt: skip
    assert strip_feed_templates(prose) == [text for _, text in prose]
    middle = [(t, f"{text} Read the full story on our site today. {text}") for t, text in EXCERPTS]
    assert strip_feed_templates(middle) == [text for _, text in middle]
    two = [
        (t, f"{text} The post {t} appeared first on Riverside Daily.") for t, text in EXCERPTS[:2]
    ]
    assert strip_feed_templates(two) == [text for _, text in two]


_WORDS = st.sampled_from(
    ["The", "post", "appeared", "first", "on", "Blog.", "https://x.example/1", "42", "…", "[…]",
     "-", "the", "Read", "more", "»", "Title", "One", "ß", "İ", "Ⅻ", "’s", "\u00a0"]
)  # fmt: skip
_TEXTS = st.lists(_WORDS, max_size=12).map(" ".join)


def _entry(title: str, text: str, footer: bool) -> tuple[str, str]:
    return title, f"{text} The post {title} appeared first on Blog." if footer else text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.builds(_entry, _TEXTS, _TEXTS, st.booleans()), max_size=8))
def test_a_stripped_summary_is_always_one_unbroken_piece_of_the_original(entries) -> None:
    for kept, (_, summary) in zip(strip_feed_templates(entries), entries, strict=True):
        assert kept == summary or " ".join(kept.split()) in " ".join(summary.split())


def test_the_labels_words_in_a_sentence_are_text() -> None:
    """The labels are removed as pages write them, never a sentence's own words."""
    for text in (
        "Officials urged shoppers to buy now before the tariff rises.",
        "Online advertisement spending fell by a tenth.",
        "Families are trying to stay connected with relatives abroad.",
        "The Advertisement Standards Board upheld the complaint.",
        "Buy now, pay later schemes grew fast.",
        "She asked readers to share this article with friends.",
    ):
        assert strip_boilerplate(text) == text
    assert strip_boilerplate("Buy Now Minister lands. ADVERTISEMENT The talks") == (
        "Minister lands. The talks"
    )
