"""Fault injection: deterministic (seeded) errors, 429s, timeouts, lost responses and latency.

Stripe only: ``saved_error`` (a 500 of an executing request, saved for its idempotency key and
replayed to it, as Stripe does) and ``error_after_work`` (the same after doing the work); and
:class:`DocumentedLimits`, Stripe's documented rate limits, enforced on request.

Each target (``mirakl``, ``stripe``) has its own seeded random stream, so the same sequence of
calls to one API meets the same faults whatever the other API does. Targeted ``rules`` come first
and are consumed: ``{"target": "stripe", "method": "POST", "path": "/v1/transfers", "times": 1,
"action": "lost_response"}`` hits exactly the next matching call; a Stripe rule may also name an
``idempotency_key`` (exact, or a prefix with a trailing ``*``) to hit the calls of one item only.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mirakl_connector.stripe import limits as stripe_limits

ACTIONS = ("error", "rate_limit", "timeout", "lost_response", "saved_error", "error_after_work")
TARGETS = ("mirakl", "stripe", "hyperwallet")
_RATE_KEYS = {
    "error_rate": "error",
    "rate_limit_rate": "rate_limit",
    "timeout_rate": "timeout",
    "lost_response_rate": "lost_response",
    "saved_error_rate": "saved_error",
    "error_after_work_rate": "error_after_work",
}
#: actions that only the Stripe API simulates (they involve its idempotency layer)
STRIPE_ONLY = ("saved_error", "error_after_work")


class FaultConfigError(ValueError):
    """A fault configuration the sandbox refuses (names the bad key)."""


class TokenBucket:
    """A classic token bucket: ``rate`` tokens per second, holding at most ``capacity`` (default
    one second's worth, at least 1)."""

    def __init__(
        self,
        rate: float,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        capacity: float | None = None,
    ) -> None:
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate if capacity is None else float(capacity))
        self._tokens = self.capacity
        self._monotonic = monotonic
        self._last = monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Consume one token; ``False`` when the bucket is empty (the caller answers 429)."""
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class DocumentedLimits:
    """Stripe's documented rate limits, enforced: every row of
    :data:`mirakl_connector.stripe.limits.LIMITS`.

    Per API key (the platform's: requests for a connected account count against it), a token
    bucket for the global limit, one per endpoint, one per shared resource (Files reads, Files
    writes, Search) and one per object with a limit of its own (a PaymentIntent's updates per
    hour). Each holds one window of its figure (Stripe does not publish its burst; a smaller
    bucket would refuse traffic that keeps to the figure). A request must pass its endpoint's
    bucket, then its resource's or object's, then the global one; a token taken before a later
    bucket refuses stays taken, as the docs are silent on whether a refused request counts (the
    stricter choice).

    :param mode: ``live`` or ``test`` for every key; ``None``: each key's own mode, from its
        prefix (``sk_live_``/``rk_live_`` live, anything else test).
    """

    def __init__(
        self, monotonic: Callable[[], float] = time.monotonic, mode: str | None = None
    ) -> None:
        self._monotonic = monotonic
        self.mode = None if mode is None else stripe_limits.check_mode(mode)
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(
        self, key: tuple[str, ...], row: stripe_limits.StripeLimit, mode: str
    ) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(
                    row.rate(mode), self._monotonic, capacity=row.requests(mode)
                )
            return bucket

    def refuse(self, api_key: str, method: str, path: str, endpoint: str) -> str | None:
        """``None`` when the request may go, else the name of the limit it hit (``endpoint``,
        ``global``, or a row's name such as ``files_write``)."""
        mode = self.mode or stripe_limits.key_mode(api_key)
        checks: list[tuple[tuple[str, ...], stripe_limits.StripeLimit]] = [
            ((api_key, "endpoint", endpoint), stripe_limits.ENDPOINT_DEFAULT)
        ]
        for row in stripe_limits.extra_limits(method, path):
            if row.scope == stripe_limits.OBJECT:
                checks.append(((api_key, row.name, row.object_id(path)), row))
            else:
                checks.append(((api_key, row.name), row))
        checks.append(((api_key, "global"), stripe_limits.GLOBAL))
        for key, row in checks:
            if not self._bucket(key, row, mode).take():
                return row.name
        return None


@dataclass
class TargetFaults:
    """Fault settings of one API."""

    rates: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    timeout_seconds: float = 35.0
    retry_after_seconds: int = 1
    rate_limit_per_second: float | None = None
    bucket: TokenBucket | None = None
    documented_limits: DocumentedLimits | None = None  # Stripe only

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: self.rates.get(a, 0.0) for key, a in _RATE_KEYS.items()}
        out.update(
            latency_ms=self.latency_ms,
            timeout_seconds=self.timeout_seconds,
            retry_after_seconds=self.retry_after_seconds,
            rate_limit_per_second=self.rate_limit_per_second,
            documented_rate_limits=_documented_setting(self.documented_limits),
        )
        return out


class FaultInjector:
    """Decides, per call, whether to misbehave.

    :param seed: seed of the random streams (re-seeded by every ``configure``).
    :param stripe_rate_limit: default Stripe requests/second (``None`` = unlimited).
    :param latency_ms: default latency for both APIs.
    :param stripe_documented_limits: enforce Stripe's documented limits (:class:`DocumentedLimits`):
        ``True`` in each key's mode, ``"live"``/``"test"`` in that mode for every key.
    """

    def __init__(
        self,
        seed: int = 0,
        stripe_rate_limit: float | None = None,
        latency_ms: float = 0.0,
        *,
        stripe_documented_limits: bool | str = False,
    ) -> None:
        self._lock = threading.Lock()
        self._defaults = (seed, stripe_rate_limit, latency_ms, stripe_documented_limits)
        self.clear()

    def clear(self) -> None:
        """Back to the defaults given at start-up (no faults)."""
        seed, stripe_rate_limit, latency_ms, documented = self._defaults
        with self._lock:
            self.seed = seed
            self.targets = {t: TargetFaults(latency_ms=latency_ms) for t in TARGETS}
            if stripe_rate_limit:
                self._set_rate_limit(self.targets["stripe"], stripe_rate_limit)
            self.targets["stripe"].documented_limits = _documented_limits(documented)
            self.rules: list[dict[str, Any]] = []
            self._rngs = {t: random.Random(f"{seed}:{t}") for t in TARGETS}

    def configure(self, config: dict[str, Any]) -> dict[str, Any]:
        """Apply a ``PUT /_sandbox/faults`` body (replaces the previous configuration)."""
        if not isinstance(config, dict):
            raise FaultConfigError("faults configuration must be a JSON object")
        self.clear()
        with self._lock:
            if "seed" in config:
                self.seed = int(config["seed"])
                self._rngs = {t: random.Random(f"{self.seed}:{t}") for t in TARGETS}
            for target in TARGETS:
                self._configure_target(target, config.get(target) or {})
            rules = config.get("rules") or []
            if not isinstance(rules, list):
                raise FaultConfigError("faults.rules must be a list")
            for index, rule in enumerate(rules):
                self.rules.append(_check_rule(rule, index))
        return self.describe()

    def _configure_target(self, target: str, cfg: dict[str, Any]) -> None:
        if not isinstance(cfg, dict):
            raise FaultConfigError(f"faults.{target} must be an object")
        faults = self.targets[target]
        for key, value in cfg.items():
            if key in _RATE_KEYS:
                rate = float(value)
                if not 0.0 <= rate <= 1.0:
                    raise FaultConfigError(f"faults.{target}.{key} must be between 0 and 1")
                faults.rates[_RATE_KEYS[key]] = rate
            elif key == "latency_ms":
                faults.latency_ms = float(value)
            elif key == "timeout_seconds":
                faults.timeout_seconds = float(value)
            elif key == "retry_after_seconds":
                faults.retry_after_seconds = int(value)
            elif key == "rate_limit_per_second":
                self._set_rate_limit(faults, value)
            elif key == "documented_rate_limits" and target == "stripe":
                if not isinstance(value, bool) and value not in stripe_limits.MODES:
                    raise FaultConfigError(
                        f"faults.{target}.{key} must be true (each key's mode), false, "
                        '"live" or "test"'
                    )
                faults.documented_limits = _documented_limits(value)
            else:
                raise FaultConfigError(f"faults.{target}.{key} is not a known setting")
        if sum(faults.rates.values()) > 1.0:
            raise FaultConfigError(f"faults.{target}: the rates add up to more than 1")

    @staticmethod
    def _set_rate_limit(faults: TargetFaults, value: Any) -> None:
        if value in (None, 0, "0"):
            faults.rate_limit_per_second = None
            faults.bucket = None
        else:
            faults.rate_limit_per_second = float(value)
            faults.bucket = TokenBucket(float(value))

    def describe(self) -> dict[str, Any]:
        """The configuration as JSON (``GET /_sandbox/faults``)."""
        with self._lock:
            out: dict[str, Any] = {"seed": self.seed, "rules": [dict(r) for r in self.rules]}
            for target, faults in self.targets.items():
                out[target] = faults.as_dict()
            return out

    def settings(self, target: str) -> TargetFaults:
        return self.targets[target]

    def over_rate_limit(self, target: str) -> bool:
        """``True`` when the token bucket of ``target`` is empty."""
        bucket = self.targets[target].bucket
        return bucket is not None and not bucket.take()

    def over_documented_limit(
        self, api_key: str, method: str, path: str, endpoint: str
    ) -> str | None:
        """Which of Stripe's documented limits this call exceeds (``None``: none, or off)."""
        limits = self.targets["stripe"].documented_limits
        return limits.refuse(api_key, method, path, endpoint) if limits else None

    def decide(
        self, target: str, method: str, path: str, idempotency_key: str | None = None
    ) -> str | None:
        """The fault action for this call, or ``None`` to behave."""
        with self._lock:
            for rule in self.rules:
                if _rule_matches(rule, target, method, path, idempotency_key):
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self.rules.remove(rule)
                    return rule["action"]
            rates = self.targets[target].rates
            if not any(rates.values()):
                return None
            draw = self._rngs[target].random()
            threshold = 0.0
            for action in ACTIONS:
                if target == "mirakl" and action == "lost_response":
                    continue
                if target != "stripe" and action in STRIPE_ONLY:
                    continue
                threshold += rates.get(action, 0.0)
                if draw < threshold:
                    return action
            return None


def _documented_limits(setting: bool | str) -> DocumentedLimits | None:
    """The limiter for a ``documented_rate_limits`` setting (``None`` when off)."""
    if setting is False or setting is None:
        return None
    return DocumentedLimits(mode=None if setting is True else setting)


def _documented_setting(limits: DocumentedLimits | None) -> bool | str:
    """The ``documented_rate_limits`` setting that builds ``limits`` (its JSON form)."""
    if limits is None:
        return False
    return limits.mode or True


def _check_rule(rule: Any, index: int) -> dict[str, Any]:
    where = f"faults.rules[{index}]"
    if not isinstance(rule, dict):
        raise FaultConfigError(f"{where} must be an object")
    target = rule.get("target")
    if target not in TARGETS:
        raise FaultConfigError(f"{where}.target must be one of {', '.join(TARGETS)}")
    action = rule.get("action")
    if action not in ACTIONS:
        raise FaultConfigError(f"{where}.action must be one of {', '.join(ACTIONS)}")
    times = int(rule.get("times", 1))
    if times < 1:
        raise FaultConfigError(f"{where}.times must be at least 1")
    key = rule.get("idempotency_key")
    if key is not None and (target != "stripe" or not isinstance(key, str) or not key):
        raise FaultConfigError(f"{where}.idempotency_key is a non-empty string, Stripe rules only")
    checked = {
        "target": target,
        "method": (rule.get("method") or "").upper() or None,
        "path": rule.get("path"),
        "times": times,
        "action": action,
    }
    if key is not None:
        checked["idempotency_key"] = key
    return checked


def _rule_matches(
    rule: dict[str, Any], target: str, method: str, path: str, idempotency_key: str | None
) -> bool:
    if rule["target"] != target:
        return False
    if rule["method"] and rule["method"] != method.upper():
        return False
    if "idempotency_key" in rule and not _matches(rule["idempotency_key"], idempotency_key):
        return False
    return _matches(rule["path"], path) if rule["path"] else True


def _matches(pattern: str, value: str | None) -> bool:
    """Exact, or a prefix with a trailing ``*``."""
    if value is None:
        return False
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern
