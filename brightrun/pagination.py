"""API pagination. Kept apart from ``brightrun.api`` because DRF imports it while loading
its own generic views (importing viewsets here would be circular)."""

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """LimitOffset: default 50 rows, at most 500 per page."""

    default_limit = 50
    max_limit = 500
