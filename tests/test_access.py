"""Allowlist, rate limiter, expiring result store and token redaction, with a fake clock."""

from __future__ import annotations

import logging
import threading

import pytest

from qabot.config import Settings
from qabot.frontends.access import (
    AccessPolicy,
    Admission,
    RateLimiter,
    RedactingFilter,
    ResultStore,
    protect_logs,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_access_is_denied_by_default():
    policy = AccessPolicy.from_settings(Settings.from_env({}))
    assert not policy.allows(1, 1)
    assert not policy.allows(None, None)


def test_listed_users_and_listed_chats_may_ask():
    policy = AccessPolicy.from_settings(Settings.from_env({"QABOT_ALLOWED_USERS": "7, 8", "QABOT_ALLOWED_CHATS": "-100"}))
    assert policy.allows(7, 7) and policy.allows(8, -5)
    assert policy.allows(9, -100)  # anyone in a listed group
    assert not policy.allows(9, 9) and not policy.allows(None, -100)


def test_allow_all_opens_the_bot():
    assert AccessPolicy(allow_all=True).allows(123, 456)


def test_a_burst_is_allowed_then_the_bucket_refills_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(6, 3, clock=clock)  # one token every 10 s
    assert [limiter.try_acquire(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire(1) == pytest.approx(10.0)
    clock.now += 4
    assert limiter.try_acquire(1) == pytest.approx(6.0)
    clock.now += 6
    assert limiter.try_acquire(1) == 0.0
    assert limiter.try_acquire(1) > 0


def test_users_have_their_own_buckets():
    limiter = RateLimiter(1, 1, clock=Clock())
    assert limiter.try_acquire(1) == 0.0 and limiter.try_acquire(1) > 0
    assert limiter.try_acquire(2) == 0.0


def test_a_flood_is_told_once_then_nothing_until_the_window_opens():
    clock = Clock()
    limiter = RateLimiter(6, 2, clock=clock)  # one token every 10 s
    assert [limiter.admit(1) for _ in range(2)] == [Admission(), Admission()]
    told = limiter.admit(1)
    assert not told.allowed and told.tell and told.wait == pytest.approx(10.0)
    quiet = [limiter.admit(1) for _ in range(47)]
    assert not any(a.allowed or a.tell for a in quiet)
    clock.now += 4
    assert limiter.admit(1) == Admission(wait=pytest.approx(6.0), tell=False)  # still the same window
    clock.now += 6
    assert limiter.admit(1).allowed  # the window opened and was used...
    again = limiter.admit(1)
    assert not again.allowed and again.tell  # ...so the next flood is told once again
    assert not limiter.admit(1).tell


def test_being_told_is_per_user():
    limiter = RateLimiter(1, 1, clock=Clock())
    assert limiter.admit(1).allowed and limiter.admit(1).tell and not limiter.admit(1).tell
    assert limiter.admit(2).allowed and limiter.admit(2).tell
    assert limiter.try_acquire(1) > 0  # try_acquire (the HTTP API's) shares the buckets


def test_a_told_user_whose_bucket_filled_up_is_forgotten_with_it():
    clock = Clock()
    limiter = RateLimiter(60, 1, clock=clock, max_keys=2)
    limiter.admit(1)
    assert limiter.admit(1).tell
    clock.now += 5  # user 1's bucket is full again: nothing left to remember about them
    limiter.admit(2)
    limiter.admit(3)
    assert 1 not in limiter._buckets and len(limiter._buckets) == 2
    assert limiter.admit(1).allowed and limiter.admit(1).tell


def test_admit_is_atomic_across_threads():
    limiter = RateLimiter(1, 5, clock=Clock())  # a frozen clock: no refill during the run
    results: list[Admission] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [limiter.admit(1) for _ in range(500)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(a.allowed for a in results) == 5 and sum(a.tell for a in results) == 1


def test_the_limiter_forgets_full_buckets_when_it_has_too_many():
    clock = Clock()
    limiter = RateLimiter(60, 1, clock=clock, max_keys=10)
    for user in range(10):
        limiter.try_acquire(user)
    clock.now += 5  # all refilled
    limiter.try_acquire(99)
    assert len(limiter._buckets) == 1
    for user in range(100, 120):  # all busy: the oldest go
        limiter.try_acquire(user)
    assert len(limiter._buckets) == 10
    with pytest.raises(ValueError):
        RateLimiter(0, 1)


def test_results_live_under_short_ids_until_they_expire():
    clock = Clock()
    store: ResultStore[str] = ResultStore(ttl=60, clock=clock)
    key = store.put("answer")
    assert len(key) == 8 and len(f"more:{key}".encode()) <= 64
    assert store.get(key) == "answer"
    assert store.get("nope") is None
    clock.now += 61
    assert store.get(key) is None
    assert len(store) == 0


def test_the_result_store_is_bounded_and_evicts_expired_ones_first():
    clock = Clock()
    store: ResultStore[int] = ResultStore(ttl=10, max_items=3, clock=clock)
    keys = [store.put(i) for i in range(5)]
    assert len(store) == 3 and store.get(keys[0]) is None and store.get(keys[4]) == 4
    clock.now += 11
    store.put(99)
    assert len(store) == 1


def test_the_redacting_filter_hides_the_secret_in_messages_and_tracebacks(caplog):
    secret = "123:SECRET"
    logger = logging.getLogger("qabot.test_access")
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactingFilter(secret))
    logger.info("calling %s/getMe", f"http://x/bot{secret}")
    try:
        raise RuntimeError(f"failed at /bot{secret}/sendMessage")
    except RuntimeError:
        logger.exception("boom")
    assert secret not in caplog.text
    assert "http://x/bot***/getMe" in caplog.text and "bot***/sendMessage" in caplog.text


def test_protect_logs_silences_http_loggers_and_redacts_once():
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    try:
        protect_logs("123:SECRET")
        protect_logs("123:SECRET")
        assert [type(f) for f in handler.filters] == [RedactingFilter]
        assert logging.getLogger("httpx").level == logging.WARNING
        assert logging.getLogger("telegram").level == logging.INFO
    finally:
        root.removeHandler(handler)
