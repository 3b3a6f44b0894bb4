"""A stand-in for automated feeds: an earthquake feed, a results feed and a weather-alert feed,
whose items fill one title template, every item its own event, and a news outlet that reports
a few of the quakes (each report belongs with its quake's item).

    python benchmarks/automated_feeds.py [--seeds 5]

Generated from small word lists with a seeded random generator (no real data): each feed's
items share all their words but places, teams, figures and times, so the embedding model
finds two of them 0.8-0.9 alike, as alike as two outlets' reports of one event. Prints, per
feed and over all of them as one window, the B-cubed precision and recall of grouping them,
as a range over seeds (the target for feeds whose items share no story is precision 0.95):
with the summaries as written, and as the parser stores them (a feed's summary template cut;
one that is all template stored empty, leaving the item headline-only).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality import load_embed
from unrelated_posts import stored

from aggregator.evaluate import bcubed
from aggregator.grouping import embedding_text, group
from aggregator.grouping.scripts import script_centres, scripts_of
from aggregator.models import Item

START = datetime(2025, 3, 11, tzinfo=UTC)
PLACES = [
    ("Ridgecrest", "CA", "California"),
    ("Pahala", "Hawaii", "Hawaii"),
    ("Anza", "CA", "California"),
    ("Nikiski", "Alaska", "Alaska"),
    ("Guthrie", "Oklahoma", "Oklahoma"),
    ("Brawley", "CA", "California"),
]
DIRECTIONS = "N NNE NE ENE E ESE SE SSE S SSW SW WSW W WNW NW NNW".split()  # noqa: SIM905
TEAMS = "Argyle Rovers Albion Harriers Orient Wanderers Athletic Villa Town City".split()  # noqa: SIM905
ALERTS = ["Flood Watch", "Tornado Warning", "Heat Advisory", "Dense Fog Advisory", "Wind Advisory"]
COUNTIES = [("Harris", "TX"), ("Maricopa", "AZ"), ("Cook", "IL"), ("Polk", "FL"), ("Shelby", "TN")]

Row = tuple[Item, str]  # an item and its event


def quakes(rng: random.Random, count: int = 30) -> tuple[list[Row], list[Row]]:
    """A quake feed's items, and a news outlet's reports of three of them."""
    feed: list[Row] = []
    for k in range(count):
        town, state, _ = rng.choice(PLACES)
        magnitude, distance = rng.uniform(1.5, 5.0), rng.randint(2, 40)
        when = START + timedelta(minutes=rng.randint(0, 2880))
        title = f"M {magnitude:.1f} - {distance} km {rng.choice(DIRECTIONS)} of {town}, {state}"
        summary = (
            f"Time {when:%Y-%m-%d %H:%M} UTC. Location {rng.uniform(19, 61):.3f}°N "
            f"{rng.uniform(117, 160):.3f}°W. Depth {rng.uniform(1, 40):.1f} km."
        )
        feed.append((Item(k, title, summary, "Quake Alerts", None, when), f"q{k}"))
    reports: list[Row] = []
    for k in rng.sample(range(count), 3):
        item = feed[k][0]
        magnitude, town = item.title.split()[1], item.title.split(" of ")[1].split(",")[0]
        region = next(p[2] for p in PLACES if p[0] == town)
        title = f"Magnitude {magnitude} earthquake shakes {town}"
        summary = (
            f"A magnitude {magnitude} earthquake struck near {town}, {region}, residents said; "
            "no damage or injuries were reported."
        )
        when = item.published + timedelta(minutes=40)
        reports.append((Item(0, title, summary, "Valley Gazette", None, when), f"q{k}"))
    return feed, reports


def results(rng: random.Random, count: int = 24) -> list[Row]:
    """Two days of a league's games: each fixture once."""
    rows: list[Row] = []
    fixtures = rng.sample([(h, a) for h in TEAMS for a in TEAMS if h != a], count)
    for k, (home, away) in enumerate(fixtures):
        score = (rng.randint(0, 4), rng.randint(0, 4))
        title = f"{home} {score[0]}-{score[1]} {away}"
        summary = (
            f"Full time at {home} Park: {home} {score[0]}, {away} {score[1]}. "
            f"Attendance {rng.randint(3000, 30000):,}."
        )
        when = START + timedelta(minutes=rng.randint(0, 2880))
        rows.append((Item(k, title, summary, "League Results", None, when), f"r{k}"))
    return rows


def alerts(rng: random.Random, count: int = 24) -> list[Row]:
    rows: list[Row] = []
    pairs = rng.sample([(a, c) for a in ALERTS for c in COUNTIES], count)
    for k, (alert, (county, state)) in enumerate(pairs):  # one alert of a kind per county
        until = START + timedelta(minutes=rng.randint(0, 2880))
        title = f"{alert} issued for {county} County, {state} until {until:%I:%M%p %a}"
        summary = (
            f"The National Weather Service has issued a {alert} for {county} County until "
            f"{until:%I:%M %p %A}. Monitor later forecasts."
        )
        rows.append((Item(k, title, summary, "Weather Alerts", None, until), f"w{k}"))
    return rows


def as_stored(rows: list[Row]) -> list[Row]:
    """The summaries as the parser stores them (``unrelated_posts.stored``): each feed's
    template cut, and a summary that is all template stored empty."""
    items = stored([item for item, _ in rows])
    return [(item, event) for item, (_, event) in zip(items, rows, strict=True)]


def scores(rows: list[Row], embed: Callable[[list[str]], np.ndarray]) -> tuple[float, float]:
    items = [
        Item(k, i.title, i.summary, i.outlet, None, i.published) for k, (i, _) in enumerate(rows)
    ]
    vectors = np.asarray(embed([embedding_text(i.title, i.summary) for i in items]))
    labels = group(items, vectors, centres=script_centres(embed, scripts_of(items)))
    precision, recall, _ = bcubed(labels, [event for _, event in rows])
    return precision, recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    embed, name = load_embed("auto")
    found: dict[str, list[tuple[float, float]]] = {}
    for seed in range(args.seeds):
        rng = random.Random(seed)
        feed, reports = quakes(rng)
        days = {
            "quake feed": feed,
            "quake feed and a news outlet's reports": feed + reports,
            "results feed": results(rng),
            "weather-alert feed": alerts(rng),
        }
        days["all as one window"] = [row for rows in list(days.values())[1:] for row in rows]
        for label, rows in days.items():
            found.setdefault(label, []).append(scores(rows, embed))
            found.setdefault(f"{label}, as stored", []).append(scores(as_stored(rows), embed))
    print(f"embedder: {name}; {args.seeds} seeds; B-cubed precision / recall, lowest-highest")
    for label, runs in found.items():
        p, r = [x for x, _ in runs], [y for _, y in runs]
        print(f"  {label:51s} P {min(p):.3f}-{max(p):.3f}  R {min(r):.3f}-{max(r):.3f}")


if __name__ == "__main__":
    main()
