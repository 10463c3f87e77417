"""Services of the conversations app, one module per area (scaffolding, acceptance, generation…)."""
