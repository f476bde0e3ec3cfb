"""The core takes sizes and ids from the backend: channel ids from the scheme, addresses of
20..64 bytes (one length per channel), signatures up to 128 bytes (proto/01 sections 4, 5)."""

from __future__ import annotations

import hashlib

import pytest

from channels import encoding
from channels.chain.devnet.scheme import ADJUDICATOR, DevnetKey, DevnetScheme
from channels.core.channel import Env, accept_channel, propose_channel, verify_signed
from channels.core.ids import NATIVE, ChannelId
from channels.core.messages import ChannelProposal
from channels.core.state import Allocation, ChannelParams
from channels.errors import DecodeError
from channels.store.records import channel_from_bytes, channel_to_bytes
from channels.wire import decode_message, encode_message


class OwnIdScheme(DevnetScheme):
    """A backend that names channels its own way (as an EVM adjudicator does in Solidity)."""

    def channel_id(self, params: ChannelParams) -> ChannelId:
        return ChannelId(hashlib.sha256(b"own-id" + params.channel_id).digest())


def test_the_channel_id_is_the_schemes() -> None:
    scheme = OwnIdScheme()
    keys = [DevnetKey.from_label("alice"), DevnetKey.from_label("bob")]
    params = ChannelParams(chain_id=1, adjudicator=ADJUDICATOR, participants=tuple(k.address for k in keys),
                           challenge_duration=60, nonce=bytes(32))
    own = scheme.channel_id(params)
    assert own != params.channel_id
    a, out = propose_channel(params, Allocation(assets=(NATIVE,), balances=((10, 0),)),
                             env=Env(scheme=scheme, signer=keys[0]))
    proposal = decode_message(encode_message(out[0].message))  # type: ignore[attr-defined]
    assert isinstance(proposal, ChannelProposal)
    b, _ = accept_channel(proposal, env=Env(scheme=scheme, signer=keys[1]))
    for ch in (a, b):
        assert ch.channel_id == ch.latest.state.channel_id == own
        assert channel_from_bytes(channel_to_bytes(ch)).channel_id == own, "the store keeps the scheme's id"
    assert not verify_signed(params, a.latest, DevnetScheme()), "another scheme's id does not verify"


def test_addresses_of_another_length_get_their_own_id_layout() -> None:
    evm = ChannelParams(chain_id=1, adjudicator=bytes(20), participants=(b"\x01" * 20, b"\x02" * 20),
                        challenge_duration=60, nonce=bytes(32))
    evm.validate()
    assert ChannelParams.from_fields(encoding.decode(encoding.encode(evm.to_fields()))) == evm
    longer = ChannelParams(chain_id=1, adjudicator=bytes(20), participants=(b"\x01" * 21, b"\x02" * 22),
                           challenge_duration=60, nonce=bytes(32))
    with pytest.raises(DecodeError, match="one length"):
        longer.validate()  # else two splits of the same bytes could share a channel id
    for size in (19, 65):
        with pytest.raises(DecodeError):
            ChannelParams(chain_id=1, adjudicator=b"", participants=(b"\x01" * size, b"\x02" * size),
                          challenge_duration=60, nonce=bytes(32)).validate()
