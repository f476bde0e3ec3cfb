"""L1 backends behind small Protocol interfaces (DESIGN section 4)."""
