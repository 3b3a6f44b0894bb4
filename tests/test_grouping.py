from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from aggregator.grouping import GroupingParams, explain, group
from aggregator.grouping.evidence import FEATURES, shipped_model
from aggregator.grouping.graph import knn_graph
from aggregator.grouping.merge import near_duplicate_pairs
from aggregator.grouping.text import (
    SEGMENTS,
    UNKNOWN_TIME,
    BatchText,
    _lead_and_all_numbers,
    batch_text,
    clean_text,
    embedding_text,
    jaccard,
    name_vocabulary,
    numbers_in,
    shingle_sets,
    title_template,
    words,
)
from aggregator.models import Item

T0 = datetime(2023, 6, 18, 9, tzinfo=UTC)


def item(i: int, title: str, summary: str = "", outlet: str = "o", when=T0) -> Item:
    return Item(id=i, title=title, summary=summary, outlet=outlet, link=None, published=when)


def shingles(text: str, size: int = 3) -> frozenset[str]:
    """Word n-grams as strings: the plain definition ``shingle_sets`` must agree with."""
    tokens = words(clean_text(text))
    if len(tokens) <= size:
        return frozenset([" ".join(tokens)]) if tokens else frozenset()
    return frozenset(" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1))


def unit(*rows) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class FixedFragments:
    """A clusterer that finds the fragments it is given: ``labels``, or one of every item."""

    def __init__(self, labels=None):
        self.labels = labels

    def fit_predict(self, vectors, graph):
        if self.labels is None:
            return np.zeros(len(vectors), dtype=np.int64)
        return np.asarray(self.labels)


# ---------------------------------------------------------------- text


def test_embedding_text_joins_title_and_summary():
    assert embedding_text("Quake hits town", "Houses fell.") == "Quake hits town. Houses fell."
    assert embedding_text("Quake hits town?", "Houses fell.") == "Quake hits town? Houses fell."
    assert embedding_text("Headline only", "") == "Headline only"


def test_embedding_text_does_not_repeat_a_title_the_summary_starts_with():
    assert embedding_text("Storm nears coast", "Storm nears coast. Ships stay in port.") == (
        "Storm nears coast. Ships stay in port."
    )


def test_embedding_text_cuts_long_summaries_at_a_word():
    text = embedding_text("T", "word " * 1000)
    assert len(text) < 700 and text.endswith("word")


def test_clean_text_strips_tags_space_and_ellipsis():
    assert clean_text("<b>Big</b>\n news  ...") == "Big news"
    assert clean_text("<p class='x'>A</p><!-- ad\n --><br/>B <?xml?>") == "A B"


def test_clean_text_keeps_less_than_and_greater_than_signs_of_plain_text():
    # stored summaries are plain text: what lies between "<" and a later ">" is no tag
    text = "Inflation fell to < 2% in May, while wage growth stayed > 3%, the ONS said."
    assert clean_text(text) == text
    assert (
        clean_text("I <3 NY: visitors up 5% -> 66 million")
        == "I <3 NY: visitors up 5% -> 66 million"
    )


def test_clean_text_decodes_character_references_left_in_feed_text():
    # headline files and some feeds keep "AT&amp;T": "amp" was a word every such item shared
    assert clean_text("AT&amp;T and S&amp;P 500: caf&#233; &quot;deal&quot;") == (
        'AT&T and S&P 500: café "deal"'
    )
    assert "amp" not in words(clean_text("M&amp;A chatter"))
    # an escaped tag is text: it stays, while real markup goes
    assert clean_text("<p>Use &lt;b&gt; for bold</p>") == "Use <b> for bold"
    assert clean_text("Fish & Chips &c, P&G &nothing") == "Fish & Chips &c, P&G &nothing"


# ---------------------------------------------------------------- labels


def test_labels_are_numbered_from_zero_by_first_item_and_deterministic():
    vectors = unit([0, 1, 0], [1, 0, 0], [0, 1, 0.01], [0, 0, 1])
    items = [item(i, title) for i, title in enumerate(("Alpha", "Bravo", "Charlie", "Delta"))]
    labels = group(items, vectors)
    assert labels.tolist() == [0, 1, 0, 2]
    assert group(items, vectors).tolist() == labels.tolist()


def test_every_item_gets_a_label_even_alone():
    assert group([item(0, "x")], unit([1, 0])).tolist() == [0]
    assert group([], np.zeros((0, 3))).tolist() == []


def test_mismatched_vectors_are_an_error():
    with pytest.raises(ValueError):
        group([item(0, "x")], unit([1, 0], [0, 1]))


def test_time_gap_keeps_similar_items_apart_but_not_copies():
    similar = unit([1, 0], [0.8, np.sqrt(1 - 0.8**2)])  # cosine 0.8
    title = "Harbour crane collapses onto container ship"
    apart = [item(0, title), item(1, "Crane falls on ship", when=T0 + timedelta(days=400))]
    close = [item(0, title), item(1, "Crane falls on ship", when=T0 + timedelta(hours=5))]
    copy = [item(0, title), item(1, title + " - Wire", when=T0 + timedelta(days=400))]
    assert len(set(group(apart, similar).tolist())) == 2
    assert len(set(group(close, similar).tolist())) == 1
    assert len(set(group(copy, similar).tolist())) == 1  # a copy republished later


def test_unknown_time_does_not_separate():
    items = [item(0, "a", when=UNKNOWN_TIME), item(1, "b", when=UNKNOWN_TIME)]
    assert len(set(group(items, unit([1, 0], [1, 0])).tolist())) == 1


def test_near_duplicates_join_without_the_merge_pass():
    text = "Rescue teams pulled three climbers from the glacier on Sunday after a storm"
    items = [item(0, text), item(1, text + " - Wire"), item(2, "Unrelated cooking tips")]
    no_merging = GroupingParams(clusterer="none", merge_probability=0.999999)
    labels = group(items, unit([1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]), no_merging)
    assert labels[0] == labels[1] != labels[2]


def test_texts_in_other_scripts_that_share_only_a_number_are_no_copies():
    """Words of any script count: read as ASCII letters only, these four had just "7" left and
    their identical shingle sets made them copies of one another, whatever their embeddings."""
    from aggregator.stories import find_copies

    texts = [
        "Землетрясение магнитудой 7 произошло у побережья",
        "Сборная России выиграла 7 матчей подряд",
        "日本で地震 7",
        "Σεισμός 7 Ρίχτερ στην Κρήτη",
    ]
    assert words(texts[0]) == ["землетрясение", "магнитудой", "7", "произошло", "у", "побережья"]
    items = [item(i, t, outlet=f"o{i}") for i, t in enumerate(texts)]
    labels = group(items, unit(*np.eye(4)), GroupingParams(clusterer="none"))
    assert len(set(labels.tolist())) == 4
    assert find_copies(items) == {}


def test_merged_groups_list_each_item_once():
    """A group's item list and its members' indexes are separate lists: growing the members in
    place when two starting groups merge must not add the smaller one's items twice (the lone
    join reads a story's nearest members from that list)."""
    from aggregator.grouping import merge_pass, prepare
    from aggregator.grouping.merge import Merger

    titles = [
        "Riverside library opens to crowds",
        "Mayor Okafor cuts ribbon at Riverside library",
        "New Riverside library welcomes first readers",
        "Okafor: Riverside library a landmark",
        "Riverside gets a library at last",
        "Crowds queue for Riverside library opening",
    ]
    items = [item(i, t, outlet=f"o{i}") for i, t in enumerate(titles)]
    rng = np.random.default_rng(0)
    vectors = unit(*(np.ones(16) + 0.1 * rng.standard_normal((6, 16))))
    params = GroupingParams(clusterer="none")
    prepared = prepare(items, vectors, params)
    merger = Merger(prepared.unit, prepared.batch, params.evidence(), prepared.series)
    groups = merge_pass(prepared, merger)
    assert sorted(i for g in groups for i in g) == list(range(6))
    assert len(groups) < 6  # something merged
    for gid, indexes in merger.items.items():
        assert sorted(indexes) == sorted(merger.groups[gid].indexes)


def test_clean_text_agrees_with_the_plain_regular_expressions():
    import html
    import re
    import unicodedata

    def reference(text: str) -> str:
        text = re.sub(
            r"&#?\w+;",
            lambda m: html.unescape(m.group()),
            re.sub(r"<[/!?]?[A-Za-z][^<>]*>", " ", text),
        )
        text = unicodedata.normalize("NFKC", text)
        text = re.sub(r"\s+", " ", text).strip()
        return re.sub(r"\s*(?:\.\.\.|…)\s*$", "", text)

    for text in [
        "a\u00a0b\u2028c ...",
        " … ",
        "x <i>y</i>\t… ",
        "ﬁne . . .",
        "a <b",
        "...",
        "",
        "&amp;lt;",
    ]:
        assert clean_text(text) == reference(text)


def test_shingle_sets_compare_like_shingle_strings():
    import random

    rng = random.Random(3)
    token_lists = [
        [rng.choice("abcd") for _ in range(rng.choice([0, 1, 2, 3, 4, 6]))] for _ in range(40)
    ]
    for size in (1, 2, 3):
        strings = [shingles(" ".join(t), size) for t in token_lists]
        coded = shingle_sets(token_lists, size)
        for a in range(len(token_lists)):
            assert len(coded[a]) == len(strings[a])
            for b in range(len(token_lists)):
                assert (coded[a] == coded[b]) == (strings[a] == strings[b])
                assert jaccard(coded[a], coded[b]) == jaccard(strings[a], strings[b])


def test_a_shouted_headline_in_a_summary_names_no_one():
    """A page's banner in capitals ("FALLOUT CONTINUES AFTER BRAZEN ESCAPE") made its words
    names, and the demo's reasons said "different names: BRAZEN, CONTINUES / Beaumont". Two
    capitalised words together ("New York", "FBI agents") still count."""
    summaries = [
        "FALLOUT CONTINUES AFTER BRAZEN ESCAPE Police in Beaumont said two inmates fled.",
        "Officers said the FBI and the US Marshals joined the search near Houston.",
    ]
    vocabulary = name_vocabulary(summaries)
    assert {"fallout", "continues", "brazen", "escape"}.isdisjoint(vocabulary)
    assert {"beaumont", "fbi", "houston", "marshals"} <= vocabulary


def test_name_vocabulary_skips_sentence_and_summary_starts():
    summaries = [
        "Officials said Palin’s aide met Palin. Obama spoke later",
        "Obama replied to Palin in Paris",
        " Paris answered. “Quite so,” said Obama",
    ]
    vocabulary = name_vocabulary(summaries)
    # a capital after an opening quote counts; a leading space means no sentence start
    assert vocabulary == {"palin", "paris", "obama", "quite"}
    assert name_vocabulary(summaries[:2]) == {"palin", "paris"}
    assert name_vocabulary(["Paris is big", "Obama spoke"]) == frozenset()


def test_name_vocabulary_skips_words_that_name_no_one():
    summaries = [
        # a dateline credit, a time zone and a title before a name
        "KABUL (Reuters) - At 9 PM EDT on Friday, Sen. Okafor said “I’m staying in Kabul”",
        # a quoted headline in title case: its verbs and nouns are no names
        "Okafor wrote Mayor Appoints Needless Czar To Oversee Parking, said Kabul officials",
        # function words in lower case: an organisation's name
        "Okafor met the Bank of America chief in Riverside. Riverside thanked Okafor",
        # a headline run straight into the text: the article starts the text, not the title
        "Police said Councillors Vote To Close Library The Riverside council said",
        # a title's full stop ends no sentence: the name after it counts
        "Later, Gov. Mbeki agreed with Dr. Patel",
    ]
    vocabulary = name_vocabulary(summaries)
    assert {"okafor", "kabul", "bank", "america", "riverside", "mbeki", "patel"} <= vocabulary
    for no_name in ("reuters", "edt", "pm", "sen", "i'm", "appoints", "needless", "czar", "vote"):
        assert no_name not in vocabulary


def test_a_banner_label_in_capitals_is_no_name_and_its_next_word_opens_the_sentence():
    summaries = [
        "BREAKING NEWS: Storm hits Leeds after rain.",
        "UPDATE: Officials in Perth said the Perth office shut. POSTED: Police met Okafor",
        "NASA said Okafor spoke",  # no colon: capitals inside a sentence still name someone
    ]
    assert name_vocabulary(summaries) == {"leeds", "perth", "okafor"}
    # a capitalised label inside a sentence is left as it is
    assert "nasa" in name_vocabulary(["Officials said NASA: no launch today, Okafor agreed"])


def test_the_word_after_a_summarys_opening_dateline_opens_its_sentence():
    """A scraped page's dateline ("June 6th, 2013 7: 38pm EDT") ends where its text starts: the
    capital of the word after it is no evidence of a name; a clock time alone is no dateline."""
    summaries = [
        "June 6th, 2013 7: 38pm EDT Championship swimmer Esther Williams has died in Beverly Hills.",
        "07 June 2013 Golden girl of the pool, Esther Williams, died in Beverly Hills.",
        "May 2, 2013 | 5: 03pm “ Tremors shook Leeds,” said Okafor.",
        "At 10 am Google said Okafor would visit.",
    ]
    vocabulary = name_vocabulary(summaries)
    assert {"esther", "williams", "beverly", "hills", "okafor"} <= vocabulary
    for no_name in ("championship", "golden", "tremors"):
        assert no_name not in vocabulary
    assert "google" in name_vocabulary(summaries[3:])


def test_only_items_with_a_summary_have_names_and_the_possessive_is_the_name():
    batch = batch_text(
        [
            item(0, "Palin's Paris visit", "Officials said Palin's aide met Palin in Paris."),
            item(1, "Obama in Paris", ""),  # title case is no evidence of a name
            item(2, "Visit", "Reporters saw Palin in Paris. " + "Then " * 60 + "Palin saw Rome."),
        ]
    )
    assert batch.items[0].names == {"palin", "paris"}
    assert batch.items[1].names == frozenset()
    assert batch.items[2].names == {"palin", "paris", "rome"}
    assert batch.items[2].lead_names == {"palin", "paris"}  # Rome comes after the lead


def test_accented_letters_are_folded_so_words_and_names_stay_whole():
    """ASCII word patterns would cut "Zürich" into z + rich and drop the ö of Erdoğan; folded,
    a name is one word, and the same name with or without its accents."""
    assert words("Erdoğan met Beyoncé in Zürich; Stärke 5.2, Erdstoß") == [
        "erdogan", "met", "beyonce", "in", "zurich", "starke", "5", "2", "erdstoss",
    ]  # fmt: skip
    batch = batch_text(
        [
            item(0, "Talks", "Officials said Erdoğan met Łukasz Nowak in São Paulo on Monday."),
            item(1, "Talks", "Reporters saw Erdogan greet Lukasz Nowak in Sao Paulo."),
        ]
    )
    assert {"erdogan", "lukasz", "nowak", "sao", "paulo"} <= batch.items[0].names
    assert batch.items[0].names & batch.items[1].names == batch.items[1].names


def test_turkish_dotted_capitals_and_vietnamese_letters_fold_too():
    # "İ".lower() is "i" and a combining dot, which no word pattern reads: folded first
    assert words("İstanbul mayor İmamoğlu met Nguyễn Phú Trọng") == [
        "istanbul", "mayor", "imamoglu", "met", "nguyen", "phu", "trong",
    ]  # fmt: skip
    batch = batch_text(
        [
            item(0, "Talks", "Officials said İmamoğlu met Nguyễn Phú Trọng in İstanbul."),
            item(1, "Talks", "Officials said Imamoglu met Nguyen Phu Trong in Istanbul."),
        ]
    )
    assert batch.items[0].names == batch.items[1].names >= {"imamoglu", "nguyen", "istanbul"}


def test_a_summary_in_capitals_has_no_names():
    """An alert feed or a wire flash in capitals: every word would read as a name (two quakes
    in different places would share QUAKE, STRUCK, OFFICIALS). Mixed-case items keep theirs."""
    batch = batch_text(
        [
            item(0, "Quake", "A 6.1 QUAKE STRUCK NEAR PERTH, AUSTRALIA ON MONDAY, OFFICIALS SAID."),
            item(
                1, "Quake", "A 5.2 QUAKE STRUCK NEAR ANTOFAGASTA, CHILE ON MONDAY, OFFICIALS SAID."
            ),
            item(
                2, "Quake", "A 6.1 quake struck near Perth, Australia, on Monday, officials said."
            ),
        ]
    )
    assert batch.items[0].names == batch.items[1].names == frozenset()
    assert {"perth", "australia"} <= batch.items[2].names
    assert batch.items[0].numbers == {"6.1"}  # the numbers still count


def test_a_summary_in_a_script_without_spaces_counts_as_full_text():
    chinese = "中国国家主席周一在北京会见了来访的法国总统，双方就贸易和气候问题交换了意见，并签署了多项合作协议。"
    batch = batch_text([item(0, "会见", chinese * 2), item(1, "会见", "")])
    assert batch.items[0].richness > 0.9  # not a headline's 0.05 for one "word"
    assert batch.items[1].richness == 0.0


def test_german_which_capitalises_every_noun_has_no_names():
    """Two German reports of one quake word their leads with different nouns (Erdbeben, Beben,
    Schäden): read as names, every noun would conflict. English items keep their names."""
    batch = batch_text(
        [
            item(0, "Beben bei Perugia", "Ein Erdbeben der Stärke 5,2 hat die Region um Perugia "
                 "erschüttert. Nach Angaben des Zivilschutzes wurden Gebäude beschädigt."),
            item(1, "Schäden in Perugia", "Das Beben mit einer Magnitude von 5,2 beschädigte in "
                 "Perugia mehrere Häuser und eine Kirche, teilte der Zivilschutz mit."),
            item(2, "Quake near Perugia", "A magnitude 5.2 quake shook the region around Perugia "
                 "on Wednesday, Italy's civil protection agency said."),
        ]
    )  # fmt: skip
    assert batch.items[0].names == batch.items[1].names == frozenset()
    assert batch.items[0].lead_names == frozenset()
    assert {"perugia", "italy"} <= batch.items[2].names
    assert not {"region", "erdbeben", "zivilschutz"} & batch.items[2].names


def test_numbers_come_from_the_whole_text_and_short_summaries_count_in_part():
    later = "Trams began running on Monday. " + "The route runs past the docks. " * 8
    batch = batch_text(
        [
            item(0, "Tram line opens", later + "It cost 410 million."),  # past the lead
            item(1, "Tram line opens", "The 410 million line opened on Monday."),
            item(2, "Tram line opens", ""),
        ]
    )
    assert "410" in batch.items[0].numbers and "410" in batch.items[1].numbers
    assert batch.items[1].richness == pytest.approx(7 / 40)  # one sentence: nearly a headline
    assert batch.items[0].richness == 1.0
    assert batch.items[2].richness == 0.0


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Updated: November 11, 2011 20: 09 IST", {"2011"}),  # the year of a date stays
        ("A magnitude 5.6 quake killed 26 people at 8:40 pm on Aug. 7", {"5.6", "26"}),
        ("27 / 09 / 2013 - Turkmenistan votes; 2012-08-07", set()),
        ("Voting began at 8: 00 am on the 14th of December", set()),
        ("Red Sox offer Teixeira $200 million over 8 years, a 3-1 win", {"200", "8", "3-1"}),
        ("A 60-year-old woman, aged 61, held 41 years after the 1967 killings", {"41", "1967"}),
        ("Smith, 61 years old, and a 7 - year - old; age 45 of 3 years", {"3"}),
        # wire copy's clock times in hours and minutes, and a date with no space after "Dec."
        ("Polls opened at 0300 GMT (8 am local time), closed at 1300 local time", set()),
        ("Voting began on Dec.14; 288 candidates for 125 seats; 2230 UTC", {"288", "125"}),
        ("In 1999 UTC was adopted; 2460 GMT is no time", {"1999", "2460"}),
        # detokenised clock times: "08: 06AM", "8: 13am"
        ("Posted 08: 06AM PT; at 8: 13am 300 fled; 20:09 IST", {"300"}),
        # one figure in two forms is one number
        ("1,200 homes; 1200 homes; won 2–0 and 2-0; magnitude 6.0 or 6", {"1200", "2-0", "6"}),
        ("1.50 dollars, 3.05 m, 10.10 s, version 2.0.1", {"1.5", "3.05", "10.1", "2.0.1"}),
        # a wire story's version ("UPDATE 2-", the third of one report), not a score
        ("UPDATE 2-Acme cuts 8500 jobs; WRAPUP 1-Fed holds; Update 3: 4 hurt", {"8500", "4"}),
        ("An update 2-1 win", {"2-1"}),
        # a stock index's number is part of its name, shared by different markets reports
        ("S&P 500 falls 2%; the FTSE 100 rose 1.5; Nikkei 225 up 300", {"2", "1.5", "300"}),
        ("A Fortune 500 firm; Nasdaq 4,000 and the Russell 2000", {"4000"}),
        # an age in apposition after a name, as news gives most ages; other lists are numbers
        ("Eric Kirkpatrick, 61, and Ben Banky, 40, of 40 East Ave.", {"40"}),
        ("The victims, 12, were named; games 3, 12, 15", {"12", "3", "15"}),
        (
            "On Monday, 15,000 marched; in Texas, 1,500; the Nasdaq 5000 mark",
            {"15000", "1500", "5000"},
        ),
        # one figure as other languages write it: a decimal comma ("Stärke 5,1" is the 5.1 of
        # an English report, which conflicted with it), a score with a colon, other digits
        ("Erdbeben der Stärke 5,1; Inflation 2,25 Prozent; 1,500 jobs", {"5.1", "2.25", "1500"}),
        ("Köln siegt 2:1, won 2-1", {"2-1"}),
        ("زلزال بقوة ٥٫٦ و ١٢ قتيلا; भूकंप ५; ５人", {"5.6", "12", "5"}),
        ("قتل ١٬٢٠٠ شخص; 1,200 killed", {"1200"}),
        # a numeric date writes one mark twice; a quake feed's "4.2 - 14 km" was read as one
        ("M 4.2 - 14 km E of Brawley; on 14/05/2024, 2024-05-14 or 14. 5. 2024", {"4.2", "14"}),
    ],
)
def test_numbers_leave_out_dates_clock_times_and_ages(text: str, numbers: set[str]) -> None:
    # when a report was written is no fact of the event: two reports of one event differ there;
    # nor is an age, which reports of one arrest give as 60 and 61
    assert numbers_in(text) == numbers


def test_a_title_and_summary_are_no_date_where_they_meet() -> None:
    # joined as embedded ("3-2. 15,000"), a score and a count read as a numeric date
    batch = batch_text([item(0, "Lions beat Tigers 3-2", "15,000 fans saw the final.")])
    assert batch.items[0].numbers == batch.items[0].lead_numbers == {"3-2", "15000"}
    batch = batch_text([item(0, "Quake in March", "12 people died in the quake.")])
    assert batch.items[0].numbers == {"12"}  # no "March. 12"


def test_lead_numbers_are_read_with_the_words_after_the_lead() -> None:
    text = "Quake of 6.1 kills 40 on 5 September near Van; 2,000 homes lost"
    lead = text[: text.index(" September")]
    lead_numbers, numbers = _lead_and_all_numbers(lead, text)
    assert numbers == numbers_in(text) == {"6.1", "40", "2000"}
    assert lead_numbers == {"6.1", "40"}  # "5" is the day of a date, cut from its month
    assert _lead_and_all_numbers("Quake of 7.2", text) == ({"7.2"}, numbers)  # not its start


def test_near_duplicate_pairs_threshold():
    a = "the council voted to close the old bridge to heavy lorries from monday"
    texts = [a, a + " evening", "something else entirely", a]
    graph = knn_graph(unit([1, 0], [0.99, 0.1], [0, 1], [1, 0]), 2)
    sets = [shingles(t) for t in texts]
    assert sorted(near_duplicate_pairs(sets, 0.7, graph)) == [(0, 1), (0, 3), (1, 3)]


def test_knn_graph_is_exact_and_excludes_self():
    v = unit([1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9])
    graph = knn_graph(v, 1)
    assert graph.sources.tolist() == [0, 1, 2, 3]
    assert graph.targets.tolist() == [1, 0, 3, 2]
    assert graph.similarities[0] == pytest.approx(float(v[0] @ v[1]))


def test_knn_graph_drops_edges_below_the_floor():
    graph = knn_graph(unit([1, 0], [0, 1]), 5, floor=0.2)
    assert len(graph.sources) == 0


def test_approximate_knn_graph_keeps_true_neighbours(monkeypatch):
    import aggregator.grouping.graph as grouping

    rng = np.random.default_rng(1)
    centres = rng.standard_normal((40, 128))
    v = np.repeat(centres, 3, axis=0) + 0.05 * rng.standard_normal((120, 128))
    v = grouping.normalise(v)
    exact = knn_graph(v, 2)
    monkeypatch.setattr(grouping, "APPROXIMATE_ABOVE_ITEMS", 10)
    monkeypatch.setattr(grouping, "PROJECTION_DIMS", 32)
    projected = knn_graph(v, 2)
    assert projected.targets.tolist() == exact.targets.tolist()
    assert projected.similarities == pytest.approx(exact.similarities, abs=1e-5)


# ---------------------------------------------------------------- with the real model


def _group_texts(embed, pairs, params=None):
    items = [item(i, t, s, outlet=f"outlet{i}") for i, (t, s) in enumerate(pairs)]
    vectors = embed([embedding_text(i.title, i.summary) for i in items])
    return group(items, vectors, params or GroupingParams()).tolist()


@pytest.mark.model
def test_two_outlets_rewording_one_story_are_grouped(embed):
    labels = _group_texts(
        embed,
        [
            (
                "Wildfire forces thousands to flee homes near Athens",
                "Firefighters battled a wildfire north of Athens on Tuesday as strong winds pushed "
                "flames toward suburbs, forcing thousands of residents to evacuate.",
            ),
            (
                "Thousands evacuated as blaze spreads towards Athens suburbs",
                "Gusty winds drove a forest fire towards the northern outskirts of the Greek capital "
                "on Tuesday, and authorities ordered several neighbourhoods to evacuate.",
            ),
            (
                "Central bank holds interest rates steady",
                "The central bank left its benchmark rate unchanged on Tuesday, citing cooling "
                "inflation and a weaker labour market.",
            ),
        ],
    )
    assert labels[0] == labels[1] != labels[2]


@pytest.mark.model
def test_two_rehab_check_ins_by_different_people_are_not_grouped(embed):
    labels = _group_texts(
        embed,
        [
            (
                "Pop singer Mara Quinn enters rehab in Malibu",
                "Singer Mara Quinn has checked into a treatment facility in Malibu, her publicist "
                "said on Monday, asking for privacy for the 29-year-old and her family.",
            ),
            (
                "Actor Dev Hollis checks into rehab clinic in Arizona",
                "Actor Dev Hollis has entered a rehabilitation centre in Arizona, his manager "
                "confirmed on Thursday. The 41-year-old star of the police drama sought treatment.",
            ),
        ],
    )
    assert labels[0] != labels[1]


@pytest.mark.model
def test_spun_copy_with_page_junk_joins_the_original(embed):
    original = (
        "Blinken arrives in Beijing for rare talks",
        "US Secretary of State Antony Blinken landed in Beijing on Sunday for two days of talks, "
        "the first visit by a top US diplomat in five years, as both sides sought to steady "
        "relations strained by trade disputes and a suspected spy balloon.",
    )
    spun = (
        "U.S. Blinken touching down in China expected to break ice | World News",
        "18 C New York Buy now. America's top envoy Antony Blinken has touched down in Beijing, "
        "his first journey to China in nearly five years. The two-day trip comes amid chilly "
        "ties after an alleged surveillance balloon. - Advertisement - Related Articles",
    )
    other = (
        "Blinken meets Gulf ministers in Riyadh on regional security",
        "Secretary of State Antony Blinken met foreign ministers of Gulf states in Riyadh on "
        "Wednesday to discuss Iran, shipping security and the war in Sudan.",
    )
    other_reworded = (
        "In Saudi capital, Blinken presses Gulf partners on Iran and Sudan",
        "Antony Blinken urged Gulf foreign ministers gathered in Riyadh on Wednesday to work "
        "with Washington on Iran, the security of shipping lanes and a ceasefire in Sudan.",
    )
    day, later = T0, T0 + timedelta(days=2)  # the copy was picked up two days later
    texts = [original, spun, other, other_reworded]
    items = [
        item(i, t, s, outlet=f"outlet{i}", when=later if i == 1 else day)
        for i, (t, s) in enumerate(texts)
    ]
    vectors = embed([embedding_text(i.title, i.summary) for i in items])
    labels = group(items, vectors).tolist()
    assert labels[0] == labels[1] != labels[2] == labels[3]


@pytest.mark.model
def test_a_follow_up_that_one_report_backs_joins_the_story_and_a_post_on_the_subject_does_not(
    embed,
):
    """A next-day report from the wreck shares little with two of the three first reports (on
    average below the merge bar) but much with the third: it joins the story only at the lone
    bar. A post about ferry fares near the story, which no report backs, stays apart."""
    texts = [
        (
            "Ferry sinks off Lesbos, 14 missing",
            "A passenger ferry carrying 212 people sank off the Greek island of Lesbos early on "
            "Sunday after striking rocks in heavy seas, the coast guard said. Rescuers pulled 198 "
            "people from the water and 14 remain missing, officials said, as helicopters and "
            "fishing boats joined the search.",
        ),
        (
            "Greek ferry with 212 aboard goes down near Lesbos",
            "Rescue crews searched the Aegean on Sunday for 14 people missing after a ferry with "
            "212 passengers and crew capsized in a storm near Lesbos, Greece's coast guard said. "
            "Most of those aboard were rescued by fishing boats and air force helicopters in rough "
            "seas overnight.",
        ),
        (
            "Coast guard: 198 rescued after Lesbos ferry sinking",
            "Greece's coast guard said 198 people were rescued and 14 were still missing after a "
            "ferry struck rocks and sank off Lesbos on Sunday. Navy divers were sent to the wreck, "
            "and relatives of the missing waited on the quay at Mytilene as the owner said the "
            "captain had reported engine trouble.",
        ),
        (
            "Divers reach sunken Lesbos ferry as relatives keep vigil",
            "Navy divers reached the wreck of the ferry that went down off Lesbos and began "
            "searching its lower decks on Monday, while relatives of the missing kept vigil on the "
            "quay at Mytilene. The ship's owner said the captain had reported engine trouble "
            "shortly before it struck the rocks.",
        ),
        (
            "Ferry operators raise Aegean fares for summer",
            "Greek ferry companies will raise fares on Aegean routes to islands including Lesbos "
            "and Chios from June, citing fuel costs and new safety rules, an industry group said "
            "on Monday. Passenger numbers to the islands rose last year as tourism recovered, the "
            "coast guard's figures show.",
        ),
    ]
    items = [item(i, t, s, outlet=f"outlet{i}") for i, (t, s) in enumerate(texts)]
    vectors = embed([embedding_text(i.title, i.summary) for i in items])
    model = shipped_model()
    assert model.lone_discount > 0
    assert group(items, vectors).tolist() == [0, 0, 0, 0, 1]
    # without the lone bar the follow-up stays apart
    alone = group(items, vectors, model=model.with_lone_discount(0.0)).tolist()
    assert alone == [0, 0, 0, 1, 2]


@pytest.mark.model
def test_an_aggregators_link_posts_look_alike_until_their_template_is_stripped(embed):
    """A link aggregator's summaries are only its template (links and counts): left in, they make
    unrelated posts look alike to the embedder; stored as intake stores them, the posts stay
    as far apart as their headlines and each is a story of its own."""
    from aggregator.boilerplate import strip_feed_templates

    titles = [
        "A tiny terminal spreadsheet written in Rust",
        "Why our database queries got slower after the upgrade",
        "The rowing club that trains on a frozen lake",
        "How do you keep notes across many projects?",
        "A new phone with a replaceable battery goes on sale",
        "Architects win an award for a timber library",
        "Lessons from running a bakery's website on one server",
        "The history of the typewriter keyboard layout",
    ]
    raw = [
        (
            title,
            f"Article URL: https://site{k}.example/posts/{k * 37 + 5} Comments URL: "
            f"https://links.example/item?id={45871230 + k * 613} Points: {k * 17 + 3} "
            f"# Comments: {k * 5 + 1}",
        )
        for k, title in enumerate(titles)
    ]
    stored = strip_feed_templates(raw)
    assert stored == [""] * len(titles)

    def mean_cosine(texts: list[str]) -> float:
        unit = np.asarray(embed(texts))
        unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
        cosines = unit @ unit.T
        return float((cosines.sum() - len(texts)) / (len(texts) * (len(texts) - 1)))

    as_fetched = mean_cosine([embedding_text(t, s) for t, s in raw])
    as_stored = mean_cosine([embedding_text(t, s) for t, s in zip(titles, stored, strict=True)])
    assert as_fetched > 0.25 and as_stored < 0.15, (as_fetched, as_stored)
    items = [
        item(k, t, s, outlet="links", when=T0 + timedelta(minutes=20 * k))
        for k, (t, s) in enumerate(zip(titles, stored, strict=True))
    ]
    vectors = embed([embedding_text(i.title, i.summary) for i in items])
    assert group(items, vectors).tolist() == list(range(len(titles)))


@pytest.mark.model
def test_a_podcasts_episodes_that_share_the_shows_description_stay_apart(embed):
    """Every episode carries the show's description: the parser leaves it out, and the weekly
    episodes are stories of their own (with it, the first and last joined as one story)."""
    from aggregator.boilerplate import strip_feed_templates

    titles = [
        "Episode 41: The market that never sleeps",
        "Episode 42: Bread, from field to oven",
        "Episode 43: A chef who cooks only with fire",
        "Episode 44: Why noodles are hard to make well",
        "Episode 45: The oldest cafe in town",
    ]
    show = (
        "A weekly show about the city's food, from its markets to its kitchens, with Ana Ruiz "
        "and Tom Hale. New episodes every Friday. Support the show at shows.example/food."
    )
    stored = strip_feed_templates([(title, show) for title in titles])
    assert stored == [""] * len(titles)
    items = [
        item(k, title, summary, outlet="food show", when=T0 - timedelta(days=7 * k))
        for k, (title, summary) in enumerate(zip(titles, stored, strict=True))
    ]
    vectors = embed([embedding_text(i.title, i.summary) for i in items])
    assert group(items, vectors).tolist() == list(range(len(titles)))


def test_an_outlets_series_is_told_apart_by_outlet_title_and_day():
    from aggregator.grouping.merge import Series

    day = datetime(2026, 11, 30, 8, tzinfo=UTC)
    batch = batch_text(
        [
            item(0, "Comic for November 30, 2026", outlet="Strips", when=day),
            item(1, "Comic for November 29, 2026", outlet="Strips", when=day - timedelta(days=1)),
            item(2, "Comic for November 30, 2026", outlet="Strips", when=day + timedelta(hours=2)),
            item(3, "Comic for November 29, 2026", outlet="Other", when=day - timedelta(days=1)),
            item(4, "Comic for November 28, 2026", outlet="Strips", when=UNKNOWN_TIME),
        ]
    )
    series = Series(batch)
    assert series.apart([0], [1]) and series.within([0, 2, 1])
    assert not series.apart([0], [2])  # hours apart: a re-post may be one story
    assert not series.apart([1], [3])  # another outlet: a copy, not a series
    assert not series.apart([0, 2], [4]) and not series.within([0, 2])
    # a weekday's possessive and an amount with figures are no part of the series' title
    draws = [
        item(0, "Lotto results: winning numbers for Wednesday's £4.2m jackpot draw", when=day),
        item(1, "Lotto results: winning numbers for Saturday's £5.1m jackpot draw",
             when=day + timedelta(days=3)),
    ]  # fmt: skip
    assert Series(batch_text(draws)).apart([0], [1])
    assert title_template(draws[0].title)[:2] == (
        ("N", "results", "winning", "numbers", "for", "#", "jackpot", "draw"),
        ("Lotto", "£4.2m"),
    )


@pytest.mark.model
def test_a_series_of_posts_stays_apart_while_copies_still_join(embed):
    """One blog's "Open thread" on five days: five stories, though the posts are word for word
    alike (copies join whatever else they say, but not a series). The same post the same day
    through a second feed, and a wire story a paper runs two days later, still join."""
    day = datetime(2026, 11, 30, 8, tzinfo=UTC)
    open_thread = "Talk about anything you like in the comments below."
    wire = (
        "Harbour workers walked out on Monday over pay, halting ferries and cargo at the port "
        "for the first time in a decade, their union said."
    )
    items = [
        item(k, "Open thread", open_thread, outlet="blog", when=day - timedelta(days=k))
        for k in range(5)
    ]
    items += [
        item(5, "Open thread", open_thread, outlet="blog", when=day + timedelta(hours=1)),
        item(6, "Port strike halts ferries", wire, outlet="wire", when=day - timedelta(days=2)),
        item(7, "Port strike halts ferries", wire, outlet="paper", when=day),
    ]
    vectors = embed([embedding_text(i.title, i.summary) for i in items])
    assert group(items, vectors).tolist() == [0, 1, 2, 3, 4, 0, 5, 5]


def test_a_chain_of_copies_does_not_join_a_series_posts_a_day_apart():
    """A blog's "Open thread" every twelve hours: each post copies the one before (under 18 hours
    apart, as a re-post may be), but the first and the third are a day apart, posts of a series."""
    body = "Talk about anything you like here and be kind to each other in the comments below."
    items = [
        item(
            k,
            "Open thread",
            f"{body} Thread {k + 1}.",
            outlet="blog",
            when=T0 + timedelta(hours=12 * k),
        )
        for k in range(3)
    ]
    no_merging = GroupingParams(clusterer="none", merge_probability=0.999999)
    labels = group(items, unit([1, 0], [1, 0.01], [1, 0.02]), no_merging)
    assert labels[0] != labels[2]
    assert labels[1] in (labels[0], labels[2])  # one of its copies joins it


@pytest.mark.model
def test_scraped_page_after_boilerplate_stripping_joins_the_wire_reports(embed):
    """A republisher's spun copy wrapped in a weather widget, shop button, ad markers and a
    comment form, stored as the store stores summaries (boilerplate stripped), joins three
    wire reports of its story and none of the unrelated items around it."""
    from aggregator.boilerplate import strip_boilerplate

    page = (
        "21.4 C London Monday, March 4, 2024 Buy now "
        "Harbourside tram line opens to passengers after six-year build | City News "
        "Passengers boarded the first trams on the new Harbourside line on Monday, six years "
        "after work started on the 9-kilometre route linking the central station with the old "
        "docks. - Advertisement - Mayor Ines Okafor rode the opening service and said the "
        "line, which came in over budget at 410 million, would carry 40,000 riders a day. "
        "Related Articles Please enter your comment! Please enter your name here"
    )
    reports = [
        (
            "Harbourside tram line opens after six years of works",
            "The Harbourside tram line opened to passengers on Monday, linking the central "
            "station with the former docks along a 9 km route, six years after building began.",
        ),
        (
            "Mayor Okafor rides first tram as Harbourside line opens",
            "Mayor Ines Okafor was aboard the first service on the Harbourside tram line on "
            "Monday. The 410 million line is expected to carry 40,000 passengers a day.",
        ),
        (
            "New tram route to the docks carries its first riders",
            "Trams began running on Monday on the new Harbourside route between the central "
            "station and the docks, a project that ran over budget and two years late.",
        ),
    ]
    unrelated = [
        (
            "Okafor unveils budget with cuts to library hours",
            "Mayor Ines Okafor presented the city budget on Thursday, proposing shorter library "
            "opening hours and higher parking charges to close a 12 million gap.",
        ),
        (
            "Ferry strike cancels crossings for a second day",
            "Ferry crews walked out again on Tuesday over pay, cancelling all crossings from the "
            "harbour terminal for a second day, the operator said.",
        ),
        (
            "Phone maker cuts prices of last year's models",
            "A large phone maker lowered the prices of its previous flagship handsets by up to "
            "a fifth ahead of the launch of new models next month.",
        ),
    ]
    stored = strip_boilerplate(page)
    assert "Advertisement" not in stored and "comment" not in stored and "Buy now" not in stored
    title, _, body = stored.partition(" | City News ")
    assert title == "Harbourside tram line opens to passengers after six-year build"
    day = datetime(2024, 3, 4, 8, tzinfo=UTC)
    items = [item(0, title, body, outlet="scraper", when=day + timedelta(hours=5))]
    items += [
        item(k, t, s, outlet=f"wire{k}", when=day + timedelta(hours=k))
        for k, (t, s) in enumerate(reports + unrelated, 1)
    ]
    vectors = embed([embedding_text(i.title, i.summary) for i in items])
    labels = group(items, vectors).tolist()
    story = [k for k, label in enumerate(labels) if label == labels[0]]
    assert story == [0, 1, 2, 3]


def test_params_reject_nonsense():
    with pytest.raises(ValueError, match="clusterer"):
        GroupingParams(clusterer="kmeans")
    with pytest.raises(ValueError, match="min_cluster_size"):
        GroupingParams(min_cluster_size=1)


def test_knn_hdbscan_copes_with_larger_min_samples_and_sparse_graphs():
    rng = np.random.default_rng(3)
    v = unit(*rng.standard_normal((30, 16)))  # near-orthogonal: few edges above the floor
    items = [item(i, f"t{i}") for i in range(30)]
    labels = group(items, v, GroupingParams(min_samples=3))
    assert sorted(set(labels.tolist())) == list(range(len(set(labels.tolist()))))


def test_a_custom_clusterer_can_replace_hdbscan_and_its_fragments_pass_the_evidence_test():
    # 0 and 1 are near-identical; 2 and 3 are orthogonal: a fragment of them does not stand
    v = unit([1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0, 1])
    titles = ("Alpha", "Bravo", "Charlie", "Delta")
    items = [item(i, title, when=UNKNOWN_TIME) for i, title in enumerate(titles)]
    strict = GroupingParams(merge_probability=0.999999)  # nothing passes the merge pass
    fragment_of_two = FixedFragments([0, 0, -1, -1])
    assert group(items, v, strict, clusterer=fragment_of_two).tolist() == [0, 1, 2, 3]
    assert group(items, v, clusterer=FixedFragments([0, 0, 1, 1])).tolist() == [0, 0, 1, 2]
    assert group(items, v, clusterer=FixedFragments([0, 0, 0, 0])).tolist() == [0, 0, 1, 2]


def test_a_dense_fragment_of_two_headlines_clears_the_full_bar_and_one_of_three_the_lower():
    """Headlines 0.55 similar to each other clear the lowered bar of headlines joining a group,
    not the full bar: a fragment of two stands only at the full bar (nothing else backs it),
    a fragment of three at the lower one."""

    def alike(n: int) -> np.ndarray:  # n unit vectors, each pair 0.55 similar
        common = np.zeros(n + 1)
        common[0] = 1.0
        return np.stack(
            [np.sqrt(0.55) * common + np.sqrt(0.45) * np.eye(n + 1)[k + 1] for k in range(n)]
        )

    titles = ("Phone gets a bigger screen", "Tablet keyboards tested", "Laptop battery lasts")
    items = [item(k, title, outlet=f"Blog {k}") for k, title in enumerate(titles)]
    assert len(set(group(items[:2], alike(2), clusterer=FixedFragments()).tolist())) == 2
    assert len(set(group(items, alike(3), clusterer=FixedFragments()).tolist())) == 1


def test_a_fragment_spanning_years_fails_the_evidence_test_as_its_two_sides_would():
    """A fragment is weighed with the time between its two halves, as the merge pass would weigh
    joining them: two similar posts years apart are two stories, hours apart one."""

    from aggregator.grouping.evidence import inner_features, members

    similar = unit([1, 0], [0.8, np.sqrt(1 - 0.8**2)])  # cosine 0.8
    strict = GroupingParams(merge_probability=0.999999)  # a bar the fragment cannot clear
    for gap, stories in ((timedelta(hours=5), 1), (timedelta(days=700), 2)):
        items = [item(0, "Harbour crane collapses"), item(1, "Crane falls", when=T0 + gap)]
        assert len(set(group(items, similar, clusterer=FixedFragments()).tolist())) == stories
        assert len(set(group(items, similar, strict, clusterer=FixedFragments()).tolist())) == 2
    three = [item(i, "Crane", when=T0 + timedelta(days=d)) for i, d in enumerate((0, 900, 1))]
    batch = batch_text(three)
    features = inner_features(members([0, 1, 2], similar[[0, 1, 1]], batch), batch)
    days_apart = features[FEATURES.index("days_apart")]
    assert days_apart == pytest.approx(np.sqrt(899 - 1))  # the widest gap, 1 → 900


def test_merge_pass_scores_agree_with_the_evidence_of_each_pair():
    """The vectorised scores and the summed-up sums of merged groups equal the plain evidence."""
    from aggregator.grouping.evidence import (
        add_sums,
        cross_sums,
        feature_rows,
        members,
        pair_features,
        stats_of,
    )

    rng = np.random.default_rng(5)
    texts = [
        ("Quake hits Perth", "A 5.1 quake shook Perth on Monday, officials in Perth said."),
        ("Perth quake", "Officials in Perth counted damage after the 5.1 quake."),
        ("Chile quake", "A 6.8 quake struck near Antofagasta in Chile on Monday."),
        ("Rates held", "The central bank held rates at 4.5 percent, the governor said."),
        ("Bank holds", ""),
    ]
    items = [
        item(i, t, s, outlet=f"o{i % 2}", when=T0 + timedelta(days=i))
        for i, (t, s) in enumerate(texts)
    ]
    vectors = unit(*rng.standard_normal((5, 8)))
    batch = batch_text(items)
    a, b = members([0, 1], vectors, batch), members([2], vectors, batch)
    c = members([3, 4], vectors, batch)
    expected = pair_features(a, b, batch)
    dots = np.array([a.vector_sum @ b.vector_sum])
    sums = np.array([cross_sums(a, b, batch)])
    rows = feature_rows(np.array([stats_of(a)]), np.array([stats_of(b)]), dots, sums)
    assert rows[0] == pytest.approx(expected)
    # sums of a merged group are the sums of its parts
    merged = members([0, 1, 3, 4], vectors, batch)
    parts = add_sums(cross_sums(a, b, batch), cross_sums(c, b, batch))
    assert parts == pytest.approx(cross_sums(merged, b, batch))


# past the lead: a report's first sentences end within it
FILLER = "Residents described the shaking as long and strong. " * 4


def single_item_features(
    texts: list[tuple[str, str]],
) -> tuple[BatchText, Callable[[int, int], np.ndarray]]:
    """The text of these (title, summary) items, and the evidence signals of two of them, each
    alone (their vectors orthogonal)."""
    from aggregator.grouping.evidence import members, pair_features

    batch = batch_text([item(i, t, s) for i, (t, s) in enumerate(texts)])
    vectors = unit(*np.eye(len(texts)))

    def features(x: int, y: int) -> np.ndarray:
        return pair_features(members([x], vectors, batch), members([y], vectors, batch), batch)

    return batch, features


def test_numbers_conflict_in_the_lead_and_count_as_shared_anywhere():
    """A report's lead gives its key figures; numbers further down (an age, a count of earlier
    quakes) differ between reports of one event and are no conflict, but shared ones count."""
    texts = [
        ("Quake hits Perth", f"A magnitude 5.2 quake shook Perth. {FILLER}A man of 41 was hurt."),
        ("Perth quake", f"A magnitude 5.2 quake shook Perth. {FILLER}It was the 3rd in 60 years."),
        ("Quake hits Leeds", f"A magnitude 3.1 quake shook Leeds. {FILLER}A man of 41 was hurt."),
    ]
    batch, features = single_item_features(texts)
    conflict, shared = FEATURES.index("number_conflict"), FEATURES.index("shared_numbers")

    lead = batch.items[0]
    assert "41" in lead.numbers and "41" not in lead.lead_numbers
    assert features(0, 1)[conflict] == pytest.approx(0.0)  # 41 / 3, 60: past the lead
    assert features(0, 2)[conflict] == pytest.approx(1.0)  # 5.2 / 3.1
    assert features(0, 2)[shared] == pytest.approx(1.0)  # 41, wherever it stands


def test_a_lead_name_or_number_the_other_side_gives_further_down_is_no_conflict():
    """Two reports of one quake lead with different places and figures but each names the
    other's further down: no conflict. A quake elsewhere names neither: full conflict."""
    texts = [
        ("Quake hits Perth", f"A magnitude 5.2 quake shook Perth. {FILLER}Fremantle, 20 km away."),
        ("Fremantle quake", f"A quake 20 km deep shook Fremantle. {FILLER}Perth gave it as 5.2."),
        ("Quake hits Leeds", f"A magnitude 3.1 quake shook Leeds. {FILLER}Bradford, 20 km away."),
    ]
    batch, features = single_item_features(texts)
    names, numbers = FEATURES.index("name_conflict"), FEATURES.index("number_conflict")

    perth, fremantle = batch.items[:2]
    assert not perth.lead_names & fremantle.lead_names  # the leads alone would conflict
    assert not perth.lead_numbers & fremantle.lead_numbers
    assert features(0, 1)[names] == pytest.approx(0.0)
    assert features(0, 1)[numbers] == pytest.approx(0.0)
    assert features(0, 2)[names] == pytest.approx(1.0)  # Perth / Leeds
    assert features(0, 2)[numbers] == pytest.approx(1.0)  # 5.2 / 3.1


def test_summed_rows_give_the_item_pair_sums_of_groups_and_of_merged_groups():
    """The merge pass's shortcut: a group's summed text row against others' equals the overlaps
    summed over every pair of their items, also for a group merged from two."""
    from aggregator.grouping.text import add_rows

    items = [
        item(0, "Quake hits Perth", "A 5.1 quake shook Perth on Monday, officials in Perth said."),
        item(1, "Perth quake", "Officials in Perth counted damage after the 5.1 quake.", "p"),
        item(2, "Chile quake", "A 6.8 quake struck near Antofagasta in Chile on Monday."),
        item(3, "Rates held", "The central bank held rates at 4.5 percent, the governor said."),
        item(4, "Bank holds rates", "", "p"),
        item(5, "Perth damage counted", "Perth officials said the 5.1 quake cracked walls.", "q"),
    ]
    matrix = batch_text(items).matrix
    groups = [[0, 1], [2], [3, 4], [5]]
    rows = matrix.summed_rows(groups)
    others = [[2], [3, 4], [5]]
    found = matrix.row_overlaps(rows[0], rows[1:])
    assert found == pytest.approx(matrix.pair_sums([groups[0]] * 3, others))
    assert found[2, 2] > 0  # both name Perth in the lead: the test compares something
    merged = add_rows(rows[0], rows[3])
    assert matrix.row_overlaps(merged, [rows[1], rows[2]]) == pytest.approx(
        matrix.pair_sums([[0, 1, 5]] * 2, [[2], [3, 4]])
    )
    assert matrix.row_overlaps(rows[1], []).shape == (0, SEGMENTS)


def test_a_headline_shift_lowers_the_bar_for_headlines_joining_a_group_only() -> None:
    model = shipped_model()
    shifted = model.with_headline_shift(1.5)
    size = FEATURES.index("group_size")
    joining, full_texts, lone_pair = (np.zeros(len(FEATURES)) for _ in range(3))
    joining[size] = full_texts[size] = np.log(2)  # a headline and a group of two
    full_texts[FEATURES.index("full_text")] = 1.0
    assert shifted.score(joining) == pytest.approx(model.score(joining) + 1.5)
    assert shifted.score(full_texts) == pytest.approx(model.score(full_texts))
    # two lone headlines (one pair) clear the full bar: the shift is given back
    assert shifted.score(lone_pair) == pytest.approx(model.score(lone_pair))
    assert model.lone_pair_offset(lone_pair) == -model.headline_shift
    half_summaries = lone_pair.copy()
    half_summaries[FEATURES.index("full_text")] = 0.5  # in proportion to what shift they got
    assert model.lone_pair_offset(half_summaries) == pytest.approx(-model.headline_shift / 2)
    rows = np.stack([joining, full_texts, lone_pair])
    assert shifted.scores(rows).tolist() == pytest.approx([shifted.score(r) for r in rows])
    assert shifted.headline_shift == model.headline_shift + 1.5


def test_two_lone_headlines_need_the_full_bar_that_a_headline_joining_a_pair_does_not() -> None:
    """On a quiet day, two headlines of one subject, 0.55 similar, stay apart: the headline shift
    lowers the bar only for a headline joining a group. The same headline, as similar to both
    reports of a story of two, joins it."""
    c = 0.55
    s = np.sqrt(1 - c**2)
    vectors = unit(
        [1, 0, 0, 0, 0],
        [0.995, 0.0999, 0, 0, 0],
        [c, s * 0.05, s, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, c, s],
    )
    items = [
        item(0, "Harbour crane collapses onto ferry terminal", outlet="Herald"),
        item(1, "Harbour crane collapses onto the ferry terminal", outlet="Courier"),
        item(2, "Dockside accident closes port", outlet="Gazette"),
        item(3, "New phone has a bigger screen", outlet="Tech blog"),
        item(4, "Review: tablet keyboards tested", outlet="Gadget blog"),
    ]
    labels = group(items, vectors).tolist()
    assert labels[0] == labels[1] == labels[2]
    assert len({labels[0], labels[3], labels[4]}) == 3
    batch = explain.features(items, vectors)
    pair = explain.pair_evidence([3], [4], batch, shipped_model())
    assert not pair.joins and pair.lone_pair_offset == -shipped_model().headline_shift
    joining = explain.pair_evidence([2], [0, 1], batch, shipped_model())
    assert joining.joins and joining.lone_pair_offset == 0.0


def test_an_item_left_alone_joins_a_story_of_three_at_the_lower_lone_bar() -> None:
    """Each lone item is about 0.4 similar to a story on average: below the merge bar (cosine
    0.5), within a discount of 1.5 log-odds but not of 0.5. Only the first joins its story: the
    second matches no member by itself, the third's story is a pair, the fourth is a headline
    (no discount), and the fifth has another lone item as near as its story."""
    from aggregator.grouping.evidence import EvidenceModel
    from aggregator.grouping.text import FULL_SUMMARY_WORDS

    e = np.eye(32)

    def story(centre: int, spread: list[int]) -> list[np.ndarray]:
        """A story's members: one on ``centre``, the others 0.8 along it (0.64-0.8 similar)."""
        return [e[centre], *(0.8 * e[centre] + 0.6 * e[d] for d in spread)]

    def near_one(centre: int, member: int, own: int) -> np.ndarray:
        """0.6 similar to the member leaning to ``member``, 0.24-0.3 to the others."""
        return 0.3 * e[centre] + 0.6 * e[member] + 0.74 * e[own]

    uniform = 0.4 * e[1] + 0.13 * (e[9] + e[10]) + 0.89 * e[11]  # 0.4 similar to each member
    fifth = near_one(4, 17, 18)
    rows = [
        *story(0, [6, 7]), near_one(0, 6, 8),
        *story(1, [9, 10]), uniform,
        *story(2, [12]), 0.3 * e[2] + 0.5 * e[12] + 0.81 * e[13],
        *story(3, [14, 15]), near_one(3, 14, 16),
        *story(4, [17, 19]), fifth, 0.45 * fifth + 0.89 * e[20],
    ]  # fmt: skip
    stories = [0, 0, 0, -1, 1, 1, 1, -1, 2, 2, -1, 3, 3, 3, -1, 4, 4, 4, -1, -1]
    headline = [11 <= i <= 14 for i in range(len(rows))]

    summaries = [
        "" if headline[i] else " ".join(f"w{i}x{k}" for k in range(FULL_SUMMARY_WORDS))
        for i in range(len(rows))
    ]
    items = [item(i, f"t{i}", summaries[i], when=UNKNOWN_TIME) for i in range(len(rows))]
    weights = tuple(10.0 if name == "cosine" else 0.0 for name in FEATURES)
    model = EvidenceModel(weights, bias=-5.0, merge_probability=0.5)  # joins from cosine 0.5

    def labels(discount: float) -> list[int]:
        model_with = model.with_lone_discount(discount)
        return group(
            items, unit(*rows), clusterer=FixedFragments(stories), model=model_with
        ).tolist()

    apart = [0, 0, 0, 1, 2, 2, 2, 3, 4, 4, 5, 6, 6, 6, 7, 8, 8, 8, 9, 10]
    assert labels(0.0) == apart
    assert labels(0.5) == apart
    assert labels(1.5) == [0, 0, 0, 0, *(x - 1 for x in apart[4:])]


def test_a_fragment_member_near_no_other_member_leaves_the_fragment() -> None:
    from aggregator.grouping import _without_strangers, normalise

    close = normalise(np.array([[1, 0.02, 0], [1, 0, 0.02], [1, 0.01, 0.01]], dtype=np.float32))
    stranger = normalise(np.array([[0.1, 1, 0]], dtype=np.float32))  # cosine 0.1 to each
    unit = np.vstack([close, stranger, stranger])
    assert _without_strangers([[0, 1, 2, 3]], unit, 0.25) == [[0, 1, 2]]
    assert _without_strangers([[0, 3]], unit, 0.25) == []  # one member left: no fragment
    assert _without_strangers([[3, 4]], unit, 0.25) == [[3, 4]]  # near each other: kept


def test_a_member_moves_to_the_neighbouring_story_that_backs_it_more() -> None:
    """The merge pass never undoes a join: an item taken by one story that another story
    backs more (on average, at the merge bar) moves there after merging; one that its own
    story backs more, or that no other story of two or more backs at the bar, stays."""
    from aggregator.grouping.evidence import EvidenceModel
    from aggregator.grouping.merge import Series, rehomed

    e = np.eye(16)
    rows = [
        e[0], 0.9 * e[0] + 0.44 * e[5], 0.9 * e[0] + 0.44 * e[6],  # story A
        0.4 * e[0] + 0.92 * e[1],  # in A, but 0.92 similar to B's core
        e[1], 0.9 * e[1] + 0.44 * e[7],  # story B, a pair
        e[2], 0.9 * e[2] + 0.44 * e[8], 0.9 * e[2] + 0.44 * e[9],  # story C
        0.3 * e[2] + 0.45 * e[3] + 0.84 * e[10],  # in C, nearer D (0.43) but not at the bar
        e[3], 0.9 * e[3] + 0.44 * e[11],  # story D
        0.7 * e[2] + 0.6 * e[3] + 0.39 * e[12],  # in C, at the bar with D (0.57), nearer C (0.61)
    ]  # fmt: skip
    vectors = unit(*rows)
    items = [item(i, f"t{i}", when=UNKNOWN_TIME) for i in range(len(rows))]
    batch = batch_text(items)
    weights = tuple(10.0 if name == "cosine" else 0.0 for name in FEATURES)
    model = EvidenceModel(weights, bias=-5.0, merge_probability=0.5)  # joins from cosine 0.5
    graph = knn_graph(vectors, 10, 0.0)
    groups = [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9, 12], [10, 11]]
    moved = rehomed(groups, vectors, batch, graph, model, Series(batch))
    assert sorted(map(sorted, moved)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9, 12], [10, 11]]
    # a story of two gives up nothing: its members are one item against one
    pairs = [[0, 3], [1, 2], [4, 5], [6, 7, 8, 9, 12], [10, 11]]
    assert rehomed(pairs, vectors, batch, graph, model, Series(batch)) == pairs
    # nor does a member move to a lone item, however near: a story takes it, not an item
    lone = [[0, 1, 2, 3], [4], [5], [6, 7, 8, 9, 12], [10, 11]]
    assert rehomed(lone, vectors, batch, graph, model, Series(batch)) == lone


def test_a_story_takes_part_in_one_move_a_pass_the_surest_first() -> None:
    """Two members of one story that another story backs more: only the surer moves, so each
    move is judged against the two stories as they stand; a post of an outlet's series does
    not move to a story holding another post of that series days earlier."""
    from aggregator.grouping.evidence import EvidenceModel
    from aggregator.grouping.merge import Series, rehomed

    e = np.eye(12)
    rows = [
        e[0], 0.9 * e[0] + 0.44 * e[5], 0.9 * e[0] + 0.44 * e[6],  # story A
        0.3 * e[0] + 0.95 * e[1], 0.4 * e[0] + 0.9 * e[1] + 0.17 * e[7],  # in A, nearer B
        e[1], 0.9 * e[1] + 0.44 * e[8],  # story B
    ]  # fmt: skip
    vectors = unit(*rows)
    weights = tuple(10.0 if name == "cosine" else 0.0 for name in FEATURES)
    model = EvidenceModel(weights, bias=-5.0, merge_probability=0.5)
    graph = knn_graph(vectors, 10, 0.0)
    groups = [[0, 1, 2, 3, 4], [5, 6]]

    def rehome(items: list[Item]) -> list[list[int]]:
        batch = batch_text(items)
        return sorted(map(sorted, rehomed(groups, vectors, batch, graph, model, Series(batch))))

    plain = [item(i, f"t{i}", when=T0) for i in range(len(rows))]
    assert rehome(plain) == [[0, 1, 2, 4], [3, 5, 6]]  # 3 is surer than 4; 4 stays
    series = list(plain)
    series[3] = item(3, "Weekly links", outlet="blog", when=T0 + timedelta(days=7))
    series[6] = item(6, "Weekly links", outlet="blog", when=T0)
    assert rehome(series) == [[0, 1, 2, 3], [4, 5, 6]]  # the next surest moves instead


def test_a_member_stays_where_the_story_it_would_leave_falls_apart() -> None:
    """A move leaves a story that must still pass the evidence test among its members: a
    member that held two unrelated items together stays with them."""
    from aggregator.grouping.evidence import EvidenceModel
    from aggregator.grouping.merge import Series, rehomed

    e = np.eye(10)
    bridge = 0.45 * e[0] + 0.45 * e[5] + 0.77 * e[1]  # its own story's two, and B's core
    rows = [e[0], e[5], bridge, e[1], 0.9 * e[1] + 0.44 * e[8], 0.9 * e[0] + 0.44 * e[5]]
    vectors = unit(*rows)
    batch = batch_text([item(i, f"t{i}") for i in range(len(rows))])
    weights = tuple(10.0 if name == "cosine" else 0.0 for name in FEATURES)
    model = EvidenceModel(weights, bias=-5.0, merge_probability=0.5)
    graph = knn_graph(vectors, 10, 0.0)

    def rehome(groups: list[list[int]]) -> list[list[int]]:
        return sorted(map(sorted, rehomed(groups, vectors, batch, graph, model, Series(batch))))

    assert rehome([[0, 1, 2], [3, 4], [5]]) == [[0, 1, 2], [3, 4], [5]]  # 0 and 1: cosine 0
    assert rehome([[0, 5, 2], [3, 4], [1]]) == [[0, 5], [1], [2, 3, 4]]  # 0 and 5: 0.9


def test_a_member_is_weighed_against_its_story_without_itself() -> None:
    """The evidence of a member against its own story's other members, from the story's sums
    less its own, equals the evidence of the item and the rest as two groups."""
    from aggregator.grouping.evidence import members, pair_features
    from aggregator.grouping.merge import _item_story_features

    when = [T0, T0 + timedelta(days=3), UNKNOWN_TIME, T0 - timedelta(days=2), T0]
    items = [
        item(0, "Quake hits Perth", "A 5.1 quake shook Perth on Monday, officials said.", "a", when[0]),
        item(1, "Perth quake", "Officials in Perth counted damage after the 5.1 quake.", "b", when[1]),
        item(2, "Chile quake", "A 6.8 quake struck near Antofagasta in Chile.", "a", when[2]),
        item(3, "Perth damage counted", "Perth officials said the quake cracked walls.", "c", when[3]),
        item(4, "Rates held", "The central bank held rates at 4.5 percent.", "b", when[4]),
    ]  # fmt: skip
    rng = np.random.default_rng(3)
    vectors = unit(*rng.normal(size=(len(items), 8)))
    batch = batch_text(items)
    groups = [[0, 1, 2, 3], [4]]
    for i in range(4):  # the earliest, the latest, one of unknown time and one in between
        found = _item_story_features(
            np.array([i, i]), np.array([0, 1]), np.array([True, False]), groups, vectors, batch
        )
        rest = [j for j in groups[0] if j != i]
        alone = members([i], vectors, batch)
        assert found[0] == pytest.approx(pair_features(alone, members(rest, vectors, batch), batch))
        assert found[1] == pytest.approx(pair_features(alone, members([4], vectors, batch), batch))


@pytest.mark.parametrize(
    ("title", "template"),
    [
        ("M 2.9 - 5 km NE of Ridgecrest, CA", ("N", "#", "km", "N", "of", "N")),
        ("Argyle 4-1 Athletic", ("N", "#", "N")),
        (
            "Flood Watch issued for Cook County, IL until 6:39AM Tue",
            ("N", "issued", "for", "N", "until"),
        ),
        # a stamp is no slot: two days' "Last updated at" titles are one template, one filling
        ("21 July 2013 Last updated at 11: 11 GMT", ("N", "updated", "at")),
        # no template: a headline in title case, a version alone, a date alone
        ("Mayor Opens New Library In Leeds", None),
        ("New Game Of Thrones Season 4 Trailer", None),
        ("v0.3.2-rc.1", None),
        ("April 27, 2009", None),
    ],
)
def test_a_titles_template(title: str, template) -> None:
    found = title_template(title)
    assert (found[0] if found else None) == template


def test_an_automated_feeds_items_of_one_template_are_other_events() -> None:
    """Items of one outlet's title template with other names are apart when most of the
    outlet's items fill it (a quake feed, a results feed), any time apart; the same title
    again (an update) is not, nor another outlet's item, nor a news outlet's few titles of
    one shape; headline-only items (a feed whose summaries were all its template, stored
    empty) need other names in two slots: a site's headlines on one show name another
    performer in one slot and are one story in UCI's labels."""
    from aggregator.grouping.merge import Series

    quakes = [
        "M 2.9 - 5 km NE of Ridgecrest, CA",
        "M 4.0 - 7 km W of Ridgecrest, CA",
        "M 3.1 - 2 km S of Anza, CA",
        "M 2.9 - 5 km NE of Ridgecrest, CA",  # the first again
    ]
    summary = "Time 2024-05-14 08:02 UTC. Depth 9.2 km."
    items = [item(k, t, summary, outlet="Quake Alerts") for k, t in enumerate(quakes)]
    items.append(item(4, "M 4.0 - 7 km W of Ridgecrest, CA", summary, outlet="Gazette"))
    news = ["Storm hits Texas", "Storm hits Iowa", "Mayor opens a library", "Rail fares rise"]
    items += [item(5 + k, t, "A report.", outlet="Daily Ledger") for k, t in enumerate(news)]
    # an outlet's updates of one event: a count or a score changes under one title, and a
    # wire story's version is no part of it
    updates = [
        "Storm kills 3 in Texas",
        "Storm kills 5 in Texas",
        "UPDATE 2-Storm kills 7 in Texas",
        "Harbour 1-0 Kingsmead",
    ]
    items += [
        item(9 + k, t, "A report.", outlet="Hill Country News") for k, t in enumerate(updates)
    ]
    headlines = [f"{name} Sings on The Voice Blind Auditions" for name in ("Kat", "Josh", "Ria")]
    items += [item(13 + k, t, outlet="Fan Site") for k, t in enumerate(headlines)]
    series = Series(batch_text(items))
    assert series.apart([0], [1]) and series.apart([1], [2]) and series.within([0, 1])
    assert not series.apart([0], [3]) and not series.apart([1], [4]) and not series.within([0, 3])
    assert not series.apart([5], [6])  # 2 of the outlet's 4 titles: no automated feed
    assert not series.within([9, 10, 11])
    assert not series.within([13, 14, 15])  # headlines only, one slot
    bare = [item(16 + k, t, outlet="Quake Wire") for k, t in enumerate(quakes[:3])]
    bare_series = Series(batch_text(bare))
    assert bare_series.apart([0], [1])  # magnitude, direction: two slots
    assert bare_series.apart([1], [2])
    # headlines only: one team's two games differ in one name and the score; a live score's
    # updates, in the score alone; a show's performers, in one name alone
    games = ["Rovers 2-1 United", "Rovers 0-3 City", "Harbour 1-1 Kingsmead", "Rovers 3-1 United"]
    results = Series(batch_text([item(k, t, outlet="Results") for k, t in enumerate(games)]))
    assert results.apart([0], [1]) and results.apart([1], [3])
    assert not results.apart([0], [3])
    # a live score's status word joins the first team's slot: still one game
    live = ["Half-time: Rovers 1-0 United", "Full-time: Rovers 2-0 United", "Rovers 3-1 City"]
    scores = Series(batch_text([item(k, t, outlet="Live") for k, t in enumerate(live)]))
    assert not scores.apart([0], [1])
    assert not series.within([13, 14, 15])
    assert series.describe([0], [1], [i.title for i in items], [i.outlet for i in items]) == (
        'another item of one template ("M 4.0 - 7 km W of Ridgecrest, CA", Quake Alerts)'
    )


def test_a_copy_of_an_automated_feeds_item_does_not_chain_it_to_another_of_its_template():
    """A mirror's word-for-word copy of one quake is a near duplicate of it and, by shared
    words, of another quake of the feed's template: the copies joined all three, unless the
    batch happened to hold a day-series somewhere (the template check ran only then)."""
    report = (
        "A magnitude 2.9 earthquake was recorded 5 km northeast of {}, California, by the "
        "seismic network; it was reviewed by a seismologist and no damage was reported."
    )
    quakes = [
        ("M 2.9 - 5 km NE of Ridgecrest, CA", report.format("Ridgecrest")),
        ("M 2.9 - 5 km NE of Trona, CA", report.format("Trona")),
        ("M 1.2 - 9 km S of Anza, CA", "A magnitude 1.2 earthquake was recorded near Anza."),
    ]
    items = [item(k, t, s, outlet="Quake Alerts") for k, (t, s) in enumerate(quakes)]
    items.append(item(3, *quakes[0], outlet="Quake Mirror"))
    vectors = unit([1, 0.02, 0], [1, 0.04, 0], [0, 0, 1], [1, 0.02, 0])
    labels = group(items, vectors, GroupingParams(clusterer="none")).tolist()
    assert labels[0] == labels[3] != labels[1], labels


def test_a_template_is_filled_with_names_and_measurements_not_counts() -> None:
    assert title_template("M 2.9 - 5 km NE of Ridgecrest, CA")[1] == (
        "M",
        "2.9",
        "NE",
        "Ridgecrest CA",
    )
    assert title_template("Kat Sings on The Voice (VIDEO)") == title_template(
        "Kat Sings on The Voice ..."
    )
    # a count is no name: one template and one filling, other counts
    assert (
        title_template("Storm kills 3 in Texas")[:2] == title_template("Storm kills 5 in Texas")[:2]
    )
    assert title_template("Storm kills 3 in Texas")[2] == ("3",)
    assert title_template("Argyle 4-1 Athletic")[2] == ("4-1",)
    assert title_template("UPDATE 2-Acme to buy Widget for $4 billion") == title_template(
        "Acme to buy Widget for $4 billion"
    )
