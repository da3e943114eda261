"""The pages made from the settings table: ``.env.example`` and ``docs/settings.md``.

cog runs these (``make docs``); the tests run cog's check, so a changed table with pages not
regenerated fails. A secret's value is never shown: its line is empty.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from qabot.config.kinds import Secret
from qabot.config.table import GROUPS, SETTINGS, Setting

WIDTH = 96  # .env.example's comment lines


def shown(setting: Setting) -> str:
    """The value ``.env.example`` shows for ``setting``: its default as one would write it (empty if none)."""
    if setting.example is not None:
        return setting.example
    value = setting.default
    if value is None or setting.secret or isinstance(value, Secret):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | frozenset):
        return ",".join(str(v) for v in sorted(value))
    return value.as_posix() if isinstance(value, Path) else str(value)


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, WIDTH - 2, break_long_words=False, break_on_hyphens=False)]


def env_example() -> str:
    """Every setting, grouped, each with its help and its default, commented out."""
    lines: list[str] = []
    for group in GROUPS:
        lines += ["", f"# --- {group.title} ".ljust(WIDTH, "-")]
        if group.note:
            lines += _comment(group.note)
        for setting in (s for s in SETTINGS if s.group == group.key):
            lines += _comment(setting.help)
            lines.append(f"#{setting.env}={shown(setting)}")
    return "\n".join(lines[1:]) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def markdown() -> str:
    """The settings reference: per group, a table of variable, default, what it accepts and what it does."""
    lines: list[str] = []
    for group in GROUPS:
        lines += ["", f"## {group.title[0].upper()}{group.title[1:]}", ""]
        if group.note:
            lines += [group.note, ""]
        lines += ["| Variable | Default | Accepts | What it does |", "| --- | --- | --- | --- |"]
        for setting in (s for s in SETTINGS if s.group == group.key):
            value = shown(setting) if setting.example is None else ""
            default = "(secret)" if setting.secret else f"`{value}`" if value else "(unset)"
            lines.append(f"| `{setting.env}` | {default} | {_cell(setting.kind.accepts)} | {_cell(setting.help)} |")
    return "\n".join(lines) + "\n\n"  # blank lines around it: cog's markers are HTML comments
