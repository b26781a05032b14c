"""The client's pure rules: which addresses it will talk to, and how long Retry-After makes it wait."""

import time
from email.utils import formatdate

import pytest

from importconsole.lms.client import RetryPolicy, check_base_url, is_loopback, parse_retry_after
from importconsole.lms.errors import InsecureUrl


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://127.9.9.9", "http://localhost:1", "http://[::1]:80/"])
def test_plain_http_is_allowed_only_to_this_machine(url):
    assert str(check_base_url(url)).endswith("/api/v1")


@pytest.mark.parametrize("url", ["http://lms.example.org", "http://10.0.0.5:8080", "http://127.0.0.1.nip.io"])
def test_plain_http_elsewhere_is_refused_with_what_to_do(url):
    with pytest.raises(InsecureUrl) as err:
        check_base_url(url)
    assert "https://" in str(err.value) and "unencrypted" in str(err.value)


def test_other_schemes_and_credentials_in_the_url_are_refused():
    with pytest.raises(InsecureUrl, match="must start with https://"):
        check_base_url("ftp://lms.example.org")
    with pytest.raises(InsecureUrl, match="no user name or password"):
        check_base_url("https://admin:hunter2@lms.example.org")


def test_the_api_prefix_is_added_once():
    assert str(check_base_url("https://lms.example.org/")) == "https://lms.example.org/api/v1"
    assert str(check_base_url("https://lms.example.org/api/v1/")) == "https://lms.example.org/api/v1"
    assert str(check_base_url("https://lms.example.org/ce")) == "https://lms.example.org/ce/api/v1"


def test_loopback_names():
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("localhost.example.org") and not is_loopback("192.168.1.1")


def test_retry_after_seconds_dates_and_garbage():
    assert parse_retry_after("3", cap=60) == 3
    assert parse_retry_after("0.5", cap=60) == 0.5
    assert parse_retry_after("9999", cap=60) == 60  # clamped
    assert parse_retry_after("-5", cap=60) == 0
    now = time.time()
    assert 9 <= parse_retry_after(formatdate(now + 10, usegmt=True), cap=60, now=now) <= 11
    assert parse_retry_after(formatdate(now - 100, usegmt=True), cap=60, now=now) == 0
    for garbage in ("soon", "", "nan", None, "Mon, 99 Foo 2026"):
        assert parse_retry_after(garbage, cap=60) is None


def test_backoff_is_capped_full_jitter():
    policy = RetryPolicy(base=0.5, cap=4, random=lambda: 1.0)
    assert [policy.backoff(n) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert RetryPolicy(random=lambda: 0.0).backoff(5) == 0
    assert RetryPolicy(random=lambda: 1.0, retry_after_cap=30).delay(0, "garbage") == 0.5
    assert RetryPolicy(retry_after_cap=30).delay(0, "120") == 30


from hypothesis import given, strategies as st


@given(st.text(max_size=40), st.floats(min_value=0, max_value=3600))
def test_retry_after_never_raises_and_stays_clamped(value, cap):
    waited = parse_retry_after(value, cap)
    assert waited is None or 0 <= waited <= cap


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=1))
def test_backoff_never_exceeds_the_cap(attempt, jitter):
    assert 0 <= RetryPolicy(base=0.5, cap=10, random=lambda: jitter).backoff(attempt) <= 10


def test_a_client_registers_its_token_for_crash_reports():
    from importconsole import crash
    from importconsole.lms.client import LmsClient

    LmsClient("https://lms.example.org", "tok-only-in-a-client-93c1")
    assert crash.redact("boom tok-only-in-a-client-93c1") == "boom [token hidden]"
