"""Names the CLI needs without importing the tower, trio or libp2p (``channels --help`` stays fast)."""

DB_FILE, IDENTITY_FILE, L1_KEY_FILE = "tower.db", "identity.key", "l1.key"
ADDR_FILE, LOCK_FILE, PID_FILE = "tower.addr", "tower.lock", "tower.pid"
