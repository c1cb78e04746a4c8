"""Cursor pagination: stable pages over tables that grow while they are read."""

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Newest first by id: unique and never changing, so no row is seen twice."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500
