from conversations.admin import conversation, generation, scaffolding  # noqa: F401
