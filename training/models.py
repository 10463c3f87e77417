"""Models of the `training` app (see SPEC §1 for what it owns)."""
