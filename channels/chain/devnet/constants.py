"""Names and defaults of the devnet that the CLI needs without importing the ledger or
libp2p (``channels --help`` and the node's commands stay fast)."""

DB_FILE, IDENTITY_FILE, ADDR_FILE, LOCK_FILE = "devnet.db", "identity.key", "devnet.addr", "devnet.lock"
PID_FILE = "devnet.pid"  # the daemon's pid while it holds LOCK_FILE (``channels devnet stop``)
DEFAULT_CHAIN_ID = 1337
