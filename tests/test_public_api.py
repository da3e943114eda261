"""The public surface: ``qabot.__all__`` is the documented API, and every CLI command has help."""

from __future__ import annotations

import importlib
import types

import click
import pytest
from click.testing import CliRunner

import qabot
from qabot.frontends.cli import cli


def _documented_names() -> list[str]:
    """The names listed under "The public API" in qabot's module docstring."""
    doc = qabot.__doc__ or ""
    assert "The public API" in doc, "qabot's docstring lists the public API"
    listing = doc.split("The public API", 1)[1].split("\n\n", 2)[1]
    names: list[str] = []
    for line in listing.splitlines():
        described = line.strip().split("  ", 1)[0]  # names, then two spaces, then the description
        names += [name.strip() for name in described.split(",")]
    return names


def test_all_is_exactly_the_documented_api():
    documented = _documented_names()
    assert len(documented) == len(set(documented))
    assert sorted(qabot.__all__) == sorted(documented)
    for name in ("Retriever", "Settings", "Answer", "Passage", "build_index", "load_embedder"):
        assert name in qabot.__all__


def test_every_public_name_in_the_package_is_exported():
    """Like httpx's tests/test_exported_members.py: nothing public sits outside __all__."""
    public = {name for name, value in vars(qabot).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert public == set(qabot.__all__)


@pytest.mark.parametrize("name", qabot.__all__)
def test_each_name_imports_and_is_documented(name):
    value = getattr(importlib.import_module("qabot"), name)
    exec(f"from qabot import {name}", {})  # the import statement a user writes
    assert (value.__doc__ or "").strip(), f"qabot.{name} has no docstring"


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", _all_commands(cli), ids=lambda c: " ".join(("qabot", *c)))
def test_every_command_and_group_has_help_text(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    description = result.output.split("\n\n", 1)[1].split("Options:", 1)[0].strip()
    assert description, f"`qabot {' '.join(command)} --help` has no description"
    node: click.Command = cli
    for name in command:
        assert isinstance(node, click.Group)
        node = node.commands[name]
    for param in node.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"{'/'.join(param.opts)} of `qabot {' '.join(command)}` has no help"
