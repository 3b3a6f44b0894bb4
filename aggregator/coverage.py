"""Coverage by the user's own tags: which values of a dimension (lean, region, kind ...) covered
a story, and the stories only one value covered (blind spots).

Pure functions over outlet names and feed URLs; `feeds.yaml`'s `coverage:` mapping names the
dimensions and the feeds' `tags:` say which value each feed has. Tags match ignoring case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aggregator.config import CoverageDimension, FeedConfig

# dimension -> value -> outlets, in the order feeds.yaml lists them
Coverage = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class CoverageSpec:
    """The dimensions worth showing and each feed's tags.

    A dimension keeps only the values some feed carries; a dimension left with none is dropped
    (the config warns about the missing tags, the pages just leave them out).
    """

    dimensions: tuple[CoverageDimension, ...] = ()
    feed_tags: Mapping[str, frozenset[str]] = field(default_factory=dict)  # url -> casefolded

    def key(self) -> str:
        """The same text in every process for the same spec (a set's repr is not: its order
        follows string hashes, which differ from process to process)."""
        tags = sorted((url, sorted(tags)) for url, tags in self.feed_tags.items())
        return repr((self.dimensions, tags))


def coverage_spec(
    dimensions: Sequence[CoverageDimension], feeds: Sequence[FeedConfig]
) -> CoverageSpec:
    feed_tags = {f.url: frozenset(t.casefold() for t in f.tags) for f in feeds}
    carried = frozenset().union(*feed_tags.values())
    kept = []
    for dimension in dimensions:
        values = tuple(v for v in dimension.values if v.casefold() in carried)
        if values:
            kept.append(CoverageDimension(dimension.name, values))
    return CoverageSpec(tuple(kept), feed_tags)


def story_coverage(members: Iterable[tuple[str, str]], spec: CoverageSpec) -> Coverage:
    """Outlets per value for each dimension, from the story's (outlet, feed URL) pairs.

    A dimension none of the story's outlets is tagged in is left out: it would say nothing.
    An outlet with two values of a dimension (two feeds, or a feed with both tags) counts in both.
    """
    tags_by_outlet: dict[str, set[str]] = {}
    for outlet, feed_url in members:
        tags_by_outlet.setdefault(outlet, set()).update(spec.feed_tags.get(feed_url, ()))
    coverage: dict[str, dict[str, int]] = {}
    for dimension in spec.dimensions:
        counts = {
            value: sum(1 for tags in tags_by_outlet.values() if value.casefold() in tags)
            for value in dimension.values
        }
        if any(counts.values()):
            coverage[dimension.name] = counts
    return coverage


@dataclass(frozen=True, slots=True)
class BlindSpot:
    """A story that two or more outlets tagged in a dimension covered, all with one value."""

    dimension: str
    covered_by: str
    missing: tuple[str, ...]  # the dimension's other values, which the user's feeds do carry
    story: int  # index into the stories given to `blind_spots`
    outlets: int  # the story's outlets tagged in this dimension (all with `covered_by`)


def blind_spots(stories: Sequence[Coverage], spec: CoverageSpec) -> dict[str, list[BlindSpot]]:
    """Per dimension (in config order), the stories covered by one value only, in the order
    given, counting only outlets tagged in that dimension: two or more of them, so untagged
    outlets never make a story one-sided. `stories` holds each story's coverage."""
    found: dict[str, list[BlindSpot]] = {}
    for dimension in spec.dimensions:
        if len(dimension.values) < 2:
            continue  # the user's list has nothing on the other side to compare with
        for index, coverage in enumerate(stories):
            counts = coverage.get(dimension.name) or {}
            covering = [value for value, n in counts.items() if n]
            # with one value covering, its count is the number of tagged outlets
            if len(covering) == 1 and counts[covering[0]] >= 2:
                missing = tuple(v for v in dimension.values if v != covering[0])
                spot = BlindSpot(dimension.name, covering[0], missing, index, counts[covering[0]])
                found.setdefault(dimension.name, []).append(spot)
    return found
