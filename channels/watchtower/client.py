"""A tower's client: what a node calls to hand appointments to a tower (proto/07-watchtower.md).

    receipt = await send_appointment(host, tower_multiaddr, appointment_of(channel))

Every answer is checked before it is returned: a receipt must be signed by the key inside
the peer id we dialled and name exactly what we sent (channel or locator, version or
sequence, appointment hash); anything else is ``BadReceipt``. A refusal comes back as its
typed error (``Unsigned``, ``NonMonotonic``, ``OverQuota``, ``RateLimited``...); an
unreachable or silent tower as ``TowerUnavailable``. Keep the receipts: they are the
proof of which tower holds which version.

``TowerClient`` keeps one stream open for many calls (a node's outbox); ``send_appointment``
opens one for a single call.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ..core.channel import Channel
from ..core.state import SignedState
from ..crypto import sha256
from ..errors import DecodeError, sole_error
from ..net import Host, NetError
from ..net.request_response import RpcClient, open_rpc_client
from .appointment import ENCRYPTED, NONCE_LEN, PLAIN, Appointment, EncryptedAppointment, Receipt, encrypt
from .errors import BadReceipt, TowerUnavailable
from .peerid import public_key_of
from .protocol import PROTOCOL_TOWER, ForgetRequest, InfoRequest, Request, TowerInfo, decode_response, encode_request

DEFAULT_TIMEOUT = 10.0

__all__ = ["TowerClient", "appointment_of", "check_receipt", "open_tower_client", "seal", "send_appointment",
           "send_encrypted", "tower_info"]


def appointment_of(channel: Channel) -> Appointment:
    """The appointment for a node's channel: its parameters, its newest state signed by both,
    and the preimages the node knows of that state's locks."""
    hashlocks = {lk.hashlock for lk in channel.latest.state.allocation.locks}
    preimages = tuple(sorted({p for _, p in channel.preimages if sha256(p) in hashlocks}, key=sha256))
    return Appointment(params=channel.params, signed=channel.latest, preimages=preimages)


def seal(appointment: Appointment, trigger: SignedState, slot: int, *, seq: int,
         nonce: bytes | None = None) -> EncryptedAppointment:
    """Encrypt ``appointment`` for the tower to open only if ``trigger`` is registered.

    ``slot`` is our index among the participants (our signature is the one a cheater cannot
    change); ``seq`` orders our blobs at one locator (use the appointment's version)."""
    return encrypt(appointment, trigger, slot, seq=seq, nonce=os.urandom(NONCE_LEN) if nonce is None else nonce)


def check_receipt(receipt: Receipt, tower_peer_id: str, *, kind: int, subject: bytes, version: int,
                  appointment_hash: bytes) -> Receipt:
    """``receipt`` if it is the tower's signed statement about exactly this appointment."""
    try:
        key = public_key_of(tower_peer_id)
    except DecodeError as exc:
        raise BadReceipt(f"cannot check a receipt from {tower_peer_id}: {exc}") from None
    if receipt.tower_key != key:
        raise BadReceipt(f"the receipt is signed by another key than the one inside {tower_peer_id}")
    if (receipt.kind, receipt.subject, receipt.version, receipt.appointment_hash) != (
            kind, subject, version, appointment_hash):
        raise BadReceipt("the receipt names another appointment than the one sent")
    if not receipt.verifies():
        raise BadReceipt(f"the receipt's signature does not verify under {tower_peer_id}'s key")
    return receipt


class TowerClient:
    """Calls to one tower over one stream; create it with ``open_tower_client``."""

    def __init__(self, rpc: RpcClient, *, timeout: float) -> None:
        self._rpc = rpc
        self._timeout = timeout

    @property
    def peer_id(self) -> str:
        return self._rpc.peer_id

    async def _call(self, request: Request) -> object:
        try:
            data = await self._rpc.call(encode_request(request), timeout=self._timeout)
        except NetError as exc:
            raise TowerUnavailable(f"tower {self.peer_id} did not answer: {exc}") from None
        return decode_response(data)

    async def send(self, appointment: Appointment) -> Receipt:
        """Store ``appointment``; its checked receipt."""
        answer = await self._call(appointment)
        if not isinstance(answer, Receipt):
            raise BadReceipt(f"tower {self.peer_id} answered an appointment with {type(answer).__name__}")
        return check_receipt(answer, self.peer_id, kind=PLAIN, subject=appointment.channel_id,
                             version=appointment.version, appointment_hash=appointment.digest())

    async def send_encrypted(self, blob: EncryptedAppointment) -> Receipt:
        answer = await self._call(blob)
        if not isinstance(answer, Receipt):
            raise BadReceipt(f"tower {self.peer_id} answered an appointment with {type(answer).__name__}")
        return check_receipt(answer, self.peer_id, kind=ENCRYPTED, subject=blob.locator, version=blob.seq,
                             appointment_hash=blob.digest())

    async def info(self) -> TowerInfo:
        answer = await self._call(InfoRequest())
        if not isinstance(answer, TowerInfo):
            raise BadReceipt(f"tower {self.peer_id} answered INFO with {type(answer).__name__}")
        if answer.tower_key != public_key_of(self.peer_id):
            raise BadReceipt(f"tower {self.peer_id} names another key than its peer id's")
        return answer

    async def forget(self, locators: list[bytes]) -> int:
        """Drop our encrypted appointments at ``locators`` (a closed channel's); how many the tower held."""
        answer = await self._call(ForgetRequest(tuple(locators)))
        if not isinstance(answer, int):
            raise BadReceipt(f"tower {self.peer_id} answered FORGET with {type(answer).__name__}")
        return answer


@asynccontextmanager
async def open_tower_client(host: Host, tower: str, *, timeout: float = DEFAULT_TIMEOUT) -> AsyncIterator[TowerClient]:
    """Connect to the tower at ``tower`` (a full multiaddr ending in ``/p2p/PEER_ID``).

    An error raised in the block comes out as itself, not wrapped in an exception group."""
    try:
        async with AsyncExitStack() as stack:
            try:
                peer_id = await host.connect(tower, timeout=timeout)
                rpc = await stack.enter_async_context(open_rpc_client(host, peer_id, PROTOCOL_TOWER,
                                                                      timeout=timeout))
            except NetError as exc:
                raise TowerUnavailable(f"cannot reach the tower at {tower}: {exc}") from None
            yield TowerClient(rpc, timeout=timeout)
    except BaseExceptionGroup as group:
        leaf = sole_error(group, Exception)
        if leaf is None:
            raise
        raise leaf from None


async def send_appointment(host: Host, tower: str, appointment: Appointment, *,
                           timeout: float = DEFAULT_TIMEOUT) -> Receipt:
    """Hand ``appointment`` to the tower at ``tower`` over ``host``; the checked receipt."""
    async with open_tower_client(host, tower, timeout=timeout) as client:
        return await client.send(appointment)


async def send_encrypted(host: Host, tower: str, blob: EncryptedAppointment, *,
                         timeout: float = DEFAULT_TIMEOUT) -> Receipt:
    async with open_tower_client(host, tower, timeout=timeout) as client:
        return await client.send_encrypted(blob)


async def tower_info(host: Host, tower: str, *, timeout: float = DEFAULT_TIMEOUT) -> TowerInfo:
    async with open_tower_client(host, tower, timeout=timeout) as client:
        return await client.info()
