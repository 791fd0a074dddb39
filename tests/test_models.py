"""Credentials and the frozen policy objects: masking, environment loading, validation, waits."""

from __future__ import annotations

import random
import re
from typing import Any

import attrs
import pytest

from uitpas_async.engine.config import Limits, PollPolicy, RetryPolicy, Timeouts
from uitpas_async.errors import ConfigurationError, InvalidArgumentError
from uitpas_async.xml_api.models import CREDENTIAL_VARIABLES, Credentials, mask

ENVIRONMENT = {
    "UITPAS_CONSUMER_KEY": "consumer-key-0001",
    "UITPAS_CONSUMER_SECRET": "consumer-SECRET-env-77",
    "UITPAS_TOKEN": "access-token-0002",
    "UITPAS_TOKEN_SECRET": "token-SECRET-env-88",
}


# -- credentials -----------------------------------------------------------------------


def test_credentials_repr_and_str_hide_the_secrets(credentials: Credentials) -> None:
    """repr() and str() show neither secret, and only the tail of key and token."""
    for text in (repr(credentials), str(credentials), f"{credentials}", f"{[credentials]}"):
        assert credentials.consumer_secret not in text
        assert credentials.token_secret not in text
        assert credentials.consumer_key not in text
        assert credentials.token not in text
        assert "***" in text


def test_empty_secrets_show_as_empty() -> None:
    """An empty secret is shown as empty, so a missing secret is visible in logs."""
    text = repr(Credentials("key", "", "token", ""))
    assert "consumer_secret=''" in text
    assert "token_secret=''" in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "***"), ("short", "***"), ("12345678", "***"), ("123456789", "***6789")],
)
def test_mask(value: str, expected: str) -> None:
    """mask() hides all but the last four characters, and short values entirely."""
    assert mask(value) == expected


def test_credentials_are_frozen(credentials: Credentials) -> None:
    """Credentials cannot be changed after creation."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        credentials.token_secret = "other"  # type: ignore[misc]


def test_credentials_from_env_reads_all_four() -> None:
    """from_env builds credentials from the four UITPAS_* variables."""
    credentials = Credentials.from_env(ENVIRONMENT)
    assert credentials == Credentials(
        "consumer-key-0001", "consumer-SECRET-env-77", "access-token-0002", "token-SECRET-env-88"
    )


def test_credentials_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a mapping, from_env reads the process environment."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    assert Credentials.from_env().token == "access-token-0002"


@pytest.mark.parametrize(
    "missing",
    [
        ("UITPAS_CONSUMER_KEY",),
        ("UITPAS_TOKEN_SECRET",),
        ("UITPAS_CONSUMER_SECRET", "UITPAS_TOKEN"),
        CREDENTIAL_VARIABLES,
    ],
    ids=["key", "token-secret", "two", "all"],
)
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_credentials_from_env_names_missing_variables(missing: tuple[str, ...], how: str) -> None:
    """Missing or empty variables raise ConfigurationError naming them, showing no values."""
    environ = dict(ENVIRONMENT)
    for name in missing:
        if how == "absent":
            del environ[name]
        else:
            environ[name] = ""
    with pytest.raises(ConfigurationError) as caught:
        Credentials.from_env(environ)
    text = f"{caught.value} {caught.value!r}"
    assert set(re.findall(r"UITPAS_[A-Z_]+", text)) == set(missing)
    for value in ENVIRONMENT.values():
        assert value not in text


# -- policies validate their numbers ---------------------------------------------------

POSITIVE_FIELDS = [
    (Timeouts, "connect"),
    (Timeouts, "request"),
    (Timeouts, "download"),
    (Limits, "max_concurrent_requests"),
    (Limits, "rate_limit"),
    (Limits, "max_download_bytes"),
    (RetryPolicy, "attempts"),
    (RetryPolicy, "initial_backoff"),
    (RetryPolicy, "max_backoff"),
    (RetryPolicy, "max_retry_after"),
    (PollPolicy, "initial_delay"),
    (PollPolicy, "multiplier"),
    (PollPolicy, "max_interval"),
    (PollPolicy, "timeout"),
]


@pytest.mark.parametrize(
    "bad", [0, -1, -0.5, float("nan")], ids=["zero", "minus-one", "neg", "nan"]
)
@pytest.mark.parametrize(
    ("policy", "field"), POSITIVE_FIELDS, ids=[f"{p.__name__}.{f}" for p, f in POSITIVE_FIELDS]
)
def test_policies_refuse_non_positive_numbers(policy: Any, field: str, bad: float) -> None:
    """Every numeric policy field must be positive; else InvalidArgumentError (a ValueError)."""
    with pytest.raises(InvalidArgumentError, match=field) as caught:
        policy(**{field: bad})
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("policy", [Timeouts, Limits, RetryPolicy, PollPolicy])
def test_policy_defaults_are_valid_and_frozen(policy: Any) -> None:
    """Each policy builds with its defaults and cannot be changed afterwards."""
    instance = policy()
    field = attrs.fields(policy)[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(instance, field, 1)


def test_limits_rate_limit_may_be_none() -> None:
    """No request-rate limit is the default."""
    assert Limits().rate_limit is None
    assert Limits(rate_limit=2.5).rate_limit == 2.5


def test_retry_policy_none_makes_one_attempt() -> None:
    """RetryPolicy.none() disables retries."""
    assert RetryPolicy.none().attempts == 1


# -- waits -------------------------------------------------------------------------------

SEEDS = range(20)


@pytest.mark.parametrize(
    "policy",
    [
        PollPolicy(),
        PollPolicy(initial_delay=0.5, multiplier=2.0, max_interval=10.0),
        PollPolicy(initial_delay=3.0, multiplier=1.1, max_interval=3.5),
        PollPolicy(initial_delay=1.0, multiplier=1.5, max_interval=1.0),
    ],
    ids=["default", "doubling", "slow-growth", "flat"],
)
def test_poll_delay_stays_in_its_envelope(policy: PollPolicy) -> None:
    """The first poll waits initial_delay; later ones stay within the exponential envelope."""
    for seed in SEEDS:
        rng = random.Random(seed)
        assert policy.delay(0, rng) == policy.initial_delay
        for n in range(1, 40):
            ceiling = min(policy.max_interval, policy.initial_delay * policy.multiplier**n)
            assert policy.initial_delay <= policy.delay(n, rng) <= ceiling


def test_poll_delay_without_jitter_is_the_envelope() -> None:
    """With jitter off, each wait is exactly the capped exponential."""
    policy = PollPolicy(initial_delay=2.0, multiplier=1.5, max_interval=10.0, jitter=False)
    assert [policy.delay(n) for n in range(6)] == [2.0, 3.0, 4.5, 6.75, 10.0, 10.0]


def test_poll_delay_jitter_spreads_waits() -> None:
    """Jobs polling together get different waits, so they do not poll in lockstep."""
    policy = PollPolicy()
    waits = {policy.delay(5, random.Random(seed)) for seed in SEEDS}
    assert len(waits) > 1


@pytest.mark.parametrize("n", [2_000, 10_000])
def test_poll_delay_stays_capped_on_very_long_polls(n: int) -> None:
    """A long poll with a small max_interval keeps waiting max_interval, it does not crash."""
    policy = PollPolicy(initial_delay=0.5, multiplier=1.5, max_interval=1.0, timeout=86_400)
    assert 0.5 <= policy.delay(n, random.Random(0)) <= 1.0


@pytest.mark.parametrize(
    "policy",
    [
        RetryPolicy(),
        RetryPolicy(initial_backoff=0.1, max_backoff=1.0),
        RetryPolicy(initial_backoff=5.0, max_backoff=5.0),
    ],
    ids=["default", "small", "flat"],
)
def test_retry_backoff_stays_in_its_envelope(policy: RetryPolicy) -> None:
    """The n-th retry waits within [0, min(max_backoff, initial_backoff * 2**(n-1))]."""
    for seed in SEEDS:
        rng = random.Random(seed)
        for n in range(1, 40):
            ceiling = min(policy.max_backoff, policy.initial_backoff * 2 ** (n - 1))
            assert 0 <= policy.backoff(n, rng) <= ceiling


def test_retry_backoff_uses_full_jitter() -> None:
    """Backoff waits are spread over the whole range, not bunched at the ceiling."""
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=1.0)
    waits = [policy.backoff(3, random.Random(seed)) for seed in range(200)]
    assert min(waits) < 0.25
    assert max(waits) > 0.75


def test_retry_backoff_stays_capped_for_many_attempts() -> None:
    """A policy with very many attempts still waits at most max_backoff, it does not crash."""
    policy = RetryPolicy(attempts=10_000)
    assert 0 <= policy.backoff(2_000, random.Random(0)) <= policy.max_backoff
