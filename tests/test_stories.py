import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from aggregator.digest import make_digest
from aggregator.models import Item
from aggregator.stories import assign_story_ids, find_copies, make_stories, story_keywords
from aggregator.text import without_datelines

T0 = datetime(2024, 5, 1, 8, tzinfo=UTC)


def item(i: int, title: str, summary: str = "", outlet: str = "o", hours: int = 0) -> Item:
    return Item(i, title, summary, outlet, None, T0 + timedelta(hours=hours))


WIRE = "Floods cut the main rail line between the two cities on Tuesday and crews expect repairs"


def test_stories_carry_members_headline_keywords_and_status():
    items = [
        item(0, "Floods cut rail line", WIRE, "a", 0),
        item(1, "Floods cut rail line", WIRE + " to take a week", "b", 1),
        item(2, "Floods close railway", "Water covered the tracks near the river", "c", 2),
        item(3, "Chess champion retires", "The champion said she will coach juniors", "d", 0),
    ]
    vectors = np.array([[1, 0.1], [1, 0.12], [1, 0], [0, 1]], dtype=np.float32)
    stories = make_stories(items, vectors, [0, 0, 0, 1])
    assert [len(s.members) for s in stories] == [3, 1]
    flood = stories[0]
    assert flood.status == "new"
    assert {m.item.id: m.copy_of for m in flood.members} == {0: None, 1: 0, 2: None}
    assert flood.headline_item_id in (0, 2)  # an original, never the copy
    assert "floods" in flood.keywords or "rail" in flood.keywords
    assert re.fullmatch(r"[a-z0-9-]+", flood.id)


def test_headline_prefers_original_over_copy_nearest_the_centroid():
    items = [
        item(0, "Original report", WIRE, hours=0),
        item(1, "Copy", WIRE, hours=1),
        item(2, "Other take", "different words altogether here", hours=2),
    ]
    vectors = np.array([[0, 1], [1, 0], [1, 0.05]], dtype=np.float32)
    (story,) = make_stories(items, vectors, [0, 0, 0])
    assert story.headline_item_id == 2  # item 1 is nearest but a copy of item 0


def test_a_dateline_taken_for_a_title_is_no_headline():
    """Scraped pages give their dateline as the title ("Friday, June 7, 2013"): the story is
    headed by the nearest report whose title says what happened."""
    items = [
        item(0, "Friday, June 7, 2013", "Esther Williams, swimmer and film star, died at 91."),
        item(1, "Posted: Jun 6, 2013 8: 20 AM ET", "Esther Williams died on Thursday aged 91."),
        item(2, "Esther Williams dies at 91", "The swimmer and actress died in her sleep.", "b"),
    ]
    vectors = np.array([[1, 0], [1, 0.02], [1, 0.3]], dtype=np.float32)
    (story,) = make_stories(items, vectors, [0, 0, 0])
    assert story.headline_item_id == 2
    only_dates = [item(0, "Friday, June 7, 2013"), item(1, "Thursday, June 6, 2013", hours=1)]
    (story,) = make_stories(only_dates, np.array([[1, 0], [1, 0.4]], dtype=np.float32), [0, 0])
    assert story.headline_item_id in (0, 1)  # none says more: the nearest, as before


def test_a_story_is_headed_by_the_tidiest_title_of_its_reports():
    """A story of eight outlets was headed "UniCredit in stunning $21B loss, plans turnaround
    - WNCN: News, Weather for ...", though one report's title is just the news; one of ten by
    "Esther Williams - Esther Williams: ..." beside "Actress Esther Williams Dies at 91"."""
    items = [
        item(0, "UniCredit in stunning $21B loss, plans turnaround - WNCN: News, Weather for ..."),
        item(1, "UPDATE 1-UniCredit posts record loss, plans turnaround", hours=1),
        item(2, "UniCredit in stunning $21B loss, plans turnaround", hours=2),
        item(3, "UniCredit posts record loss | Business | Daily Mail", hours=3),
    ]
    vectors = np.array([[1, 0], [1, 0.05], [1, 0.4], [1, 0.1]], dtype=np.float32)
    (story,) = make_stories(items, vectors, [0, 0, 0, 0])
    assert story.headline_item_id == 2  # the furthest from the centre, but the only tidy one
    tidy = [
        item(0, "UniCredit posts record loss"),
        item(1, "UniCredit loss hits record", hours=1),
        item(2, "Record loss for UniCredit", hours=2),
    ]
    vectors = np.array([[1, 0], [1, 0.2], [1, 0.4]], dtype=np.float32)
    (story,) = make_stories(tidy, vectors, [0, 0, 0])
    assert story.headline_item_id == 1  # all tidy: the nearest the centre, as before


def test_keywords_say_what_a_story_is_about_once_each():
    """A reader's review found "williams, esther, died, dies" and "mt, gox, bankruptcy, files":
    words every story uses to say something was said or done are no keywords, and one word's
    forms ("died", "dies") take one place."""

    williams = [
        "Esther Williams dies at 91",
        "Actress Esther Williams died in her sleep, says publicist",
        "Swimmer Esther Williams dies aged 91",
    ]
    gox = ["Mt. Gox files for bankruptcy", "Bitcoin exchange Mt. Gox files for bankruptcy"]
    other = ["Harbour bridge closed for repairs", "Council votes on the budget"]
    kept = story_keywords([williams, gox, other])
    assert "dies" not in kept[0] and "died" not in kept[0] and "says" not in kept[0]
    assert {"williams", "esther"} <= set(kept[0])
    assert "files" not in kept[1] and "bankruptcy" in kept[1]
    stems = story_keywords([["Markets rally as stocks rallied and a rally lifts shares"], other])
    assert sum(w.startswith("rall") for w in stems[0]) == 1


MAY_5 = datetime(2014, 5, 5, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("summary", "shown"),
    [
        # a page's dateline before the text, as scrapers and some feeds keep it: with a label
        (
            "PUBLISHED: THURSDAY, MAY 2, 2013, 1: 32 PM UPDATED: FRIDAY, MAY 3, 2013, 12: 58 AM "
            "Lindsay Lohan checked in.",
            "Lindsay Lohan checked in.",
        ),
        ("Updated: May 16, 2005, 6: 03 PM ET The NCAA wrote.", "The NCAA wrote."),
        ("POSTED: 1052 GMT (1852 HKT), April 10, 2007 A man fled.", "A man fled."),
        ("POSTED: 05 / 02 / 07, 9: 00 PM PDT | A judge ruled.", "A judge ruled."),
        ("Published on: Fri, 11 Nov 2011 at 09: 56 IST New Delhi: A ship", "New Delhi: A ship"),
        ("Updated 5 pm Sunday Night Football preview", "Sunday Night Football preview"),
        # with a label and a colon after a sentence, inside the summary (the demo's top story)
        (
            "Lohan hired Holley for help. PUBLISHED: THURSDAY, MAY 2, 2013, 1: 32 PM UPDATED: "
            "FRIDAY, MAY 3, 2013, 9: 56 AM Lohan checked in.",
            "Lohan hired Holley for help. Lohan checked in.",
        ),
        ("A. Posted: May 5, 2014 B. Updated: June 1, 2014 C.", "A. B. C."),
        # without one, the day the item was published (May 5, 2014 here)
        ("May 5, 2014, 12: 18 AM ET Samuel Dalembert agreed.", "Samuel Dalembert agreed."),
        ("Monday, May 5, 2014 — The council voted.", "The council voted."),
        ("Sun 4 May 2014 Sunday's game", "Sunday's game"),
        ("May 5, 2014 Sunak, Starmer clash", "Sunak, Starmer clash"),
        ("May 5, 2014 PT Barnum museum reopens", "PT Barnum museum reopens"),
        ("May 5, 2014 Saturday Night Live host named", "Saturday Night Live host named"),
        # a day the summary is about, an event's time, or text that goes on is text
        ("December 7, 1941 Pearl Harbor attack: what happened", None),
        ("Saturday, June 8, 2014, 7 PM Library Book Sale", None),
        ("May 5 protesters gathered in the square.", None),
        ("May 5, 2014 at 10:15 AM, the council met.", None),
        ("May 5, 2014 (Reuters) The council voted.", None),
        ("May 5, 2014 / PRNewswire/ -- Acme said", None),
        ("3.12.10 Released today", None),
        ("Updated: Rick Santorum on Sunday tried to clarify.", None),
        ("The rules were updated: May 5 is the deadline.", None),
        ("He said so. Updated: the list follows.", None),
        ("He said so. Posted: 5 pm the list", None),
        ("10 dead in Iowa storms", None),
        ("Published: 2012", None),  # nothing else: kept as it is
        ("", None),
    ],
)
def test_a_dateline_before_a_summary_is_not_shown(summary: str, shown: str | None) -> None:
    assert without_datelines(summary, MAY_5) == (summary if shown is None else shown)


def test_the_digest_shows_summaries_without_their_dateline() -> None:
    """The first thing a reader saw of the demo's top story was "PUBLISHED: THURSDAY, MAY 2,
    2013, 1: 32 PM UPDATED: ..." (ECB+'s pages, as a scraper takes them)."""
    items = [
        Item(
            0, "Esther Williams dies", "Posted: Jun 6, 2013 8: 20 AM ET She died.", "a", None, MAY_5
        ),
        Item(1, "Swimmer Esther Williams dies", "May 5, 2014 The swimmer died.", "b", None, MAY_5),
    ]
    stories = make_stories(items, np.array([[1, 0], [1, 0.02]], dtype=np.float32), [0, 0])
    (story,) = make_digest(stories, MAY_5.date(), MAY_5 + timedelta(hours=2)).stories
    assert story.summary in ("She died.", "The swimmer died.")
    assert [i.summary for i in story.items] == ["She died.", "The swimmer died."]
    assert without_datelines(items[1].summary) == items[1].summary  # no date: kept


def test_ids_are_stable_as_a_story_grows():
    first = [item(0, "a"), item(1, "b"), item(2, "c")]
    v = np.eye(3, dtype=np.float32)
    run1 = make_stories(first, v, [0, 0, 1])
    previous = {m.item.id: s.id for s in run1 for m in s.members}
    second = [*first, item(3, "d")]
    run2 = make_stories(second, np.eye(4, dtype=np.float32), [0, 0, 1, 0])
    run2 = make_stories(second, np.eye(4, dtype=np.float32), [0, 0, 1, 0], previous)
    by_size = {len(s.members): s for s in run2}
    assert by_size[3].id == run1[0].id and by_size[3].status == "growing"
    assert by_size[1].id == run1[1].id and by_size[1].status == "unchanged"


def test_same_input_gives_same_new_ids():
    items = [item(0, "a"), item(1, "b")]
    v = np.eye(2, dtype=np.float32)
    assert [s.id for s in make_stories(items, v, [0, 1])] == [
        s.id for s in make_stories(items, v, [0, 1])
    ]


def test_an_id_claimed_by_a_larger_cluster_is_not_reused():
    previous = {1: "s-old", 2: "s-old", 3: "s-old", 4: "s-old"}
    ids = assign_story_ids([[1, 2, 3], [4]], previous)
    assert ids[0] == "s-old"
    assert ids[1] != "s-old" and ids[1].startswith("s-")


def test_new_id_never_collides_with_a_previous_id():
    from aggregator.stories import _fresh_id

    taken = _fresh_id([7, 8], set())
    ids = assign_story_ids([[7, 8], [9]], {9: taken})
    assert len(set(ids)) == 2


def test_copy_detection_needs_near_identical_text():
    a = item(0, "Mayor opens new library", WIRE, hours=0)
    b = item(1, "Mayor opens new library", WIRE, hours=1)
    c = item(2, "Library opening draws crowds", "Hundreds queued to see the building", hours=2)
    assert find_copies([a, b, c]) == {1: 0}


def test_keywords_favour_words_specific_to_the_story():
    kws = story_keywords(
        [["volcano erupts in iceland", "iceland volcano ash"], ["iceland football win"]]
    )
    assert kws[0][0] == "volcano"


def test_a_copy_points_to_the_earliest_similar_original():
    longer = WIRE + " while officials said more rain is expected across the region later this week"
    a = item(0, "Mayor opens new library", longer, hours=0)
    b = item(1, "Mayor opens new library", longer + " too", hours=1)
    c = item(2, "Mayor opens new library", longer + " too", hours=2)
    empty = item(3, "", "", hours=3)
    assert find_copies([a, b, c, empty]) == {1: 0, 2: 0}
    assert find_copies([b, a, c, empty]) == {0: 1, 2: 1}


def test_fresh_ids_skip_every_id_in_use():
    from aggregator.stories import _fresh_id

    base = _fresh_id([5, 6], set())
    previous = {1: base, 2: base + "-2"}
    ids = assign_story_ids([[5, 6], [7]], previous)
    assert ids[0] == base + "-3" and len(set(ids)) == 2


def test_keywords_count_numbers_but_never_show_them():
    kws = story_keywords([["2024 2024 2024 budget vote", "budget"], ["election vote"]], k=2)
    assert kws == [["budget", "vote"], ["election", "vote"]]
    assert all(not w.isdigit() for ws in kws for w in ws)


def test_a_copy_is_what_the_grouping_calls_a_copy():
    from aggregator.grouping import GroupingParams, jaccard, shingle_sets, words

    text = "floods cut the main rail line on tuesday morning"
    changed = text.replace("morning", "evening")  # one shingle of seven differs: 6 / 8
    overlap = jaccard(*shingle_sets([words(text), words(changed)], 3))
    assert GroupingParams().duplicate_jaccard <= overlap < 0.8
    a, b = item(0, "", text, "a", 0), item(1, "", changed, "b", 1)
    vectors = np.array([[1, 0], [1, 0.01]], dtype=np.float32)
    assert find_copies([a, b]) == {1: 0}
    assert {m.item.id: m.copy_of for m in make_stories([a, b], vectors, [0, 0])[0].members} == {
        0: None,
        1: 0,
    }
    stricter = make_stories([a, b], vectors, [0, 0], copy_jaccard=0.9)[0]
    assert all(m.copy_of is None for m in stricter.members)


def test_keywords_drop_contractions_and_possessives_but_keep_names_with_apostrophes():
    kws = story_keywords(
        [
            ["The Most Controversial Essay We've Ever Published", "Benzinga's M&A chatter"],
            ["O'Brien says it's over", "Don't panic, O'Brien says"],
        ],
        k=4,
    )
    assert kws[0] == ["benzinga", "chatter", "controversial", "essay"]
    assert "o'brien" in kws[1] and not {"it's", "it", "don't"} & set(kws[1])


def test_a_copy_stamped_with_the_originals_time_that_credits_it_is_the_copy():
    """A member site republishes the wire's report word for word with the wire's time and
    its credit: stored first (its feed polled first), it was the original and the wire's own
    report its copy. Without a credit, the first stored stays the original."""
    text = "TOKYO (Origin Wire) - A strong quake shook Tokyo on Monday, officials said, " + WIRE
    wire = item(7, "Strong quake shakes Tokyo", text, "Origin Wire", 0)
    member = item(3, "Strong quake shakes Tokyo", text, "Member Daily", 0)
    vectors = np.array([[1, 0], [1, 0.01]], dtype=np.float32)
    (story,) = make_stories([member, wire], vectors, [0, 0])
    assert {m.item.id: m.copy_of for m in story.members} == {3: 7, 7: None}
    plain = text.replace(" (Origin Wire)", "")
    (story,) = make_stories(
        [item(3, member.title, plain, "Member Daily"), item(7, wire.title, plain, "Origin Wire")],
        vectors,
        [0, 0],
    )
    assert {m.item.id: m.copy_of for m in story.members} == {3: None, 7: 3}
