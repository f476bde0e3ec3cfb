"""The watchtower: a daemon that guards the channels of clients who go offline (proto/07-watchtower.md).

``core`` decides (pure), ``store`` persists (SQLite), ``protocol`` is the wire, ``daemon`` is
the thin shell that serves clients and follows the L1, and ``client`` is what a node calls to
hand a tower an appointment. ARCHITECTURE section 7 says how they fit together.
"""
