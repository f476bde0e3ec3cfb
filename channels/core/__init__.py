"""The sans-I/O channel core: pure, deterministic transitions (ARCHITECTURE section 3).

Nothing under this package may import trio, libp2p, sqlite3, time, random, os or
socket; a test enforces it. Clocks and randomness are passed in by the shell.
"""
