""".env.example lists every setting, and only settings, with the defaults Settings has."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from qabot.config import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
# KEY=value lines, commented out (#KEY=...) or not
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", re.M)


def _assignments() -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in ASSIGNMENT.findall(ENV_EXAMPLE.read_text(encoding="utf-8")):
        assert key not in found, f"{key} is listed twice in .env.example"
        found[key] = value.strip()
    return found


def test_env_example_and_settings_name_the_same_variables():
    listed = set(_assignments())
    settings = {f.metadata["env"] for f in fields(Settings)}
    assert listed - settings == set(), f".env.example lists variables that are no setting: {sorted(listed - settings)}"
    assert settings - listed == set(), f".env.example lacks: {sorted(settings - listed)}"


def test_the_values_shown_are_valid_and_are_the_defaults():
    """Uncommenting any line of .env.example keeps the defaults (paths aside)."""
    listed = {key: value for key, value in _assignments().items() if value}
    shown = Settings.from_env(listed)
    defaults = Settings.from_env({})
    for f in fields(Settings):
        if f.metadata["env"] in listed and f.name not in {"cache_dir", "query_prompt", "passage_prompt"}:
            assert getattr(shown, f.name) == getattr(defaults, f.name), f"{f.metadata['env']}: .env.example shows another default"


def test_the_min_score_note_gives_the_calibrated_defaults():
    from qabot.answering.retriever import CALIBRATED_MIN_SCORE

    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for model, per_language in CALIBRATED_MIN_SCORE.items():
        assert model in text
        for score in per_language.values():
            assert f"{score:.2f}" in text, f"the calibrated min score {score} of {model} is not in .env.example"
