"""Models of the `training_files` app (see SPEC §1 for what it owns)."""
