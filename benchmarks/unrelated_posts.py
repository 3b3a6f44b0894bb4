"""A stand-in for a feed list whose items share no story: this machine's Debian package
descriptions as posts (a title, a few sentences, many of one subject), one story each. The
figures depend on what the machine has installed.

    python benchmarks/unrelated_posts.py [--data ../shared/data] [--cache DIR]

Real feed lists are mostly items no other feed covers (blogs, podcasts, niche outlets). No such
labelled set ships here, so this script takes texts that are unrelated by construction: the
long descriptions of installed Debian packages (library, -dev, -doc and similar variants and
repeated texts left out), each posted by the "blog" of its section on a random day of two years.
It prints the B-cubed precision of grouping them (the target for real feeds is 0.95), the same
with every post dated one day (no help from time), the pairs it joins (often one program's
variants: arguably one story), the labelled quiet day (one item per story) as one feed that
wraps its summaries in a template (a blog's footer naming the post; an aggregator's link
posts) as fetched and as stored, and the labelled files as one busy day with the posts mixed in.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fit_evidence import FILES, SPARSE, Labelled, combined, load
from quality import cached, load_embed

from aggregator.boilerplate import strip_feed_templates
from aggregator.evaluate import bcubed
from aggregator.grouping import embedding_text, group
from aggregator.models import Item

VARIANTS = ("-dev", "-doc", "-dbg", "-common", "-data", "-bin", "-core")
START = datetime(2024, 1, 1, tzinfo=UTC)


def package_posts(seed: int = 7) -> tuple[list[Item], list[str]]:
    """One post per installed package with a real description, dated at random over two years,
    and the packages' names."""
    listing = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Section}\t${Description}\n\x1e\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rng = random.Random(seed)
    posts: list[Item] = []
    names: list[str] = []
    seen: set[str] = set()
    for block in listing.split("\x1e\n"):
        head, _, rest = block.strip("\n").partition("\n")
        name, section, title = [*head.split("\t"), "", "", ""][:3]
        if not name or name.startswith("lib") or name.endswith(VARIANTS):
            continue
        body = " ".join(line.strip() for line in rest.splitlines() if line.strip() != ".")
        if len(body) < 150 or body[:80] in seen or title in seen:
            continue
        seen.update((body[:80], title))
        when = START + timedelta(days=rng.uniform(0, 730))
        link = f"https://{section or 'misc'}.blog.example/{name}"
        posts.append(Item(len(posts), title, body[:600], f"{section} blog", link, when))
        names.append(name)
    return posts, names


def quiet_day_in_templates(quiet: Labelled, embed: Callable[[list[str]], Any]) -> None:
    """The labelled quiet day (one item per story) as one feed that wraps every summary in its
    template, grouped as fetched and as stored (the parser leaves the template out). Link posts'
    figure as fetched depends on the random counts in their template (conflicting numbers keep
    some apart): a range over seeds."""
    items = [replace(i, outlet="one feed") for i in quiet.data.items]

    def precision(posts: list[Item]) -> float:
        labels = group(
            posts, np.asarray(embed([embedding_text(p.title, p.summary) for p in posts]))
        )
        return bcubed(labels, quiet.data.gold)[0]

    footer = [
        replace(p, summary=f"{p.summary} […] The post {p.title} appeared first on Daily Blog.")
        for p in items
    ]
    fetched = [precision(link_posts(items, seed)) for seed in range(3)]
    print(
        f"quiet day ({len(items)} items) as one feed, B-cubed precision as fetched → as stored "
        f"(the feed's template stripped): summaries as written {precision(items):.3f}; with a "
        f"blog's footer {precision(footer):.3f} → {precision(stored(footer)):.3f}; as link posts "
        f"{min(fetched):.3f}-{max(fetched):.3f} → {precision(stored(link_posts(items, 0))):.3f}"
    )


def link_posts(posts: list[Item], seed: int) -> list[Item]:
    """The posts as an aggregator's link posts, whose summary is only its template."""
    rng = random.Random(seed)
    return [
        replace(
            p,
            summary=f"Article URL: https://site{k % 7}.example/2026/{k} Comments URL: "
            f"https://links.example/item?id={rng.randrange(10**7)} Points: "
            f"{rng.randrange(1, 400)} # Comments: {rng.randrange(90)}",
        )
        for k, p in enumerate(posts)
    ]


def stored(posts: list[Item]) -> list[Item]:
    """The summaries as stored: the parser finds each feed's template among its posts."""
    by_feed: dict[str, list[int]] = {}
    for k, p in enumerate(posts):
        by_feed.setdefault(p.outlet, []).append(k)
    out = list(posts)
    for indexes in by_feed.values():
        summaries = strip_feed_templates([(posts[k].title, posts[k].summary) for k in indexes])
        for k, summary in zip(indexes, summaries, strict=True):
            out[k] = replace(posts[k], summary=summary)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--cache", type=Path, default=None, help="folder for cached vectors")
    args = parser.parse_args()
    embed, name = load_embed("auto")
    posts, names = package_posts()
    vectors = np.asarray(embed([embedding_text(p.title, p.summary) for p in posts]))
    alone = list(range(len(posts)))
    labels = group(posts, vectors)
    print(f"{len(posts)} posts, one story each: B-cubed precision {bcubed(labels, alone)[0]:.3f}")
    joined: dict[int, list[str]] = {}
    for package, label in zip(names, labels.tolist(), strict=True):
        joined.setdefault(label, []).append(package)
    for packages in joined.values():
        if len(packages) > 1:
            print("  joined:", ", ".join(packages))
    one_day = [Item(p.id, p.title, p.summary, p.outlet, p.link, START) for p in posts]
    same_day = group(one_day, vectors)
    print(f"all dated one day: B-cubed precision {bcubed(same_day, alone)[0]:.3f}")
    batches = load(args.data, cached(embed, args.cache, name))
    if SPARSE in batches:
        quiet_day_in_templates(batches[SPARSE], embed)
    files = [batches[f] for f in FILES if f in batches]
    if files:
        day, _ = combined(files)
        offset = len(day.data.items)
        mixed = list(day.data.items) + [
            Item(offset + p.id, p.title, p.summary, p.outlet, p.link, p.published) for p in one_day
        ]
        gold = list(day.data.gold) + [f"post-{p.id}" for p in posts]
        labels = group(mixed, np.concatenate([day.vectors, vectors]))
        precision, recall, f1 = bcubed(labels, gold)
        print(
            f"labelled files as one day with the posts: B-cubed P {precision:.3f} "
            f"R {recall:.3f} F1 {f1:.3f}"
        )


if __name__ == "__main__":
    main()
