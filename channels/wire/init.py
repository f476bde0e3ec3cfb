"""The first frame on every channel stream: identity binding and reachability."""

from ..core.messages import Init
from .registry import register

FAMILY = "channel"

register(2, Init, FAMILY, (("l1_address", "address"), ("chain_id", "u64"), ("addresses", "addresses"),
                           ("signature", "signature")))
