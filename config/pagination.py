"""The API's pagination: DRF's limit/offset with a ceiling on `limit`.

Without one, `?limit=` takes any positive integer, and one beyond 64 bits reaches the database as
an out-of-range LIMIT (an IntegrityError on SQLite, a DataError on PostgreSQL): a server error.
An offset past the end answers an empty page before any query uses it, so it needs no ceiling.
"""
from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination

MAX_PAGE_SIZE = 1000


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_PAGE_SIZE
