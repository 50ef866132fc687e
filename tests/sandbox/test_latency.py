"""Emulated latency: off by default; per request, plus per operation inside a batch."""

from __future__ import annotations

import json

from sandbox.latency import delay_for, inner_operations


def test_off_by_default(settings):
    settings.SANDBOX_LATENCY = None
    assert delay_for("outlook", "GET", "/v1.0/me/contacts", b"") == 0.0


def test_a_fuller_batch_takes_longer(settings):
    settings.SANDBOX_LATENCY = {"outlook": {"request_ms": 150, "jitter_ms": 0, "op_ms": 2},
                                "salesforce": {"request_ms": 100, "jitter_ms": 50, "op_ms": 1}}
    batch = json.dumps({"requests": [{"id": str(i)} for i in range(20)]}).encode()
    assert delay_for("outlook", "POST", "/v1.0/$batch", batch) == (150 + 2 * 20) / 1000
    records = json.dumps({"allOrNone": False, "records": [{}] * 200}).encode()
    assert inner_operations("POST", "/services/data/v62.0/composite/sobjects", records) == 200
    assert inner_operations("DELETE", "/services/data/v62.0/composite/sobjects?ids=a,b,c", b"") == 3
    one = delay_for("salesforce", "GET", "/services/data/v62.0/query?q=x", b"")
    assert 0.101 <= one <= 0.151  # fixed + jitter + one operation
