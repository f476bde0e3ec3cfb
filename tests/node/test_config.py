"""Node settings: every bad ``config.toml`` key gives one line (name, value, what is expected).

In-process checks of ``load_config`` / ``NodeConfig``, then ``channels node start`` as a
real process: a bad config.toml exits non-zero with exactly those lines and no traceback.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

import pytest

from channels.errors import ChannelsError, ConfigError
from channels.frontend.node_commands import ENV_DEVNET, _devnet_address
from channels.node.config import NodeConfig, load_config
from tests.procs import CLI, ENV, REPO

DEVNET = "/ip4/127.0.0.1/tcp/9000/p2p/12D3KooWEFiz2QyKpXSMCjxjRSXi2YFVhGgkG3q5R9c7ECjT4ozX"


def write(data_dir: Path, text: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "config.toml"
    path.write_text(text)
    return path


def problems(data_dir: Path, **overrides: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(data_dir, **overrides)
    return str(info.value).splitlines()


@pytest.mark.parametrize(("line", "expected"), [
    ('challenge_duration = "abc"', 'challenge_duration = "abc": expected a positive integer (seconds)'),
    ("challenge_duration = 0", "challenge_duration = 0: expected a positive integer (seconds)"),
    ("challenge_duration = 90.0", "challenge_duration = 90.0: expected a positive integer (seconds)"),
    ("min_challenge_blocks = true", "min_challenge_blocks = true: expected a positive integer (L1 blocks)"),
    ("auto_accept_funding = -1", "auto_accept_funding = -1: expected an integer >= 0"),
    ("max_events = 9223372036854775808", "max_events = 9223372036854775808: expected a positive integer"),
    ("tick_interval = 0", "tick_interval = 0: expected a positive number (seconds)"),
    ("init_timeout = nan", "init_timeout = nan: expected a positive number (seconds)"),
    ('reconnect_interval = "1"', 'reconnect_interval = "1": expected a positive number (seconds)'),
    ("listen = 5", "listen = 5: expected a multiaddr or a list of them"),
    ("listen = []", "listen = []: expected a multiaddr or a list of them"),
    ('listen = ["/ip4/127.0.0.1/tcp/1", "/ip4/x"]', '("/ip4/x": base address \'x\' is not IPv4)'),
    ('listen = "tcp/80"', '("tcp/80": a multiaddr starts with /)'),
    ('listen = "/ip4/127.0.0.1/udp/9"', "(\"/ip4/127.0.0.1/udp/9\": no /ip4/, /ip6/ or /dns/ host with a /tcp/ port)"),
    ('devnet = "/ip4/127.0.0.1/tcp/9000"', "(no /p2p/PEER_ID at the end)"),
    ("devnet = 9000", "devnet = 9000: expected the devnet daemon's multiaddr"),
    ('metrics = "9464"', 'metrics = "9464": expected "HOST:PORT" with a port 0..65535'),
    ("chalenge_duration = 30", "chalenge_duration = 30: unknown setting (did you mean challenge_duration?)"),
    ("colour = 1", "colour = 1: unknown setting (see docs/settings.md for the settings)"),
    ("[node]\nlisten = 1", "node = {listen = 1}: unknown setting (settings are flat key = value lines, no [tables])"),
    ('data_dir = "/elsewhere"', 'data_dir = "/elsewhere": not a setting: the data dir is where config.toml lives'),
    ("challenge_duration = 30", "challenge_duration = 30: expected at least min_challenge_duration (60)"),
    ("max_challenge_duration = 30",
     "max_challenge_duration = 30: expected at least challenge_duration (60)"),
    ("max_inbound_per_ip = 300", "max_inbound_per_ip = 300: expected at most max_inbound_total (256, the default)"),
])
def test_each_bad_key_gives_its_line(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path, line + "\n")
    (only,) = problems(tmp_path)
    assert only.startswith(f"{path}: ") and expected in only


def test_several_bad_keys_give_several_lines_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, 'challenge_duration = "abc"\nlisten = 5\nmax_peers_without_channel = 64\n'
                           "tick_intervall = 1\nlock_margin = false\n")
    assert problems(tmp_path) == [
        f'{path}: challenge_duration = "abc": expected a positive integer (seconds)',
        f'{path}: listen = 5: expected a multiaddr or a list of them, e.g. "/ip4/127.0.0.1/tcp/9101"',
        f"{path}: tick_intervall = 1: unknown setting (did you mean tick_interval?)",
        f"{path}: lock_margin = false: expected a positive integer (seconds)",
    ]


def test_long_values_are_cut_in_the_line(tmp_path: Path) -> None:
    write(tmp_path, f'challenge_duration = "{"x" * 10_000}"\n')
    (only,) = problems(tmp_path)
    assert len(only) < len(str(tmp_path)) + 200 and '..." expected' not in only and "...:" in only


def test_a_good_config_loads_with_every_key(tmp_path: Path) -> None:
    write(tmp_path, f'listen = ["/ip4/127.0.0.1/tcp/9101", "/ip6/::1/tcp/9101"]\ndevnet = "{DEVNET}"\n'
                    "challenge_duration = 120\nmin_challenge_duration = 1\nmin_challenge_blocks = 1\n"
                    "max_challenge_duration = 3600\nauto_accept_funding = 0\nmax_proposals_per_peer = 2\n"
                    "max_unfinished_channels = 8\nmax_peers_without_channel = 10\nfunding_timeout = 3\n"
                    "init_timeout = 1\nlock_margin = 8\nmax_streams_per_peer = 2\nmax_inbound_total = 10\n"
                    "max_inbound_per_ip = 10\nmax_inbound_per_peer = 1\nmax_events = 50\ntick_interval = 0.2\n"
                    'reconnect_interval = 1\nmetrics = "127.0.0.1:0"\n')
    config = load_config(tmp_path)
    assert config.listen == ("/ip4/127.0.0.1/tcp/9101", "/ip6/::1/tcp/9101") and config.devnet == DEVNET
    assert (config.challenge_duration, config.max_inbound_per_peer, config.metrics) == (120, 1, "127.0.0.1:0")
    assert config.init_timeout == 1.0 and isinstance(config.init_timeout, float)
    assert config.reconnect_interval == 1.0 and isinstance(config.reconnect_interval, float)


def test_the_settings_of_old_data_dirs_still_load(tmp_path: Path) -> None:
    old = (Path(__file__).resolve().parents[1] / "data" / "v0.1.0" / "a" / "config.toml").read_text()
    write(tmp_path, old)
    assert load_config(tmp_path).tick_interval == 0.2


def test_no_config_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "new")
    assert config == NodeConfig(data_dir=tmp_path / "new")
    assert not (tmp_path / "new").exists()  # loading settings creates nothing


def test_flags_override_the_file_and_are_checked_too(tmp_path: Path) -> None:
    path = write(tmp_path, 'listen = "/ip4/127.0.0.1/tcp/9101"\nchallenge_duration = 120\n')
    config = load_config(tmp_path, listen=("/ip4/127.0.0.1/tcp/9102",), challenge_duration=None)
    assert config.listen == ("/ip4/127.0.0.1/tcp/9102",) and config.challenge_duration == 120  # None: not given
    lines = problems(tmp_path, listen=("/ip4/x",), devnet="/ip4/127.0.0.1/tcp/9000", challenge_duration=30,
                     sources={"listen": "--listen", "devnet": f"${ENV_DEVNET}"})
    assert [line.split(":")[0] for line in lines] == ["--listen", f"${ENV_DEVNET}", "challenge_duration = 30"]
    assert all(str(path) not in line for line in lines)  # none of these values came from the file


def test_a_bad_file_value_replaced_by_a_flag_is_not_used(tmp_path: Path) -> None:
    write(tmp_path, "listen = 5\n")
    assert load_config(tmp_path, listen="/ip4/127.0.0.1/tcp/0").listen == ("/ip4/127.0.0.1/tcp/0",)


def test_not_toml_or_unreadable_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "listen = [\n")
    (only,) = problems(tmp_path)
    assert only.startswith(f"{path}: not valid TOML: ")
    path.unlink()
    path.mkdir()  # a directory where the file should be
    (only,) = problems(tmp_path)
    assert only.startswith(f"{path}: cannot read it: ")


def test_the_library_gets_the_same_checks() -> None:
    with pytest.raises(ConfigError) as info:
        NodeConfig(data_dir=Path("/d"), challenge_duration="abc", tick_interval=-1)  # type: ignore[arg-type]
    assert str(info.value).splitlines() == ['challenge_duration = "abc": expected a positive integer (seconds)',
                                            "tick_interval = -1: expected a positive number (seconds)"]
    assert isinstance(info.value, ChannelsError)
    assert NodeConfig(data_dir=Path("/d"), listen="/ip4/127.0.0.1/tcp/1").listen == (  # type: ignore[arg-type]
        "/ip4/127.0.0.1/tcp/1",)


def start_args(**given: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"devnet": None, "devnet_dir": None, **given})


def test_the_devnet_flag_wins_over_the_environment_and_the_environment_over_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = DEVNET.replace("9000", "9001")
    monkeypatch.setenv(ENV_DEVNET, other)
    assert _devnet_address(start_args(devnet=DEVNET)) == (DEVNET, "--devnet")
    (tmp_path / "dv").mkdir()
    (tmp_path / "dv" / "devnet.addr").write_text(DEVNET + "\n")
    assert _devnet_address(start_args(devnet_dir=str(tmp_path / "dv"))) == (DEVNET, f"--devnet-dir {tmp_path / 'dv'}")
    assert _devnet_address(start_args()) == (other, f"${ENV_DEVNET}")
    write(tmp_path / "node", f'devnet = "{DEVNET}"\n')
    assert load_config(tmp_path / "node", devnet=_devnet_address(start_args())[0]).devnet == other
    monkeypatch.delenv(ENV_DEVNET)
    assert _devnet_address(start_args()) == (None, f"${ENV_DEVNET}")
    assert load_config(tmp_path / "node", devnet=None).devnet == DEVNET


def run_node_start(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "node", "start", "--data-dir", str(data_dir), *extra], capture_output=True,
                          text=True, timeout=60, env={**ENV, **(env or {})}, cwd=REPO)


def test_node_start_with_a_bad_config_prints_one_line_per_bad_key(tmp_path: Path) -> None:
    path = write(tmp_path / "node", 'challenge_duration = "abc"\nlisten = 5\nmax_evnts = 10\n')
    done = run_node_start(tmp_path / "node", "--devnet", DEVNET)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f'error: {path}: challenge_duration = "abc": expected a positive integer (seconds)',
        f'error: {path}: listen = 5: expected a multiaddr or a list of them, e.g. "/ip4/127.0.0.1/tcp/9101"',
        f"error: {path}: max_evnts = 10: unknown setting (did you mean max_events?)",
    ]
    assert sorted(p.name for p in (tmp_path / "node").iterdir()) == ["config.toml"]  # nothing was created


def test_node_start_reports_a_bad_config_before_a_missing_devnet(tmp_path: Path) -> None:
    """The local mistake first: starting the devnet would not fix config.toml."""
    path = write(tmp_path / "node", "listen = 5\n")
    done = run_node_start(tmp_path / "node", "--devnet-dir", str(tmp_path / "no-devnet"))
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f'error: {path}: listen = 5: expected a multiaddr or a list of them, e.g. "/ip4/127.0.0.1/tcp/9101"']
    path.unlink()
    gone = tmp_path / "no-devnet"
    done = run_node_start(tmp_path / "node", "--devnet-dir", str(gone))
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f"error: no devnet is running in {gone} ({gone / 'devnet.addr'} is missing)"]


def test_node_start_with_a_bad_devnet_in_the_environment_names_the_variable(tmp_path: Path) -> None:
    done = run_node_start(tmp_path / "node", env={ENV_DEVNET: "/ip4/127.0.0.1/tcp/9000"})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f'error: ${ENV_DEVNET}: devnet = "/ip4/127.0.0.1/tcp/9000": expected the devnet daemon\'s multiaddr, '
        'e.g. "/ip4/127.0.0.1/tcp/9000/p2p/12D3KooW..." (no /p2p/PEER_ID at the end)']
    assert not (tmp_path / "node").exists()
