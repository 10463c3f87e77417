from conversations.admin import scaffolding  # noqa: F401
