"""README.md promises only what exists: its `qabot ...` commands and their --flags, and its
QABOT_* variables (read from the README at test time, checked against the click command tree
and the Settings fields)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import click
import pytest

from qabot.config import Settings
from qabot.frontends.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
# `qabot` as a command, not as the package name: start of a line, after `$ `, `/ ` or a
# backtick, followed by a word (`qabot ask ...`, `qabot check / qabot stats`)
COMMAND = re.compile(r"(?:^|[`/]\s*|\$\s+|bin/|-m\s+)qabot((?:\s+[a-z][a-z/-]*)+)", re.M)
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b")
VARIABLE = re.compile(r"\bQABOT_[A-Z_]+\b")


def _snippets() -> list[str]:
    """The README's code: fenced blocks line by line, and inline code spans."""
    text = README.read_text(encoding="utf-8")
    lines = [line for block in FENCE.findall(text) for line in block.splitlines()]
    prose = FENCE.sub("", text)
    return lines + INLINE.findall(prose)


def _resolve(words: list[str]) -> tuple[list[str], click.Command]:
    """The longest command path of ``words`` in the click tree, and its command."""
    path: list[str] = []
    node: click.Command = cli
    for word in words:
        if not isinstance(node, click.Group) or word not in node.commands:
            break
        node = node.commands[word]
        path.append(word)
    return path, node


def _mentions() -> list[tuple[str, list[str], list[str]]]:
    """(snippet, command words, flags) for every `qabot ...` in the README's code."""
    found = []
    for snippet in _snippets():
        code = snippet.split("#", 1)[0]  # comments in code blocks are prose
        starts = list(COMMAND.finditer(code))
        for i, match in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(code)
            rest = code[match.end(): end]
            words = match.group(1).split()
            # `qabot ask/search --since`: the same flags for each of the commands
            for first in words[0].split("/"):
                found.append((snippet, [first, *words[1:]], FLAG.findall(rest)))
    return found


def _standalone_flags() -> list[str]:
    """Inline code that is only a flag, as in "every command takes `--index DIR`"."""
    return sorted({span.split()[0] for span in _snippets() if re.fullmatch(r"--[a-z][a-z-]*( [A-Z.]+)?", span)})


def _every_option(group: click.Group) -> set[str]:
    found = {opt for param in group.params for opt in [*param.opts, *param.secondary_opts]}
    for command in group.commands.values():
        if isinstance(command, click.Group):
            found |= _every_option(command)
        else:
            found |= {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    return found | {"--help", "-h"}


MENTIONS = _mentions()


def test_the_readme_mentions_commands():
    assert README.is_file()
    assert len(MENTIONS) >= 10, MENTIONS


@pytest.mark.parametrize("snippet, words, flags", MENTIONS, ids=[" ".join(["qabot", *m[1][:2]]) for m in MENTIONS])
def test_each_command_and_flag_exists(snippet, words, flags):
    path, command = _resolve(words)
    assert path and path[0] == words[0], f"README names `qabot {words[0]}`, which is no command: {snippet!r}"
    assert not isinstance(command, click.Group), (
        f"README names `qabot {' '.join(words)}`: `qabot {' '.join(path)}` has no such subcommand"
    )
    known = {opt for param in [*command.params, *cli.params] for opt in [*param.opts, *param.secondary_opts]}
    known |= {"--help", "-h"}
    for flag in flags:
        assert flag in known, f"README uses `{flag}` with `qabot {' '.join(path)}`, which has no such option: {snippet!r}"


@pytest.mark.parametrize("flag", _standalone_flags())
def test_each_flag_named_on_its_own_exists(flag):
    assert flag in _every_option(cli), f"README names `{flag}`, which no qabot command has"


def test_every_qabot_variable_in_the_readme_is_a_setting():
    named = set(VARIABLE.findall(README.read_text(encoding="utf-8")))
    settings = {f.metadata["env"] for f in fields(Settings)}
    assert named, "the README names no QABOT_* variable"
    assert named <= settings, f"the README names variables that are no setting: {sorted(named - settings)}"
