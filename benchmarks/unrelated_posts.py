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
variants: arguably one story), and the labelled files as one busy day with the posts mixed in.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fit_evidence import FILES, combined, load
from quality import cached, load_embed

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
