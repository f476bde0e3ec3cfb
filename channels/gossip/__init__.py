"""Gossip of the public channel graph (proto/08-gossip.md): signed node and channel
announcements and channel updates over gossipsub, checked against the L1, kept in their own
SQLite file, synced to a new node from the first peer it connects to.

``messages`` (pure encodings), ``validate`` (``GossipState``: the rules), ``graph_store``
(``GraphStore``: the file) and ``service`` (``GossipService``: the I/O) are imported from
their modules; this package imports none of them, so ``channels.gossip.messages`` stays light.
"""
