"""Settings come from a mapping (and .env); the token never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from qabot.config import Secret, Settings
from qabot.errors import ConfigError

TOKEN = "123456:ABC-very-secret-token"


def test_defaults():
    s = Settings.from_env({})
    assert s.index_dir == Path("index/default")
    assert s.model == "multilingual-e5-small"
    assert (s.chunk_tokens, s.chunk_overlap, s.top_k) == (200, 1, 5)
    assert not s.telegram_token and not s.allow_all and s.allowed_users == frozenset()


def test_values_are_parsed():
    s = Settings.from_env({
        "QABOT_INDEX": "/tmp/x", "QABOT_CHUNK_TOKENS": "120", "QABOT_ALLOWED_USERS": "1, 2,3",
        "QABOT_ALLOW_ALL": "yes", "QABOT_QUERY_PROMPT": "query:", "QABOT_CACHE_DIR": "/tmp/c",
    })
    assert s.index_dir == Path("/tmp/x") and s.chunk_tokens == 120
    assert s.allowed_users == frozenset({1, 2, 3}) and s.allow_all
    assert s.query_prompt == "query: "
    assert s.model_cache_dir == Path("/tmp/c")


def test_token_never_in_repr_or_str():
    s = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert s.telegram_token.get() == TOKEN
    assert TOKEN not in repr(s) and TOKEN not in str(s) and TOKEN not in f"{s.telegram_token}"
    assert "Secret('**********')" in repr(s)
    assert not Secret("")


def test_dotenv_fills_in_and_environment_wins(tmp_path):
    env = tmp_path / ".env"
    env.write_text("QABOT_TOP_K=7\nQABOT_MODEL=from-dotenv\nTELEGRAM_BOT_TOKEN=" + TOKEN + "\n")
    s = Settings.from_env({"QABOT_MODEL": "from-env"}, dotenv=env)
    assert s.top_k == 7 and s.model == "from-env" and s.telegram_token.get() == TOKEN


def test_overrides_win_and_none_is_ignored():
    s = Settings.from_env({"QABOT_TOP_K": "7"}, top_k=3, index_dir=None)
    assert s.top_k == 3 and s.index_dir == Path("index/default")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"QABOT_CHUNK_TOKENS": "lots"}, "QABOT_CHUNK_TOKENS='lots'"),
        ({"QABOT_CHUNK_TOKENS": "4"}, "at least 16"),
        ({"QABOT_ALLOW_ALL": "maybe"}, "expected true or false"),
        ({"QABOT_ALLOWED_USERS": "alice"}, "QABOT_ALLOWED_USERS"),
        ({"QABOT_TOP_K": "0"}, "QABOT_TOP_K"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
