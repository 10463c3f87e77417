"""Models of the `conversations` app (see SPEC §1 for what it owns)."""
