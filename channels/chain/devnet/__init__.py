"""The embedded devnet L1: Ed25519 accounts, tokens, blocks and the adjudicator."""
