from conversations.admin import generation, scaffolding  # noqa: F401
