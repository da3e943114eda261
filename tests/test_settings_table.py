"""One table of settings (qabot/config/table.py), and everything made from it agrees with it:
the Settings fields, the bounds the checks enforce, .env.example and docs/settings.md (generated
by cog: `make docs`), and every QABOT_* variable the package names."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from qabot.config import SETTINGS, Secret, Settings
from qabot.config.reference import shown
from qabot.config.table import BY_ENV, GROUPS
from qabot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = ROOT / ".env.example"
REFERENCE = ROOT / "docs" / "settings.md"
GENERATED = [".env.example", "docs/settings.md"]
REGENERATE = "make docs (or: .venv/bin/cog -r -I . .env.example docs/settings.md)"
# KEY=value lines, commented out (#KEY=...) or not
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", re.M)
# a variable named in the package's code, messages and docstrings (QABOT_LLM_* names a family)
VARIABLE = re.compile(r"\b(?:QABOT_[A-Z0-9_]+|TELEGRAM_[A-Z0-9_]+)")


def _assignments() -> list[tuple[str, str]]:
    return [(key, value.strip()) for key, value in ASSIGNMENT.findall(ENV_EXAMPLE.read_text(encoding="utf-8"))]


def test_the_table_and_the_settings_fields_agree_one_to_one():
    assert [s.name for s in SETTINGS] == [f.name for f in fields(Settings)], "Settings' fields, in the table's order"
    assert len(BY_ENV) == len(SETTINGS), "a variable is in the table twice"
    for setting, f in zip(SETTINGS, fields(Settings)):
        assert (f.default, f.metadata["env"], f.metadata["secret"]) == (setting.default, setting.env, setting.secret), setting.env
        assert setting.group in {g.key for g in GROUPS}, setting.env
        assert setting.help.strip() and setting.kind.accepts, setting.env
    defaults = Settings()
    assert all(getattr(defaults, s.name) == s.default for s in SETTINGS)


def test_secrets_are_secrets():
    assert {s.env for s in SETTINGS if s.secret} == {"TELEGRAM_BOT_TOKEN", "QABOT_LLM_API_KEY", "QABOT_API_KEYS"}
    for setting in (s for s in SETTINGS if s.secret):
        assert not setting.default and (isinstance(setting.default, Secret) or setting.default == ()), setting.env


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.kind.low is not None], ids=lambda s: s.env)
def test_the_bounds_in_the_table_are_the_bounds_checked(setting):
    """Each number's bounds in the table are what validation enforces: just inside passes, just outside fails."""
    kind = setting.kind
    step = 1 if "whole" in kind.accepts else 0.01
    inside = [kind.low + step if kind.above else kind.low] + ([kind.high] if kind.high is not None else [])
    outside = [kind.low if kind.above else kind.low - step] + ([kind.high + step] if kind.high is not None else [])
    for value in inside:
        assert getattr(Settings(**{setting.name: value}), setting.name) == value
    for value in outside:
        with pytest.raises(ConfigError, match=f"^{setting.env}="):
            Settings(**{setting.name: value})


def test_every_variable_the_package_names_is_a_setting():
    """A QABOT_* variable read (or named in a message) anywhere in qabot/ is a row of the table."""
    named: dict[str, str] = {}
    for path in sorted((ROOT / "qabot").rglob("*.py")):
        for name in VARIABLE.findall(path.read_text(encoding="utf-8")):
            named.setdefault(name, str(path.relative_to(ROOT)))
    assert "QABOT_INDEX" in named and "TELEGRAM_BOT_TOKEN" in named
    unknown = {name: where for name, where in named.items()
               if name not in BY_ENV and not (name.endswith("_") and any(env.startswith(name) for env in BY_ENV))}
    assert not unknown, f"variables named in qabot/ that are no setting in qabot/config/table.py: {unknown}"


def test_env_example_lists_every_setting_once_in_order_with_its_default():
    listed = _assignments()
    assert [key for key, _ in listed] == [s.env for s in SETTINGS], f".env.example is out of date: run {REGENERATE}"
    for key, value in listed:
        setting = BY_ENV[key]
        assert value == shown(setting), f"{key}: .env.example shows {value!r}, the table {shown(setting)!r}"
        if setting.secret:
            assert value == "", f"{key} is a secret: .env.example shows no value"


def test_the_values_shown_are_valid_and_are_the_defaults():
    """Uncommenting every line of .env.example keeps the defaults (the example paths and prompts aside)."""
    listed = {key: value for key, value in _assignments() if value}
    from_file = Settings.from_env(listed)
    for setting in SETTINGS:
        if setting.env in listed and setting.example is None:
            assert getattr(from_file, setting.name) == setting.default, f"{setting.env}: .env.example shows another default"


def test_the_reference_has_a_row_for_every_setting():
    rows = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| ([^|]*) \|", REFERENCE.read_text(encoding="utf-8"), re.M))
    assert list(rows) == [s.env for s in SETTINGS], f"docs/settings.md is out of date: run {REGENERATE}"
    for setting in SETTINGS:
        value = shown(setting) if setting.example is None else ""
        expected = "(secret)" if setting.secret else f"`{value}`" if value else "(unset)"
        assert rows[setting.env].strip() == expected, setting.env


@pytest.mark.parametrize("page", GENERATED)
def test_each_generated_page_is_current(page, capsys):
    from cogapp import Cog

    status = Cog().main(["cog", "--check", "-I", str(ROOT), str(ROOT / page)])
    assert status == 0, f"{page} is out of date with qabot/config/table.py: run {REGENERATE}\n{capsys.readouterr().out}"


def test_the_min_score_note_gives_the_calibrated_defaults():
    from qabot.answering.retriever import CALIBRATED_MIN_SCORE

    for page in GENERATED:
        text = (ROOT / page).read_text(encoding="utf-8")
        for model, per_language in CALIBRATED_MIN_SCORE.items():
            assert model in text
            for score in per_language.values():
                assert f"{score:.2f}" in text, f"the calibrated min score {score} of {model} is not in {page}"
