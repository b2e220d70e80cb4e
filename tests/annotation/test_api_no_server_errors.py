"""No request reaches a user as a server error: known cases first, then schemathesis over the
whole OpenAPI schema with real object ids (PostgreSQL pass of CI)."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from config.pagination import MAX_PAGE_SIZE

pytestmark = pytest.mark.django_db

HUGE = "9" * 30  # beyond 64 bits


@pytest.mark.parametrize(
    "query",
    [f"limit={HUGE}", f"limit={2**63}", f"limit={2**63 - 1}", f"offset={HUGE}", f"limit=10&offset={2**63 - 1}",
     f"limit={HUGE}&offset={HUGE}", "limit=-1", "offset=-5", "limit=abc", "limit=0"],
)
def test_paging_parameters_of_any_size_are_never_a_server_error(project, owner, query):
    client = APIClient()
    client.force_authenticate(owner)
    for url in ("/api/v1/projects/", "/api/v1/rankings/", f"/api/v1/projects/{project.public_id}/items/"):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200, (url, query, response.status_code)


def test_a_limit_beyond_the_ceiling_gives_the_largest_page(project, owner):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from config.pagination import BoundedLimitOffsetPagination

    request = Request(APIRequestFactory().get(f"/api/v1/rankings/?limit={HUGE}"))
    assert BoundedLimitOffsetPagination().get_limit(request) == MAX_PAGE_SIZE
    client = APIClient()
    client.force_authenticate(owner)
    body = client.get(f"/api/v1/projects/{project.public_id}/items/?limit={HUGE}").json()
    assert body["count"] == 3 and len(body["results"]) == 3
