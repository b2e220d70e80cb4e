"""The OpenAPI schema and the self-hosted docs page."""
from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PATHS = [
    "/api/v1/auth/token/",
    "/api/v1/profile/",
    "/api/v1/projects/",
    "/api/v1/projects/{project_id}/",
    "/api/v1/projects/{project_id}/members/",
    "/api/v1/projects/{project_id}/progress/",
    "/api/v1/projects/{project_id}/next/",
    "/api/v1/projects/{project_id}/items/",
    "/api/v1/projects/{project_id}/items/{id}/",
    "/api/v1/assignments/{public_id}/",
    "/api/v1/assignments/{public_id}/submit/",
    "/api/v1/assignments/{public_id}/skip/",
    "/api/v1/rankings/",
    "/api/v1/rankings/{id}/",
]


def test_schema_is_openapi_3_with_every_endpoint():
    response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "rlchf API"
    assert set(PATHS) <= set(schema["paths"])
    submit = schema["paths"]["/api/v1/assignments/{public_id}/submit/"]["post"]
    assert {"200", "201", "400"} <= set(submit["responses"])
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])
    # Every $ref resolves, so a client generator can use it.
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', response.content.decode()))
    assert refs and refs <= set(schema["components"]["schemas"])


def test_docs_page_loads_only_local_assets():
    response = APIClient().get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), "external URL in docs page"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/")
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not shipped"
    assert "/api/v1/schema/" in html


def test_ranking_output_matches_its_documented_fields(owner, project, annotator):
    from annotation.services import next_assignment, submit_ranking

    submit_ranking(user=annotator, assignment=next_assignment(project=project, user=annotator),
                   order=[["r1"], ["r2"], ["r3"], ["r4"]])
    client = APIClient()
    client.force_authenticate(owner)
    listed = client.get("/api/v1/rankings/").json()["results"][0]
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    documented = schema["components"]["schemas"]["Ranking"]["properties"]
    assert set(listed) == set(documented)
    assert set(listed["rater"]) == set(schema["components"]["schemas"]["Rater"]["properties"])
    assert listed["created_at"].endswith("Z") and len(listed["submission_id"]) == 36


def test_assignment_output_matches_its_documented_fields(annotator, project):
    client = APIClient()
    client.force_authenticate(annotator)
    payload = client.post(f"/api/v1/projects/{project.public_id}/next/").json()
    schemas = client.get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"]
    assert set(payload) == set(schemas["Assignment"]["properties"])
    assert set(payload["item"]) == set(schemas["AssignmentItem"]["properties"])
    assert set(payload["responses"][0]) == set(schemas["ShownResponse"]["properties"])
    assert set(payload["settings"]) == set(schemas["RankingSettings"]["properties"])
