"""``channels devnet ...``: the command names and JSON keys are a public contract."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from daemon_util import DaemonProc

from channels.chain.devnet.scheme import DevnetKey
from channels.frontend.cli import main
from channels.keyfile import read_key


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in argv else out), err


def test_status_new_account_faucet_balance(daemon: DaemonProc, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, status, _ = run(capsys, "devnet", "status", "--devnet", daemon.address, "--json")
    assert code == 0 and status["chain_id"] == 1337 and status["height"] >= 1 and status["time"] > 1_600_000_000

    key_file = tmp_path / "alice.key"
    code, account, _ = run(capsys, "devnet", "new-account", "--key-file", str(key_file), "--json")
    assert code == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert account["address"] == DevnetKey(read_key(key_file)).address.hex()
    code, _, err = run(capsys, "devnet", "new-account", "--key-file", str(key_file))
    assert code == 1 and "refusing to overwrite" in err  # a lost key is lost money

    dd = str(daemon.data_dir)
    code, paid, _ = run(capsys, "devnet", "faucet", "--data-dir", dd, "--to", str(key_file), "--amount", "50", "--json")
    assert code == 0 and paid["balance"] == 50 and paid["to"] == account["address"]
    code, bal, _ = run(capsys, "devnet", "balance", "--data-dir", dd, account["address"], "--json")
    assert code == 0 and bal == {"address": account["address"], "balances": {"native": 50}}
    code, text, _ = run(capsys, "devnet", "balance", "--devnet", daemon.address, account["address"])
    assert code == 0 and "native" in str(text)

    bob = DevnetKey.from_label("cli-bob").address.hex()
    code, sent, _ = run(capsys, "devnet", "transfer", "--data-dir", dd, "--key-file", str(key_file), "--to", bob,
                        "--amount", "20", "--json")
    assert code == 0 and sent["balance"] == 30
    code, _, _ = run(capsys, "devnet", "create-token", "--data-dir", dd, "--key-file", str(key_file),
                     "--asset", "CLI", "--json")
    assert code == 0
    code, paid, _ = run(capsys, "devnet", "faucet", "--data-dir", dd, "--to", bob, "--amount", "5", "--asset", "CLI",
                        "--json")
    assert code == 0 and paid["balance"] == 5


def test_errors_are_one_line_and_exit_1(daemon: DaemonProc, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    bob = DevnetKey.from_label("cli-bob").address.hex()
    code, _, err = run(capsys, "devnet", "faucet", "--devnet", daemon.address, "--to", bob, "--amount", "1",
                       "--asset", "NOPE")
    assert code == 1 and err.startswith("error:") and "NOPE" in err and "Traceback" not in err
    code, _, err = run(capsys, "devnet", "status", "--data-dir", str(tmp_path))
    assert code == 1 and "no devnet is running" in err
    code, _, err = run(capsys, "devnet", "balance", "--devnet", daemon.address, "not-an-account")
    assert code == 1 and "neither" in err
