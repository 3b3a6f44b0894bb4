"""The README and --help say what the code does."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from aggregator import config as config_module
from aggregator.cli import main
from aggregator.grouping import GroupingParams

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def all_commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(all_commands(command, path))
    return found


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`aggregator {' '.join(path)} --help` shows no example"


def test_readme_mentions_only_real_commands() -> None:
    known = {path[0] for path in all_commands()}
    mentioned = set(re.findall(r"(?:^|`|/bin/)aggregator ([\w-]+)", README, re.MULTILINE))
    assert mentioned <= known, mentioned - known
    for name in ("poll", "cluster", "build", "run", "email", "serve", "eval", "demo", "feeds"):
        assert f"aggregator {name}" in README or f"| {name}" in README, name


def test_readme_documents_every_setting() -> None:
    table = README[README.index("## Configuration") :]
    top = config_module._TOP_KEYS
    for key in top:
        assert f"`{key}" in table, f"feeds.yaml key {key!r} is not in the README"
    sections = {
        "site": config_module.SiteSettings,
        "embedding": config_module.EmbeddingSettings,
        "poll": config_module.PollSettings,
    }
    for section, settings in sections.items():
        for field in dataclasses.fields(settings):
            assert f"`{section}.{field.name}`" in table, f"{section}.{field.name}"
    for field in dataclasses.fields(GroupingParams):
        assert f"`grouping.{field.name}`" in table or f"`{field.name}`" in table, field.name


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    commands = re.findall(r"```sh\n(.+?)\n```", README)
    assert "bash scripts/setup.sh && .venv/bin/aggregator demo" in commands
    test_command = "bash scripts/setup.sh --test && .venv/bin/python -m pytest"
    assert test_command in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh --test" in ci and ".venv/bin/python -m pytest" in ci


def test_changelog_has_an_unreleased_section() -> None:
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
