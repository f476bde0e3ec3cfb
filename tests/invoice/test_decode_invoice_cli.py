"""``channels decode-invoice`` as a user runs it: no node, every field, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from channels.crypto import SigningKey, sha256
from channels.frontend.cli import main
from channels.invoice import HintHop, make_invoice, peer_id_of
from tests.procs import CLI, ENV, REPO

ALICE = SigningKey.from_label("alice/libp2p")
KEYS = {"payee", "l1_account", "amount", "asset", "payment_hash", "description", "expiry", "expires_at",
        "route_hints", "features", "valid_signature"}
HOP = HintHop(peer_id=peer_id_of(SigningKey.from_label("bob/libp2p").public_key), channel_ref=sha256(b"c"),
              fee_base=1, fee_ppm=100, expiry_delta=40)
TEXT, INVOICE = make_invoice(ALICE, chain_id=1337, l1_account=bytes(range(32)), preimage=sha256(b"p"),
                             payment_secret=sha256(b"s"), timestamp=1_767_225_600, amount=2**200,
                             description="tea for two", route_hints=((HOP,),), features=frozenset({1}))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=ENV, cwd=REPO)


def test_a_good_invoice_prints_every_field_as_json() -> None:
    done = run("decode-invoice", TEXT, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert KEYS <= set(out)
    assert out["payee"] == peer_id_of(ALICE.public_key)
    assert out["amount"] == 2**200 and out["asset"] == "native"
    assert out["payment_hash"] == sha256(sha256(b"p")).hex()
    assert out["l1_account"] == bytes(range(32)).hex()
    assert out["description"] == "tea for two"
    assert (out["expiry"], out["expires_at"]) == (3600, 1_767_225_600 + 3600)
    assert out["route_hints"] == [[HOP.to_json()]]
    assert out["features"] == [1]
    assert out["valid_signature"] is True


@pytest.mark.parametrize("bad", [TEXT[:-1] + ("q" if TEXT[-1] != "q" else "p"), "hello", TEXT + "x" * 3000])
def test_a_bad_invoice_is_one_error_line_and_exit_1(bad: str) -> None:
    done = run("decode-invoice", bad)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert done.stdout == ""


def test_the_human_output_names_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode-invoice", TEXT]) == 0
    out = capsys.readouterr().out
    for key in KEYS:
        assert f"{key}:" in out
    assert f"amount: {2**200} native" in out and "multipart" in out and "valid_signature: true" in out


def test_a_forged_invoice_is_refused_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    from channels.invoice.invoice import DEVNET, assemble, unsigned_payload

    forged = assemble(DEVNET, unsigned_payload(INVOICE), SigningKey.from_label("mallory"))
    assert main(["decode-invoice", forged, "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: the signature does not verify")


def test_decode_invoice_needs_no_libp2p_or_trio() -> None:
    probe = ("import sys; from channels.frontend.cli import main; code = main(sys.argv[1:]); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('libp2p', 'trio')), code)")
    done = subprocess.run([sys.executable, "-c", probe, "decode-invoice", TEXT, "--json"], capture_output=True,
                          text=True, timeout=60, env=ENV, cwd=REPO)
    assert done.stdout.strip().endswith("[] 0"), done.stdout + done.stderr
