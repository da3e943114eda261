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


# One bad value for every setting that can have one; the message names the variable.
BAD_VALUES = {
    "QABOT_QUERY_PROMPT": "query:\tx", "QABOT_PASSAGE_PROMPT": "passage:\x01", "QABOT_DEVICE": "gpu",
    "QABOT_PRECISION": "int8", "QABOT_CHUNK_TOKENS": "4", "QABOT_CHUNK_OVERLAP": "-1", "QABOT_BATCH_SIZE": "0",
    "QABOT_CHECKPOINT_SECONDS": "nan", "QABOT_MAX_ARTICLE_BYTES": "0", "QABOT_TOP_K": "abc", "QABOT_MIN_SCORE": "1.5", "QABOT_LOG_LEVEL": "loud",
    "TELEGRAM_BOT_TOKEN": "not a token", "QABOT_TELEGRAM_API_URL": "ftp://example.org/bot",
    "QABOT_ALLOWED_USERS": "alice", "QABOT_ALLOWED_CHATS": "-100,x", "QABOT_ALLOW_ALL": "maybe",
    "QABOT_RATE_PER_MINUTE": "inf", "QABOT_RATE_BURST": "0", "QABOT_MAX_QUESTION_CHARS": "5",
    "QABOT_LOG_MESSAGES": "perhaps", "QABOT_SENTENCE_LEG": "sometimes", "QABOT_HYBRID": "mostly",
    "QABOT_RERANKER": "bge\x01", "QABOT_RERANK_POOL": "1000", "QABOT_RERANK_SENTENCES": "-1", "QABOT_RERANKER_DEVICE": "gpu", "QABOT_READER": "deepset/\x02",
    "QABOT_READER_DEVICE": "tpu", "QABOT_LLM_URL": "localhost:11434", "QABOT_LLM_MODEL": "llama\x7f\x00",
    "QABOT_LLM_TIMEOUT": "0", "QABOT_API_KEYS": "short", "QABOT_API_RATE_PER_MINUTE": "-1",
    "QABOT_API_RATE_BURST": "0", "QABOT_API_HOSTS": "qabot.lan:8000", "QABOT_PG_POOL": "0", "QABOT_PG_TIMEOUT": "-5",
    "QABOT_FOLLOW_CONTACT": "ops (at) example.org", "QABOT_FOLLOW_HOSTS": "https://cdn.example.org",
    "QABOT_INDEX": "postgresql://qabot:hunter2@db.example.org:5432/",  # a URL without a database
}
# Any value of these is a valid path or model name (a blank one means the default).
ANY_VALUE = {"QABOT_CACHE_DIR", "QABOT_MODEL", "QABOT_LLM_API_KEY"}


def test_an_index_url_is_a_postgres_location_and_never_shows_its_password():
    from qabot.locations import PgUrl

    s = Settings.from_env({"QABOT_INDEX": "postgresql://qabot:hunter2@db.example.org:5432/news"})
    assert isinstance(s.index_dir, PgUrl) and s.index_dir.dsn.endswith("@db.example.org:5432/news")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.index_dir) and "qabot:***@db.example.org" in repr(s)
    assert Settings.load(index_dir="postgres://u:pw@h/db").index_dir == PgUrl("postgres://u:pw@h/db")
    assert Settings.from_env({"QABOT_INDEX": "~/news-index"}).index_dir == Path("~/news-index").expanduser()
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"QABOT_INDEX": "postgresql://qabot:hunter2@db.example.org:5432/"})
    assert "hunter2" not in str(info.value) and "no database" in str(info.value)


def test_every_setting_has_a_bad_value_case():
    from dataclasses import fields

    assert set(BAD_VALUES) | ANY_VALUE == {f.metadata["env"] for f in fields(Settings)}


@pytest.mark.parametrize("variable", sorted(BAD_VALUES))
def test_every_setting_is_validated(variable):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({variable: BAD_VALUES[variable]})
    message = str(info.value)
    assert message.startswith(f"{variable}="), message
    if variable in {"TELEGRAM_BOT_TOKEN", "QABOT_API_KEYS"}:
        assert BAD_VALUES[variable] not in message


@pytest.mark.parametrize("variable, value, good", [
    ("QABOT_TOP_K", "0", False), ("QABOT_TOP_K", "100", True), ("QABOT_TOP_K", "101", False),
    ("QABOT_MIN_SCORE", "-1", True), ("QABOT_MIN_SCORE", "1", True), ("QABOT_MIN_SCORE", "-1.01", False),
    ("QABOT_MIN_SCORE", "nan", False), ("QABOT_CHECKPOINT_SECONDS", "0", True), ("QABOT_CHECKPOINT_SECONDS", "-1", False),
    ("QABOT_DEVICE", "cuda", True), ("QABOT_DEVICE", "cuda:1", True), ("QABOT_DEVICE", "MPS", True),
    ("QABOT_DEVICE", "cuda:x", False), ("QABOT_DEVICE", "tpu", False),
    ("QABOT_TELEGRAM_API_URL", "http://127.0.0.1:8081/bot", True), ("QABOT_TELEGRAM_API_URL", "api.telegram.org", False),
    ("QABOT_TELEGRAM_API_URL", "https:///bot", False), ("QABOT_RATE_PER_MINUTE", "0.5", True),
    ("QABOT_RATE_PER_MINUTE", "0", False),
])
def test_limits(variable, value, good):
    if good:
        Settings.from_env({variable: value})
    else:
        with pytest.raises(ConfigError, match=variable):
            Settings.from_env({variable: value})


def test_log_level_and_device_are_case_insensitive():
    s = Settings.from_env({"QABOT_LOG_LEVEL": "info", "QABOT_DEVICE": " CUDA:0 ", "QABOT_PRECISION": "BF16"})
    assert (s.log_level, s.device, s.precision) == ("INFO", "cuda:0", "bf16")


def test_settings_built_in_python_are_validated_too():
    with pytest.raises(ConfigError, match="QABOT_QUERY_PROMPT"):
        Settings(query_prompt="  ")
    with pytest.raises(ConfigError, match="QABOT_MODEL"):
        Settings(model="")
    with pytest.raises(ConfigError, match="QABOT_TOP_K"):
        Settings(top_k=True)
    assert Settings(telegram_token="123:abc").telegram_token == Secret("123:abc")  # a str is hidden too


def test_llm_and_api_keys_are_secrets():
    key = "sk-very-secret-llm-key-123456"
    api = ["first-api-key-0123456789", "second-api-key-9876543210"]
    s = Settings.from_env({"QABOT_LLM_API_KEY": key, "QABOT_API_KEYS": " , ".join(api)})
    assert s.llm_api_key.get() == key and [k.get() for k in s.api_keys] == api
    shown = repr(s) + str(s)
    assert key not in shown and not any(k in shown for k in api)
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"QABOT_API_KEYS": "good-long-api-key-0001,oops"})
    assert "good-long-api-key-0001" not in str(info.value) and "oops" not in str(info.value)
    assert Settings(api_keys="key-from-python-0000001").api_keys == (Secret("key-from-python-0000001"),)


@pytest.mark.parametrize("variable", ["QABOT_LLM_URL", "QABOT_TELEGRAM_API_URL"])
def test_credentials_in_a_url_setting_never_show(variable):
    """http://user:password@host/... (a proxy with basic auth): not in repr, str or an error message."""
    user, password = "proxy-user-4711", "proxy-pass-s3cr3t"
    s = Settings.from_env({variable: f"https://{user}:{password}@llm.example.org/v1"})
    shown = repr(s) + str(s)
    assert user not in shown and password not in shown and "https://***@llm.example.org/v1" in shown
    with pytest.raises(ConfigError) as info:
        Settings.from_env({variable: f"ftp://{user}:{password}@llm.example.org/v1"})
    message = str(info.value)
    assert message.startswith(f"{variable}=") and user not in message and password not in message, message


def test_api_hosts_are_spelled_as_a_host_header_spells_them():
    s = Settings.from_env({"QABOT_API_HOSTS": " Qabot.Example.org., 192.168.1.5 ,fd00::5, [FD00::6],"})
    assert s.api_hosts == ("qabot.example.org", "192.168.1.5", "[fd00::5]", "[fd00::6]")
    assert Settings(api_hosts="qabot.lan").api_hosts == ("qabot.lan",) and Settings().api_hosts == ()
    for bad in ("http://qabot.lan", "qabot.lan:8000", "qabot.lan/api", "*", "*.example.org", "qa bot", "[fd00::zz]"):
        with pytest.raises(ConfigError, match=r"^QABOT_API_HOSTS=.*not a host name or IP address"):
            Settings.from_env({"QABOT_API_HOSTS": f"ok.example.org,{bad}"})
