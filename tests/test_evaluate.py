import json
from datetime import UTC, datetime

import numpy as np
import pytest

from aggregator.evaluate import (
    ari,
    bcubed,
    evaluate_file,
    format_table,
    load_jsonl,
    mixed_stories,
    pairwise_f1,
)
from aggregator.grouping import UNKNOWN_TIME, GroupingParams


def test_bcubed_hand_computed():
    # gold: {0,1,2} {3,4}; predicted: {0,1} {2,3,4}
    pred = ["a", "a", "b", "b", "b"]
    gold = ["x", "x", "x", "y", "y"]
    p, r, f = bcubed(pred, gold)
    # precision per item: 1, 1, 1/3, 2/3, 2/3 ; recall: 2/3, 2/3, 1/3, 1, 1
    assert p == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5)
    assert r == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    assert f == pytest.approx(2 * p * r / (p + r))


def test_bcubed_perfect_and_all_singletons():
    gold = [1, 1, 2, 2]
    assert bcubed([7, 7, 3, 3], gold) == pytest.approx((1.0, 1.0, 1.0))
    p, r, _ = bcubed([0, 1, 2, 3], gold)
    assert (p, r) == pytest.approx((1.0, 0.5))


def test_metrics_skip_unlabelled_items():
    assert bcubed([0, 0, 1], ["x", "x", None]) == pytest.approx((1.0, 1.0, 1.0))


def test_pairwise_f1_hand_computed():
    # gold pairs: (0,1) (0,2) (1,2) (3,4); predicted pairs: (0,1) (2,3) (2,4) (3,4)
    pred = ["a", "a", "b", "b", "b"]
    gold = ["x", "x", "x", "y", "y"]
    # together: (0,1), (3,4) -> precision 2/4, recall 2/4
    assert pairwise_f1(pred, gold) == pytest.approx(0.5)


def test_ari_perfect_is_one():
    assert ari([5, 5, 6], ["a", "a", "b"]) == pytest.approx(1.0)


def test_mixed_stories_counts_cross_file_stories():
    assert mixed_stories([0, 0, 1, 1], ["f", "f", "f", "g"]) == 1


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_load_jsonl_uses_line_index_and_unknown_time(tmp_path):
    path = tmp_path / "x.jsonl"
    _write(
        path,
        [
            {
                "id": "a",
                "title": "T",
                "summary": "",
                "outlet": "o",
                "url": None,
                "published": "2014-03-10T12:00:00Z",
                "story": "s1",
            },
            {
                "id": "b",
                "title": "U",
                "summary": "S",
                "outlet": "p",
                "url": "http://x",
                "published": None,
            },
        ],
    )
    items, gold = load_jsonl(path)
    assert [i.id for i in items] == [0, 1]
    assert items[0].published == datetime(2014, 3, 10, 12, tzinfo=UTC)
    assert items[1].published == UNKNOWN_TIME
    assert gold == ["s1", None]


def test_a_time_without_an_offset_is_utc_not_the_hosts_zone(tmp_path):
    path = tmp_path / "x.jsonl"
    times = [
        "2014-03-10T12:00:00",
        "2014-03-10T12:00:00+00:00",
        "2014-03-10T13:00:00+01:00",
        "2014-03-10 12:00:00Z",
        # a feed's own form (RFC 822), with a zone and without one
        "Mon, 10 Mar 2014 13:00:00 +0100",
        "Mon, 10 Mar 2014 12:00:00 -0000",
    ]
    _write(path, [{"title": f"T{k}", "published": t} for k, t in enumerate(times)])
    items, _ = load_jsonl(path)
    assert {i.published for i in items} == {datetime(2014, 3, 10, 12, tzinfo=UTC)}
    assert items[0].published.utcoffset() is not None  # sorts and subtracts with aware times


def _fake_embed(texts):
    # identical texts get identical vectors, different texts are near-orthogonal
    rng = [np.random.default_rng(sum(map(ord, t))) for t in texts]
    return np.stack([r.standard_normal(32) for r in rng]).astype(np.float32)


def test_evaluate_file_without_labels(tmp_path):
    path = tmp_path / "unlabelled.jsonl"
    rows = [
        {
            "id": f"i{n}",
            "title": f"title {n}",
            "summary": "",
            "outlet": "o",
            "url": None,
            "published": None,
        }
        for n in range(4)
    ]
    _write(path, rows)
    report = evaluate_file(path, GroupingParams(), _fake_embed)
    assert report.f1 is None and report.ari is None
    assert report.n_items == 4 and len(report.labels) == 4
    assert [p["id"] for p in report.predictions()] == ["i0", "i1", "i2", "i3"]
    assert "unlabelled.jsonl" in format_table([report])


def test_evaluate_file_with_labels(tmp_path):
    path = tmp_path / "labelled.jsonl"
    rows = [
        {
            "id": str(n),
            "title": t,
            "summary": "",
            "outlet": "o",
            "url": None,
            "published": None,
            "story": s,
        }
        for n, (t, s) in enumerate(
            [("same words here", "a"), ("same words here", "a"), ("other thing", "b")]
        )
    ]
    _write(path, rows)
    report = evaluate_file(path, GroupingParams(), _fake_embed)
    assert report.f1 == pytest.approx(1.0)
    assert report.n_stories == 2


def test_a_file_starting_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"title": "T", "story": "s"}).encode() + b"\n")
    items, gold = load_jsonl(path)
    assert [i.title for i in items] == ["T"] and gold == ["s"]


def test_evaluate_groups_a_poorly_read_writing_system_as_cluster_does(tmp_path):
    """`eval` grouped raw vectors: six unrelated Arabic items that an English-like model gives
    one large shared part were one story there while `cluster` kept them apart."""
    shared = np.random.default_rng(7).standard_normal(32)

    def embed(texts):
        rows = []
        for text in texts:
            noise = np.random.default_rng(sum(map(ord, text))).standard_normal(32)
            rows.append(4 * shared + noise if not text.isascii() else noise)
        rows = np.array(rows, dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    titles = [
        "ارتفاع أسعار النفط",
        "الهلال يفوز على النصر",
        "افتتاح معرض الكتاب",
        "أمطار غزيرة في الإسكندرية",
        "إطلاق قمر صناعي جديد",
        "حريق في مصنع بالدمام",
    ]
    path = tmp_path / "arabic.jsonl"
    rows = [
        {"id": f"a{n}", "title": t, "summary": "", "outlet": f"o{n}", "story": f"s{n}"}
        for n, t in enumerate(titles)
    ]
    _write(path, rows)
    report = evaluate_file(path, GroupingParams(), embed)
    assert report.precision == 1.0, report.labels
