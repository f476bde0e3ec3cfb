"""Node settings: defaults, then ``DIR/config.toml``, then the environment and flags (last wins).

Every value is checked where it enters (``load_config``, or ``NodeConfig(...)`` from the
library): a bad one is a ``ConfigError`` at start, with one line per bad key saying its
name, its value and what is expected, instead of a ``TypeError`` deep in a running node.
All problems are reported at once, so a config file is fixed in one go. The reference of
every key is docs/settings.md (tests/test_settings_doc.py keeps it complete).
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError

CONFIG_FILE = "config.toml"
MAX_INT = 2**63 - 1  # what SQLite and the wire (u64 durations) take without surprise
MAX_SHOWN = 60  # characters of a bad value quoted back in an error line


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
    max_events: int = 100_000  # newest events kept in the event log (channels.node.events)
    tick_interval: float = 0.5  # seconds between deadline checks
    reconnect_interval: float = 0.5  # first retry delay; doubles up to 5 s
    # HOST:PORT of the Prometheus endpoint of the daemon (unauthenticated; channels.frontend.metrics).
    # None: off.
    metrics: str | None = None
    # Channel apps (game rules) beside payments, each "module:attribute" (channels.app_loader);
    # the devnet must be started with the same ones.
    apps: tuple[str, ...] = ()
    # Developer mode (channels.node.dev): enables the ``dev`` commands, with which this node can
    # cheat (register a stale state) to try a watchtower. Never with funds that matter.
    dev: bool = False
    # Multi-hop payments (proto/09-forwarding.md): default terms for forwarding out of each of
    # our channels (``set-fees`` changes one channel), and the limits a forwarder keeps.
    fee_base: int = 1
    fee_ppm: int = 100
    expiry_delta: int = 240  # seconds between incoming and outgoing lock expiry; at least 2 x lock_margin
    min_final_expiry_delta: int = 600  # seconds our incoming lock must have left when we are the payee
    max_forwards_in_flight: int = 64  # per outgoing channel
    mpp_timeout: int = 60  # seconds we hold the parts of an incomplete payment to us
    gossip: bool = True  # announce public channels and learn the graph over gossipsub (libp2p hosts only)

    def __attrs_post_init__(self) -> None:
        """The library path gets the same checks as config.toml (a ``ConfigError``, all lines)."""
        values = {f.name: getattr(self, f.name) for f in attrs.fields(NodeConfig) if f.name != "data_dir"}
        good, problems = check_settings(values)
        margin, delta = good.get("lock_margin", self.lock_margin), good.get("expiry_delta", self.expiry_delta)
        if not problems and delta < 2 * margin:
            # The forwarding safety rule (proto/09-forwarding.md section 3).
            problems.append(f"expiry_delta = {delta}: must be at least 2 x lock_margin ({2 * margin} s), the time a "
                            "forwarder needs to see a secret on the L1 and claim upstream with it")
        if problems:
            raise ConfigError("\n".join(problems))
        for key, value in good.items():  # e.g. listen="/ip4/..." -> ("/ip4/...",)
            object.__setattr__(self, key, value)

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


# --- validation ----------------------------------------------------------------------------------


class _Bad(Exception):
    """A value is not what its key expects; ``str`` is the ``expected ...`` part of the line."""


def _integer(minimum: int, what: str, maximum: int = MAX_INT) -> Callable[[Any], Any]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise _Bad(what)
        return value

    return check


def _number(what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value <= 0:
            raise _Bad(what)
        return float(value)

    return check


def _multiaddr_problem(text: Any, *, peer: bool) -> str | None:
    """Why ``text`` is not a usable TCP multiaddr (None: it is)."""
    if not isinstance(text, str):
        return "not a string"
    if not text.startswith("/"):
        return "a multiaddr starts with /"
    import multiaddr  # light (no libp2p); only when there is something to check

    try:
        protocols = [p.name for p in multiaddr.Multiaddr(text).protocols()]
    except Exception as exc:  # the parser raises several types
        reason = str(exc).split(" (string:")[0]
        reason = reason.split("': ", 1)[1] if reason.startswith("Invalid MultiAddr '") and "': " in reason else reason
        return reason[:MAX_SHOWN * 2]
    if not {"ip4", "ip6", "dns", "dns4", "dns6"} & set(protocols) or "tcp" not in protocols:
        return "no /ip4/, /ip6/ or /dns/ host with a /tcp/ port"
    if peer and "p2p" not in protocols:
        return "no /p2p/PEER_ID at the end"
    return None


def _apps(value: Any) -> tuple[str, ...]:
    from ..app_loader import check_app_spec

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise _Bad('a list of "module:attribute" names, e.g. ["mygame.rules:TicTacToe"]')
    for item in items:
        try:
            check_app_spec(item)
        except ConfigError:
            raise _Bad(f'a list of "module:attribute" names ({_show(item)} is not one)') from None
    return tuple(items)


def _listen(value: Any) -> tuple[str, ...]:
    what = 'a multiaddr or a list of them, e.g. "/ip4/127.0.0.1/tcp/9101"'
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise _Bad(what)
    for item in items:
        problem = _multiaddr_problem(item, peer=False)
        if problem is not None:
            raise _Bad(f"{what} ({_show(item)}: {problem})")
    return tuple(items)


def _devnet(value: Any) -> str | None:
    if value is None:
        return None
    problem = _multiaddr_problem(value, peer=True)
    if problem is not None:
        raise _Bad(f'the devnet daemon\'s multiaddr, e.g. "/ip4/127.0.0.1/tcp/9000/p2p/12D3KooW..." ({problem})')
    return str(value)


def _host_port(value: Any) -> str | None:
    """``HOST:PORT`` (``[v6]:PORT``), the same rule as channels.frontend.metrics.parse_address."""
    if value is None:
        return None
    host, sep, port = str(value).strip().rpartition(":") if isinstance(value, str) else ("", "", "")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise _Bad('"HOST:PORT" with a port 0..65535, e.g. "127.0.0.1:9464"')
    return str(value)


_SECONDS = "a positive integer (seconds)"
# Per key: what a good value is. A field without an entry is checked by its default's type
# (an int: >= 0, a float: > 0, a str: a string), so a new setting is never unchecked.
RULES: dict[str, Callable[[Any], Any]] = {
    "listen": _listen,
    "devnet": _devnet,
    "metrics": _host_port,
    "apps": _apps,
    "challenge_duration": _integer(1, _SECONDS),
    "min_challenge_duration": _integer(1, _SECONDS),
    "min_challenge_blocks": _integer(1, "a positive integer (L1 blocks)"),
    "max_challenge_duration": _integer(1, _SECONDS),
    "auto_accept_funding": _integer(0, "an integer >= 0 (an amount; 0: accept none automatically)"),
    "max_proposals_per_peer": _integer(1, "a positive integer"),
    "max_unfinished_channels": _integer(1, "a positive integer"),
    "max_peers_without_channel": _integer(1, "a positive integer"),
    "funding_timeout": _integer(1, _SECONDS),
    "init_timeout": _number("a positive number (seconds)"),
    "lock_margin": _integer(1, _SECONDS),
    "max_streams_per_peer": _integer(1, "a positive integer"),
    "max_inbound_total": _integer(1, "a positive integer"),
    "max_inbound_per_ip": _integer(1, "a positive integer"),
    "max_inbound_per_peer": _integer(1, "a positive integer"),
    "max_events": _integer(1, "a positive integer"),
    "tick_interval": _number("a positive number (seconds)"),
    "reconnect_interval": _number("a positive number (seconds)"),
    "fee_ppm": _integer(0, "an integer from 0 to 1000000 (parts per million)", 1_000_000),
    "expiry_delta": _integer(1, _SECONDS),
    "min_final_expiry_delta": _integer(1, _SECONDS),
    "max_forwards_in_flight": _integer(1, "a positive integer"),
    "mpp_timeout": _integer(1, _SECONDS),
}
# (low, high): low <= high must hold, e.g. the default window lies within the accepted ones.
ORDER = [("min_challenge_duration", "challenge_duration"), ("challenge_duration", "max_challenge_duration"),
         ("min_challenge_duration", "max_challenge_duration"), ("max_inbound_per_ip", "max_inbound_total"),
         ("max_inbound_per_peer", "max_inbound_total"), ("lock_margin", "min_final_expiry_delta")]


def _by_default(default: Any) -> Callable[[Any], Any]:
    if isinstance(default, bool):
        def check_bool(value: Any) -> bool:
            if not isinstance(value, bool):
                raise _Bad("true or false")
            return value
        return check_bool
    if isinstance(default, int):
        return _integer(0, "an integer >= 0")
    if isinstance(default, float):
        return _number("a positive number")

    def check_str(value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise _Bad("a string")
        return value
    return check_str


def _show(value: Any) -> str:
    """A value as TOML would spell it, cut to ``MAX_SHOWN`` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    else:
        text = repr(value) if isinstance(value, (int, float)) else str(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _line(source: str | None, key: str, value: Any, problem: str) -> str:
    return f"{source + ': ' if source else ''}{key} = {_show(value)}: {problem}"


def check_settings(values: Mapping[str, Any],
                   sources: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Check every key of ``values``: (normalised values, one line per problem).

    ``sources`` names where a key came from (the config file, a flag, a variable); it
    starts that key's line. Keys that are not settings are problems too, with the
    closest known name suggested."""
    sources = sources or {}
    known = [name for name in _FIELDS if name != "data_dir"]
    good: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        source = sources.get(key)
        if key == "data_dir":
            problems.append(_line(source, key, value, "not a setting: the data dir is where config.toml lives "
                                                      "(give --data-dir DIR or set $CHANNELS_DATA_DIR)"))
            continue
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, known, n=1)
            hint = (f"did you mean {close[0]}?" if close else "settings are flat key = value lines, no [tables]"
                    if isinstance(value, dict) else "see docs/settings.md for the settings")
            problems.append(_line(source, key, value, f"unknown setting ({hint})"))
            continue
        rule = RULES.get(key) or _by_default(_FIELDS[key].default)
        try:
            good[key] = rule(value)
        except _Bad as bad:
            problems.append(_line(source, key, value, f"expected {bad}"))
    problems += _check_order(good, values, sources)
    return good, problems


def _check_order(good: Mapping[str, Any], given: Mapping[str, Any], sources: Mapping[str, str]) -> Iterable[str]:
    def value(name: str) -> Any:
        return good[name] if name in good else _FIELDS[name].default

    blamed = set()  # one line per key, even when it is out of order with two others
    for low, high in ORDER:
        if (low in given and low not in good) or (high in given and high not in good):
            continue  # already reported as a bad value
        if (low not in given and high not in given) or value(low) <= value(high):
            continue
        key = high if high in given else low  # blame the key that was set, the upper one when both were
        if key in blamed:
            continue
        blamed.add(key)
        if key == high:
            yield _line(sources.get(high), high, value(high), f"expected at least {low} ({value(low)})")
        else:
            yield _line(sources.get(low), low, value(low), f"expected at most {high} ({value(high)}, the default)")


def load_config(data_dir: Path | str, *, sources: Mapping[str, str] | None = None,
                **overrides: Any) -> NodeConfig:
    """Read ``DIR/config.toml`` (optional), apply the non-None ``overrides`` on top, check all.

    ``sources`` names where an override came from (``{"devnet": "$CHANNELS_DEVNET"}``) for
    the error lines. Raises one ``ConfigError`` listing every bad key, one line each."""
    data_dir = Path(data_dir).expanduser().resolve()
    path = data_dir / CONFIG_FILE
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        values.update(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    origin.update(dict.fromkeys(values, str(path)))
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
            origin.pop(key, None)
            if sources and key in sources:
                origin[key] = sources[key]
    good, problems = check_settings(values, origin)
    if problems:
        raise ConfigError("\n".join(problems))
    return NodeConfig(data_dir=data_dir, **good)
