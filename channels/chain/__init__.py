"""L1 backends behind small Protocol interfaces (ARCHITECTURE section 4)."""
