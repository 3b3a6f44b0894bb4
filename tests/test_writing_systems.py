"""Items in writing systems the embedding model reads poorly (grouping.scripts), on made-up
vectors: what the reference measures, and how a window's items are centred with it."""

import numpy as np

from aggregator.grouping.scripts import (
    WINDOW_MEAN_ITEMS,
    centred_by_script,
    reference_texts,
    script_centres,
    scripts_of,
)
from aggregator.grouping.text import script_of
from aggregator.models import Item

ARABIC = "عنوان الخبر في المدينة"
RUSSIAN = "Новости из города"


def _item(index: int, title: str) -> Item:
    return Item(id=index, title=title, summary="", outlet=f"o{index}", link=None, published=None)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_each_reference_text_is_in_its_writing_system() -> None:
    """A reference text read as another system (or Latin) would measure the wrong system."""
    texts = reference_texts()
    assert {"arabic", "persian", "cyrillic", "han", "kana", "hangul", "greek", "hebrew"} <= set(
        texts
    )
    for script, lines in texts.items():
        assert len(lines) >= 20 and len(set(lines)) == len(lines), script
        assert {script_of(line) for line in lines} == {script}, script


def test_chinese_and_japanese_are_told_apart_by_kana_and_arabic_letters_by_language() -> None:
    """The model reads each its own way: Persian centred as Arabic kept part of what all
    Persian texts share (a day of 51 Persian items: precision 0.80; as Persian 0.97)."""
    assert script_of("四川发生4.3级地震 暂无人员伤亡报告") == "han"
    assert script_of("山間部で震度三の地震、被害の報告なし") == "kana"
    assert script_of("الحكومة تقر خطة جديدة لدعم المزارعين") == "arabic"
    assert script_of("دولت طرح تازه‌ای برای حمایت از کشاورزان تصویب کرد") == "persian"
    assert script_of("حکومت نے کسانوں کے لیے نیا منصوبہ منظور کر لیا ہے") == "urdu"
    assert scripts_of([_item(0, ARABIC), _item(1, "Floods in Leeds"), _item(2, RUSSIAN)]) == {
        "arabic",
        "cyrillic",
    }


def test_only_a_system_whose_reference_texts_come_out_alike_gets_a_centre() -> None:
    """The default model gives unrelated Arabic news ~0.75 alike: its mean is what they share.
    A model that reads a system (unrelated texts near orthogonal) leaves it as it is."""
    rng = np.random.default_rng(1)
    dims = 32
    shared = _unit(rng.standard_normal((1, dims)))[0]

    def embed(texts: list[str]) -> np.ndarray:
        noise = rng.standard_normal((len(texts), dims))
        if script_of(texts[0]) == "arabic":  # read poorly: one big shared part
            return _unit(3 * shared + 0.3 * noise)
        return _unit(noise)  # read: unrelated texts point anywhere

    centres = script_centres(embed, {"arabic", "cyrillic", "latin"})
    assert set(centres) == {"arabic"}
    centre = centres["arabic"]
    assert float(centre @ shared) / float(np.linalg.norm(centre)) > 0.95


def test_a_centre_keeps_the_common_part_of_a_story_that_fills_the_window() -> None:
    """Ten reports of one blast among twelve Arabic items: their own mean is mostly the blast,
    so taking it away split the reports (0.1 alike); pooled with the reference's 24 texts,
    the blast is a smaller part of what is taken away."""
    rng = np.random.default_rng(2)
    dims = 64
    script_part, blast = _unit(rng.standard_normal((2, dims)))
    rows = [1.5 * script_part + blast + 0.05 * rng.standard_normal(dims) for _ in range(10)]
    rows += [1.5 * script_part + 0.1 * rng.standard_normal(dims) for _ in range(2)]
    unit = _unit(np.array(rows))
    items = [_item(k, ARABIC) for k in range(12)]
    # as script_centres measures it: the mean of unrelated reference texts' unit vectors
    reference = _unit(1.5 * script_part + 0.1 * rng.standard_normal((24, dims))).mean(axis=0)

    def mean_similarity_of_reports(centred: np.ndarray) -> float:
        reports = centred[:10] @ centred[:10].T
        return float((reports.sum() - 10) / 90)

    by_window = centred_by_script(unit, items)  # no centres measured: the window's mean
    by_reference = centred_by_script(unit, items, {"arabic": reference})
    assert mean_similarity_of_reports(by_window) < 0.3
    assert mean_similarity_of_reports(by_reference) > 0.7  # measured 0.75
    assert float(by_reference[0] @ by_reference[11]) < 0.5  # the others stay apart


def test_a_window_is_centred_by_its_own_items_only_without_a_reference() -> None:
    """A reference centre serves any window, even two items; without one (no centres
    measured, or a system the file lacks) only a window of ``WINDOW_MEAN_ITEMS`` or more is
    centred by its own mean; a system the model reads (measured, no centre) is left alone."""
    rng = np.random.default_rng(3)
    dims = 16
    shared = _unit(rng.standard_normal((1, dims)))[0]
    two = _unit(3 * shared + rng.standard_normal((2, dims)))
    items = [_item(0, ARABIC), _item(1, ARABIC)]
    np.testing.assert_array_equal(centred_by_script(two, items), two)
    centred = centred_by_script(two, items, {"arabic": 0.85 * shared})  # a mean of unit rows
    assert float(centred[0] @ centred[1]) < float(two[0] @ two[1]) - 0.3
    np.testing.assert_array_equal(centred_by_script(two, items, {}), two)  # the model reads it

    tamil = [_item(k, "சென்னையில் கனமழை பெய்கிறது") for k in range(WINDOW_MEAN_ITEMS)]
    many = _unit(3 * shared + rng.standard_normal((WINDOW_MEAN_ITEMS, dims)))
    assert script_of(tamil[0].title) == "tamil" and "tamil" not in reference_texts()
    by_own_mean = centred_by_script(many, tamil, {})
    assert abs(float(by_own_mean.mean(axis=0) @ shared)) < 0.2
    np.testing.assert_array_equal(centred_by_script(many[:-1], tamil[:-1], {}), many[:-1])


def test_texts_the_model_gives_one_vector_are_read_by_their_characters() -> None:
    """The default model reads Khmer (and Thai, Amharic) as unknown tokens: different texts,
    one vector, and less their shared part nothing is left. Their character n-grams stand in:
    a text and its rewording come out alike, an unrelated one does not, with or without a
    reference for the system."""
    one = _unit(np.ones((1, 32)))[0]
    khmer = [
        "ភ្លៀងធ្លាក់ខ្លាំងនៅភ្នំពេញ",
        "ភ្លៀងធ្លាក់ខ្លាំងនៅភ្នំពេញថ្ងៃនេះ",
        "រដ្ឋាភិបាលបានអនុម័តផែនការថ្មី",
    ]
    items = [_item(k, text) for k, text in enumerate(khmer)]
    assert script_of(khmer[0]) == "khmer"
    for centres in (None, {}):
        read = centred_by_script(np.tile(one, (3, 1)), items, centres)
        assert float(read[0] @ read[1]) > 0.7 > 0.2 > float(read[0] @ read[2])
    thai = [_item(k, text) for k, text in enumerate(["ไฟไหม้โรงงาน", "ไฟไหม้โรงงานใหญ่"])]
    read = centred_by_script(np.tile(one, (2, 1)), thai, {"thai": one})  # a reference of one
    assert 0.5 < float(read[0] @ read[1]) < 0.99
