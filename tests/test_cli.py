"""The command line: every command has help; JSON shapes; errors are one line and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from qabot.frontends.cli import cli

from .conftest import LANDING_SENTENCE
from .tiny_models import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


ALL_COMMANDS = _commands(cli)


def test_the_commands_the_readme_promises_exist():
    names = {c[0] for c in ALL_COMMANDS}
    assert {"index", "ask", "search", "chat", "check", "stats", "model", "run", "bot"} <= names


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    help_text = result.output.split("\n\n", 1)[1].strip()
    assert len(help_text) > 20


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny real sentence-transformers folder: the CLI loads it like any QABOT_MODEL folder."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-model")


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """A clean working directory (no .env) and no QABOT_/TELEGRAM_ variables from the caller."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("QABOT_") or key == "TELEGRAM_BOT_TOKEN":
            monkeypatch.delenv(key)
    monkeypatch.setenv("QABOT_INDEX", str(tmp_path / "ix"))
    monkeypatch.setenv("QABOT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def env(clean_env, tiny_model, monkeypatch):
    """``clean_env`` with the tiny real model as QABOT_MODEL."""
    monkeypatch.setenv("QABOT_MODEL", str(tiny_model))
    return clean_env


def _run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_index_json_summary_then_ask_and_search_json(env):
    result = _run("index", "--sample", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert {"articles_read", "articles_indexed", "articles_skipped", "chunks_embedded", "errors"} <= set(summary)
    assert (summary["articles_read"], summary["articles_indexed"], summary["errors"]) == (1, 1, [])

    ask = _run("ask", "Wann landet Putin in Alaska?", "--json")
    assert ask.exit_code == 0, ask.output
    data = json.loads(ask.output)
    assert {"question", "sentence", "passages"} <= set(data)
    assert data["question"] == "Wann landet Putin in Alaska?"
    assert {"article_id", "title", "date", "url", "text", "score"} <= set(data["passages"][0])

    search = _run("search", "Putin", "-k", "2", "--json")
    assert search.exit_code == 0
    assert len(json.loads(search.output)["passages"]) == 2


def test_index_if_missing_does_nothing_the_second_time(env):
    assert _run("index", "--sample").exit_code == 0
    again = _run("index", "--sample", "--if-missing")
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_reports_bad_inputs_and_indexes_the_rest(env):
    archive = Path(__file__).parent / "data" / "archive"
    result = _run("index", str(archive), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["articles_indexed"] >= 3
    assert summary["errors"], "the bad fixtures must be reported"
    for error in summary["errors"]:
        assert error["path"] and error["reason"]
        assert str(archive) in error["path"] or not os.path.isabs(error["path"])


def test_index_fail_on_problems_exits_2_when_input_was_skipped_and_a_rerun_embeds_nothing(env):
    """What an operator's cron job needs (scripts/build_index.py had it): a non-zero exit it can alert on."""
    archive = Path(__file__).parent / "data" / "archive"
    bad = _run("index", str(archive / "bad"), "--fail-on-problems")
    assert bad.exit_code == 2 and "empty.txt" in bad.stderr
    first = _run("index", str(archive / "seed"), "--json", "--fail-on-problems")
    assert first.exit_code == 0, first.output
    indexed = json.loads(first.stdout)["articles_indexed"]
    again = json.loads(_run("index", str(archive / "seed"), "--json").stdout)
    assert indexed > 0 and (again["articles_indexed"], again["chunks_embedded"], again["articles_unchanged"]) == (0, 0, indexed)
    missing = _run("index", str(env / "nope"), "--fail-on-problems")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ") and "nope" in missing.stderr


def test_ask_without_an_index_is_one_clear_line(env):
    result = CliRunner().invoke(cli, ["ask", "anything"])
    assert result.exit_code == 1
    assert result.output.startswith("error: no index at")
    assert len(result.output.strip().splitlines()) == 1


def test_empty_question_is_one_clear_line(env):
    _run("index", "--sample")
    result = CliRunner().invoke(cli, ["ask", "   "])
    assert result.exit_code == 1 and "empty" in result.output


def test_chat_reads_questions_from_stdin(env):
    _run("index", "--sample")
    result = _run("chat", input="Wann landet Putin in Alaska?\n\n   \nWer ist Lukaschenko?\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("? ") >= 2 and "Sources:" in result.output


def test_check_and_stats_json(env):
    _run("index", "--sample")
    check = _run("check", "--json")
    assert check.exit_code == 0 and json.loads(check.output)["ok"] is True, check.output
    stats = json.loads(_run("stats", "--json").output)
    assert {"articles": 1, "vectors": stats["chunks"]}.items() <= stats.items()
    assert stats["first_date"] == "2025-08-15" and stats["model"] == "tiny-model"


def test_changing_the_model_of_an_index_is_refused(env, monkeypatch):
    _run("index", "--sample")
    monkeypatch.setenv("QABOT_CHUNK_TOKENS", "120")
    result = CliRunner().invoke(cli, ["index", "--sample"])
    assert result.exit_code == 1 and "chunk_tokens 200 (requested 120)" in result.output


@pytest.mark.model
def test_python_m_qabot_ask_with_the_real_model(sample_index, model_cache_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update({"QABOT_CACHE_DIR": str(model_cache_dir), "HF_HUB_OFFLINE": "1"})
    proc = subprocess.run(
        [sys.executable, "-m", "qabot", "ask", "When does Putin land in Alaska?", "--index", str(sample_index), "--json"],
        check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["sentence"] == LANDING_SENTENCE
    assert data["passages"][data["citation"]]["date"] == "2025-08-15"


def test_ask_and_search_take_since_and_until(env):
    _run("index", "--sample")
    inside = json.loads(_run("search", "Putin", "--since", "2025-08-01", "--until", "2025-08-31", "--json").output)
    assert inside["passages"]
    outside = json.loads(_run("ask", "Putin", "--since", "2026-01-01", "--json").output)
    assert any("searched all dates" in note for note in outside["notes"])
    bad = CliRunner().invoke(cli, ["ask", "Putin", "--since", "15.08.2025"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


# -- a bad setting is one line and exit 1, from every command -----------------------------------------------

# each command with arguments that get it as far as reading the settings
SETTINGS_COMMANDS = [
    ("index", "--sample"), ("ask", "anything"), ("search", "anything"), ("chat",), ("run",), ("bot",),
    ("delete", "art-1"), ("check",), ("stats",), ("serve",), ("model", "install"), ("copy", "index/a", "index/b"),
    ("follow", "http://127.0.0.1:9/feed.xml", "--archive", "archive", "--once"),
]


def test_settings_commands_cover_every_command():
    assert {c[0] for c in SETTINGS_COMMANDS} == {c[0] for c in ALL_COMMANDS if c[0] != "model"} | {"model"}
    assert {c for c in ALL_COMMANDS if len(c) > 1} == {("model", "install")}


def _one_error_line(result, starts: str) -> None:
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), f"not translated at the edge: {result.exception!r}"
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(starts), result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", SETTINGS_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("variable, value", [("QABOT_TOP_K", "abc"), ("QABOT_LOG_LEVEL", "loud"),
                                             ("QABOT_DEVICE", "gpu"), ("QABOT_MIN_SCORE", "2")])
def test_a_bad_setting_is_one_line_from_every_command(clean_env, monkeypatch, command, variable, value):
    monkeypatch.setenv(variable, value)
    _one_error_line(CliRunner().invoke(cli, list(command), input=""), f"error: {variable}")


def test_make_run_with_a_bad_top_k_is_one_line(clean_env, monkeypatch):
    """`make run` is `qabot run`: a typo in QABOT_TOP_K is one line, not a traceback."""
    monkeypatch.setenv("QABOT_TOP_K", "abc")
    result = CliRunner().invoke(cli, ["run"], input="")
    _one_error_line(result, "error: QABOT_TOP_K='abc'")
    assert "whole number" in result.output


def test_a_bad_setting_in_dotenv_is_one_line(clean_env):
    (clean_env / ".env").write_text("QABOT_LOG_LEVEL=loud\n")
    _one_error_line(CliRunner().invoke(cli, ["stats"]), "error: QABOT_LOG_LEVEL='loud': must be one of DEBUG")


def test_a_bad_log_level_option_is_a_usage_error(clean_env):
    result = CliRunner().invoke(cli, ["--log-level", "loud", "stats"])
    assert result.exit_code == 2 and "Invalid value for '--log-level'" in result.output
    assert "Traceback" not in result.output
    ok = CliRunner().invoke(cli, ["--log-level", "debug", "stats", "--help"])
    assert ok.exit_code == 0, ok.output


def test_python_m_qabot_run_with_a_bad_top_k_is_one_line(clean_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_") and k != "TELEGRAM_BOT_TOKEN"}
    env.update({"QABOT_TOP_K": "abc", "QABOT_INDEX": str(clean_env / "ix"), "PYTHONPATH": str(ROOT)})
    proc = subprocess.run([sys.executable, "-m", "qabot", "run"], check=False, capture_output=True, text=True,
                          env=env, cwd=clean_env, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == ["error: QABOT_TOP_K='abc': expected a whole number"], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_qabot_model_hash_test_is_refused(clean_env, monkeypatch):
    """QABOT_MODEL=hash-test must not put the test fake behind a real index."""
    monkeypatch.setenv("QABOT_MODEL", "hash-test")
    _one_error_line(CliRunner().invoke(cli, ["index", "--sample"]), "error: 'hash-test' is the test fake")
    assert not (clean_env / "ix").exists()
