"""Gossipsub's validation cache keeps acceptances only: a refused message may be valid later."""

from __future__ import annotations

import time

from libp2p.pubsub.pubsub import ValidationResult

from channels.net.pubsub import _ValidOnlyCache


def test_a_refusal_is_not_remembered_an_acceptance_is() -> None:
    cache = _ValidOnlyCache(300, 10)
    cache.put(b"update", ValidationResult(is_valid=False, timestamp=time.time(), error_message="held"))
    assert cache.get(b"update") is None  # republished after its announcement: validated again
    cache.put(b"update", ValidationResult(is_valid=True, timestamp=time.time()))
    got = cache.get(b"update")
    assert got is not None and got.is_valid
