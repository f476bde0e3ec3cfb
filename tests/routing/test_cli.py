"""``channels bench-route`` on a small fixture graph: the JSON keys, their ranges, one-line errors."""

from __future__ import annotations

import json
import lzma
import subprocess
import sys
from pathlib import Path

import pytest

from channels.frontend.cli import main
from tests.procs import ENV, REPO

SMALL = Path(__file__).parent / "data" / "small-graph.json"
KEYS = ("single_route_p50_ms", "single_route_p99_ms", "multipart_p50_ms", "multipart_p99_ms", "success_rate",
        "mean_fee_ppm")


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["bench-route", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_keys_in_range(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = bench(capsys, "--graph", str(SMALL), "--pairs", "30", "--seed", "3", "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert set(KEYS) <= set(report)
    for name in KEYS[:4]:
        assert 0.0 < report[name] < 5000.0, name
    assert report["single_route_p50_ms"] <= report["single_route_p99_ms"]
    assert report["multipart_p50_ms"] <= report["multipart_p99_ms"]
    assert 0.0 < report["success_rate"] <= 1.0
    assert 0.0 <= report["mean_fee_ppm"] < 1_000_000
    assert (report["pairs"], report["nodes"], report["channels"], report["seed"]) == (30, 10, 15, 3)


def test_the_same_seed_gives_the_same_outcomes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    packed = tmp_path / "small.json.xz"
    packed.write_bytes(lzma.compress(SMALL.read_bytes()))
    runs = [json.loads(bench(capsys, "--graph", str(path), "--pairs", "25", "--seed", "9", "--json")[1])
            for path in (SMALL, packed)]
    assert runs[0]["success_rate"] == runs[1]["success_rate"]
    assert runs[0]["mean_fee_ppm"] == runs[1]["mean_fee_ppm"]


def test_human_output_prints_the_same_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = bench(capsys, "--graph", str(SMALL), "--pairs", "5")
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert code == 0 and list(lines)[:6] == list(KEYS)
    assert 0.0 <= float(lines["success_rate"]) <= 1.0 and lines["seed"] == "1"


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"channels": "no"}')
    code, out, err = bench(capsys, "--graph", str(bad))
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "channels" in err
    code, _, err = bench(capsys, "--graph", str(tmp_path / "missing.json.xz"))
    assert code == 1 and "does not exist" in err
    with pytest.raises(SystemExit) as exited:
        main(["bench-route", "--graph", str(SMALL), "--pairs", "0"])
    assert exited.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_the_command_runs_as_a_program() -> None:
    done = subprocess.run([sys.executable, "-m", "channels", "bench-route", "--graph", str(SMALL), "--pairs", "3",
                           "--json"], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert set(KEYS) <= set(json.loads(done.stdout))
