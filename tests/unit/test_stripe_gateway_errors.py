"""Which Stripe errors are retried with the same idempotency key, and which are refusals."""

from __future__ import annotations

import pytest
import stripe

from mirakl_connector.stripe_gateway import _is_transient


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        # 409 "another request with this key is in progress": the first may still succeed, so it
        # must never read as a refusal (the SDK raises a plain APIError for it).
        (stripe.APIError("in progress", http_status=409), True),
        (stripe.APIError("boom", http_status=500), True),
        (stripe.APIError("no answer"), True),
        (stripe.APIConnectionError("reset"), True),
        (stripe.RateLimitError("slow down", http_status=429), True),
        (stripe.InvalidRequestError("Transfers disabled.", None, http_status=400), False),
        (stripe.IdempotencyError("other params", http_status=400), False),
        (stripe.PermissionError("no access", http_status=403), False),
    ],
)
def test_transient_classification(error, transient):
    assert _is_transient(error) is transient
