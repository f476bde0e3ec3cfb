"""``--log-format json``: one JSON object per line, bounded like the text format; ids as hex.

The daemon's own log as a real process is checked in tests/devnet/test_start_errors.py.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from channels.core import effects as fx
from channels.core.ids import AssetId, ChannelId, PaymentId, Version
from channels.errors import ConfigError
from channels.frontend.node_daemon import LOG_FILE, setup_logging
from channels.logs import MAX_RECORD, Brief, JsonFormatter, make_formatter


def record(message: str, *args: object, exc: bool = False, name: str = "channels.node") -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom " + "y" * 50_000)
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_record_is_one_json_object_with_the_documented_keys() -> None:
    line = JsonFormatter().format(record("peer %s sent %d frames", "12D3KooWx", 3))
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message"} and "\n" not in line
    assert (entry["level"], entry["logger"]) == ("WARNING", "channels.node")
    assert entry["message"] == "peer 12D3KooWx sent 3 frames"
    assert datetime.fromisoformat(entry["time"]).utcoffset() is not None  # ISO 8601 with its zone


def test_a_traceback_goes_in_exc_and_huge_records_stay_valid_json() -> None:
    fmt = JsonFormatter(max_chars=4096)
    entry = json.loads(fmt.format(record("failed: %s", "x" * 10)))
    assert "exc" not in entry
    line = fmt.format(record("failed: %s", "\x00\n" * 20_000, exc=True))  # escapes grow the JSON
    entry = json.loads(line)
    assert len(line) <= 4096 and entry["exc"].startswith("Traceback") and "characters, cut]" in entry["exc"]
    assert entry["message"].startswith("failed: \x00\n") and entry["message"].endswith("characters, cut]")
    short = json.loads(JsonFormatter().format(record("ok", exc=True)))
    assert "ValueError: boom" in short["exc"] and len(json.dumps(short)) <= MAX_RECORD


def test_make_formatter_knows_text_and_json_only() -> None:
    text = make_formatter("text").format(record("hello"))
    assert text.endswith("WARNING channels.node: hello")
    assert json.loads(make_formatter("json").format(record("hello")))["message"] == "hello"
    with pytest.raises(ValueError, match="xml"):
        make_formatter("xml")


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was after ``setup_logging``."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_the_node_log_in_json(tmp_path: Path, root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(tmp_path, "info", log_format="json")
    opened = fx.NotifyOpened(channel_id=ChannelId(b"\x01" * 4))
    logging.getLogger("channels.node").info("channel %s: %s", "ab12", Brief(opened))
    (line,) = (tmp_path / LOG_FILE).read_text().splitlines()
    assert json.loads(line)["message"] == "channel ab12: NotifyOpened(channel_id=01010101)"
    assert json.loads(capsys.readouterr().err)["logger"] == "channels.node"  # stderr: the same lines
    with pytest.raises(ConfigError, match="log format 'yaml'"):
        setup_logging(tmp_path, "info", log_format="yaml")


def test_brief_logs_bytes_as_hex_and_stays_short() -> None:
    notice = fx.NotifyPaymentReceived(payment_id=PaymentId(b"\x00\xff" * 40), asset=AssetId("native"), amount=5,
                                      version=Version(3))
    text = str(Brief(notice))
    assert text == f"NotifyPaymentReceived(payment_id={'00ff' * 16}..., asset=native, amount=5, version=3)"
    assert "\\x" not in text and "b'" not in text
    assert str(Brief([b"\x01"] * 20)) == "[01, 01, 01, 01, 01, 01, 01, 01, ... (20 in all)]"
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    log = logging.getLogger("tests.brief")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("%s", Brief({"id": b"\xab"}))
    finally:
        log.removeHandler(handler)
    assert out.getvalue() == "{id: ab}\n"
