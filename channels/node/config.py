"""Node settings: defaults, ``DIR/config.toml``, then command-line flags (flags win)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError


@attrs.frozen(kw_only=True)
class NodeConfig:
    data_dir: Path
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    devnet: str | None = None  # multiaddr of a devnet daemon (None: the caller passes a Ledger)
    challenge_duration: int = 60  # default for channels we open (seconds of L1 time)
    # The shortest challenge window we sign up for, in seconds and in L1 blocks: the
    # honest side must see a registration and get its refute included before the window
    # ends (proto/02 section 12). Tests may lower both explicitly.
    min_challenge_duration: int = 60
    min_challenge_blocks: int = 10
    max_challenge_duration: int = 7 * 86400
    auto_accept_funding: int = 0  # largest own deposit we accept automatically when a peer proposes
    max_proposals_per_peer: int = 4  # channel proposals in flight per peer (resource exhaustion)
    max_unfinished_channels: int = 64  # channels proposed or funding, all peers together
    max_peers_without_channel: int = 64  # introduced peers we keep without any channel with them
    funding_timeout: int = 3600  # seconds of L1 time before a channel never funded is dropped
    init_timeout: float = 10.0  # seconds an inbound stream may take to send its Init
    lock_margin: int = 60  # seconds before a lock's expiry at which its payee, holding the secret, goes on chain
    max_streams_per_peer: int = 4
    # Live inbound connections (channels.net.limits): all together, per source address
    # (IPv6: per /64) and per peer id. Closed connections free their slot at once.
    max_inbound_total: int = 256
    max_inbound_per_ip: int = 32
    max_inbound_per_peer: int = 4
    tick_interval: float = 0.5  # seconds between deadline checks
    reconnect_interval: float = 0.5  # first retry delay; doubles up to 5 s

    @property
    def db_path(self) -> Path:
        return self.data_dir / "node.db"

    @property
    def identity_path(self) -> Path:
        return self.data_dir / "identity.key"

    @property
    def l1_key_path(self) -> Path:
        return self.data_dir / "l1.key"

    @property
    def rpc_path(self) -> Path:
        return self.data_dir / "rpc.sock"


_FIELDS = {f.name: f for f in attrs.fields(NodeConfig)}


def load_config(data_dir: Path | str, **overrides: Any) -> NodeConfig:
    """Read ``DIR/config.toml`` (optional) and apply non-None ``overrides`` on top."""
    data_dir = Path(data_dir).expanduser().resolve()
    values: dict[str, Any] = {}
    path = data_dir / "config.toml"
    if path.exists():
        try:
            values.update(tomllib.loads(path.read_text()))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(_FIELDS) - {"data_dir"}
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(sorted(unknown))}")
    if isinstance(values.get("listen"), str):
        values["listen"] = (values["listen"],)
    if "listen" in values:
        values["listen"] = tuple(values["listen"])
    try:
        return NodeConfig(data_dir=data_dir, **{k: v for k, v in values.items() if k != "data_dir"})
    except TypeError as exc:
        raise ConfigError(f"invalid setting: {exc}") from None
