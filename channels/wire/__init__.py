"""Bytes on the wire: one module per message family plus the envelope (ARCHITECTURE section 5).

``encode_message`` / ``decode_message`` in ``envelope`` are the entry points.
"""

from .envelope import PROTOCOL_CHANNEL, decode_message, encode_message

__all__ = ["PROTOCOL_CHANNEL", "decode_message", "encode_message"]
