"""Models of the `datasets` app (see SPEC §1 for what it owns)."""
