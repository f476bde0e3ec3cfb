"""What a forwarder charges and accepts: fees, expiry deltas and limits per channel.

The safety rule (proto/09-forwarding.md section 3): a forwarder learns the preimage from its
outgoing lock at the latest at that lock's expiry (the payee may reveal it on the L1 up to
then). It must then settle its incoming lock, off-chain or by registering the secret on the L1
before that lock expires. The node goes to the L1 ``lock_margin`` seconds before an incoming
lock's expiry when the peer has not settled, and sees an L1 secret within ``lock_margin`` of its
registration, so the gap between the two expiries must cover both: ``expiry_delta >=
2 * lock_margin``. A smaller delta would let a downstream peer reveal the secret so late that the
upstream lock expires first: the forwarder would pay downstream and be refunded nothing upstream.
"""

from __future__ import annotations

import attrs

from ..core.ids import MAX_AMOUNT
from ..errors import ConfigError


class PolicyError(ConfigError):
    """A fee policy or limit that breaks the forwarding rules."""


MAX_FEE_PPM = 1_000_000  # a forwarder asking more than the amount itself is a mistake
MAX_EXPIRY_DELTA = 14 * 24 * 3600  # seconds: longer deltas only lock the sender's money longer


def check_expiry_delta(expiry_delta: int, lock_margin: int) -> None:
    """Refuse an expiry delta that breaks the safety rule for this node's lock margin."""
    if not 2 * lock_margin <= expiry_delta <= MAX_EXPIRY_DELTA:
        raise PolicyError(f"expiry_delta {expiry_delta} s must be between 2 x lock_margin ({2 * lock_margin} s) "
                          f"and {MAX_EXPIRY_DELTA} s: a forwarder needs that long to claim upstream on the L1")


@attrs.frozen(kw_only=True)
class FeePolicy:
    """One channel direction's terms for forwarding out of it (what ``set-fees`` sets)."""

    base_fee: int = 1
    fee_ppm: int = 100
    expiry_delta: int = 240  # seconds between the incoming and the outgoing lock's expiry
    htlc_minimum: int = 1
    htlc_maximum: int | None = None  # None: the channel's balance
    enabled: bool = True

    def __attrs_post_init__(self) -> None:
        for name in ("base_fee", "fee_ppm", "expiry_delta", "htlc_minimum"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_AMOUNT:
                raise PolicyError(f"{name} must be a non-negative integer")
        if self.fee_ppm > MAX_FEE_PPM:
            raise PolicyError(f"fee_ppm must be at most {MAX_FEE_PPM}")
        if self.htlc_maximum is not None and (type(self.htlc_maximum) is not int
                                              or not self.htlc_minimum <= self.htlc_maximum <= MAX_AMOUNT):
            raise PolicyError("htlc_maximum must be an integer at least htlc_minimum")

    def fee(self, amount: int) -> int:
        """base + amount * ppm / 10^6, rounded down (the routing graph's formula)."""
        return self.base_fee + amount * self.fee_ppm // 1_000_000

    def to_fields(self) -> list[object]:
        return [self.base_fee, self.fee_ppm, self.expiry_delta, self.htlc_minimum, self.htlc_maximum, self.enabled]

    @classmethod
    def from_fields(cls, f: list[object]) -> "FeePolicy":
        base, ppm, delta, lo, hi, enabled = f
        return cls(base_fee=base, fee_ppm=ppm, expiry_delta=delta, htlc_minimum=lo,  # type: ignore[arg-type]
                   htlc_maximum=hi, enabled=enabled)  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class HopLimits:
    """Bounds a node keeps whatever its peers send (resource exhaustion, griefing)."""

    max_locks_in_flight: int = 64  # onion locks we forward out of one channel at once
    max_value_in_flight: int | None = None  # amount locked out of one channel by forwards (None: any)
    min_final_expiry_delta: int = 600  # seconds our incoming lock must have left when we are the payee
    max_expiry_horizon: int = 14 * 24 * 3600  # a lock expiring later than this from now is refused
    mpp_timeout: int = 60  # seconds the payee holds the parts of an incomplete payment
    max_held_parts: int = 1024  # parts of incomplete payments held at once (a payee's memory)
