def register(router) -> None:
    """Register the scaffolding viewsets on the API router."""
