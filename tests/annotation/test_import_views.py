"""Import from the researcher's upload page, the API and the management command."""
from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Item

pytestmark = pytest.mark.django_db

GOOD = [{"id": "u1", "prompt": "Up?", "responses": ["Yes", "No"]},
        {"id": "u2", "prompt": "Down?", "responses": ["Maybe", "Never", "Always"]}]


def upload(rows: list[object], name: str = "items.jsonl") -> SimpleUploadedFile:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    return SimpleUploadedFile(name, text.encode(), content_type="application/octet-stream")


def page_url(project) -> str:
    return reverse("annotation-import-items", kwargs={"public_id": project.public_id})


def api_url(project) -> str:
    return f"/api/v1/projects/{project.public_id}/import/"


# ---------------------------------------------------------------- upload page


def test_researcher_sees_the_upload_page(client, owner, project):
    client.force_login(owner)
    response = client.get(page_url(project))
    assert response.status_code == 200
    assert b'type="file"' in response.content and b"Export rankings" in response.content


def test_upload_imports_and_says_how_many(client, owner, project):
    client.force_login(owner)
    response = client.post(page_url(project), {"file": upload(GOOD)}, follow=True)
    assert "Imported 2 items from items.jsonl." in response.content.decode()
    assert Item.objects.filter(project=project, external_id__in=["u1", "u2"]).count() == 2


def test_bad_upload_lists_errors_and_imports_nothing(client, owner, project):
    client.force_login(owner)
    response = client.post(page_url(project), {"file": upload([*GOOD, {"id": "u3", "prompt": "x", "responses": ["a"]}])})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was imported." in body
    assert "line 3, field &#x27;responses&#x27;: needs 2 to 16 responses, got 1" in body
    assert Item.objects.filter(project=project).count() == 3


def test_upload_can_skip_invalid_rows_and_says_which(client, owner, project):
    client.force_login(owner)
    bad = {"id": "u3", "prompt": "x", "responses": ["a"]}
    response = client.post(page_url(project), {"file": upload([*GOOD, bad]), "skip_invalid": "on"}, follow=True)
    body = response.content.decode()
    assert "Imported 2 items from items.jsonl, 1 invalid row skipped (first: line 3, field" in body
    assert not Item.objects.filter(project=project, external_id="u3").exists()


def test_htmx_upload_error_swaps_the_form_fragment(client, owner, project):
    client.force_login(owner)
    response = client.post(page_url(project), {"file": upload(["{oops"])}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="import-form">')
    assert "line 1: malformed JSON" in body and "<html" not in body


def test_htmx_upload_success_redirects_the_page(client, owner, project):
    client.force_login(owner)
    response = client.post(page_url(project), {"file": upload(GOOD)}, headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == page_url(project)


def test_unknown_file_type_on_upload(client, owner, project):
    client.force_login(owner)
    response = client.post(page_url(project), {"file": upload(GOOD, name="items.xlsx")})
    assert response.status_code == 400
    assert "unreadable file type &#x27;.xlsx&#x27;" in response.content.decode()


def test_upload_page_outsider_404_annotator_403_wrong_method_405(client, outsider, annotator, owner, project):
    client.force_login(outsider)
    assert client.get(page_url(project)).status_code == 404
    assert client.post(page_url(project), {"file": upload(GOOD)}).status_code == 404
    client.force_login(annotator)
    assert client.post(page_url(project), {"file": upload(GOOD)}).status_code == 403
    client.force_login(owner)
    assert client.put(page_url(project)).status_code == 405
    assert Item.objects.filter(project=project).count() == 3


def test_upload_page_needs_login(client, project):
    response = client.get(page_url(project))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# ---------------------------------------------------------------- API


def test_api_import_multipart_csv(owner, project):
    api = APIClient()
    api.force_authenticate(owner)
    csv_file = SimpleUploadedFile("items.csv", b"id,prompt,response_1,response_2\nc1,Hi?,Hello,Go away\n")
    response = api.post(api_url(project), {"file": csv_file}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 1, "skipped_existing": 0, "skipped_ids": [], "skipped_invalid": 0,
                               "invalid": []}
    assert Item.objects.get(project=project, external_id="c1").responses.count() == 2


def test_api_import_skip_invalid_lists_the_rows_left_out(owner, project):
    api = APIClient()
    api.force_authenticate(owner)
    body = {"items": [*GOOD, {"id": "u3", "prompt": "x", "responses": ["a"]}], "skip_invalid": True}
    response = api.post(api_url(project), body, format="json")
    assert response.status_code == 201, response.content
    report = response.json()
    assert (report["created"], report["skipped_invalid"]) == (2, 1)
    assert (report["invalid"][0]["line"], report["invalid"][0]["field"]) == (3, "responses")


def test_api_import_multipart_parquet(owner, project):
    api = APIClient()
    api.force_authenticate(owner)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(GOOD), buffer)
    response = api.post(api_url(project), {"file": SimpleUploadedFile("items.parquet", buffer.getvalue())},
                        format="multipart")
    assert response.status_code == 201 and response.json()["created"] == 2


def test_api_import_json_body(owner, project):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.post(api_url(project), {"items": GOOD}, format="json")
    assert response.status_code == 201 and response.json()["created"] == 2
    # A bare list works too, and an id already present is reported per item.
    again = api.post(api_url(project), GOOD[:1], format="json")
    assert again.status_code == 400
    assert again.json()["errors"][0] == {
        "line": 1, "unit": "item", "field": "id", "message": "item 'u1' already exists in this project",
        "error": "item 1, field 'id': item 'u1' already exists in this project"}


def test_api_import_skip_existing(owner, project):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.post(api_url(project), {"items": [*GOOD, {"id": "item-0", "prompt": "x", "responses": ["a", "b"]}],
                                           "skip_existing": True}, format="json")
    assert response.status_code == 201
    assert response.json()["skipped_existing"] == 1 and response.json()["created"] == 2


def test_api_import_errors_change_nothing(owner, project):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.post(api_url(project), {"items": [GOOD[0], {"id": "bad", "prompt": "x", "responses": ["", "b"]}]},
                        format="json")
    assert response.status_code == 400
    assert [e["error"] for e in response.json()["errors"]] == ["item 2, field 'responses[0]': is empty"]
    assert not Item.objects.filter(external_id="u1").exists()


def test_api_import_unknown_file_type(owner, project):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.post(api_url(project), {"file": upload(GOOD, name="items.xlsx")}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("unreadable file type '.xlsx' of 'items.xlsx'")


def test_api_import_body_without_items(owner, project):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.post(api_url(project), {"rows": []}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "items"


def test_api_import_permissions(outsider, annotator, owner, project):
    api = APIClient()
    assert api.post(api_url(project), {"items": GOOD}, format="json").status_code == 401
    api.force_authenticate(outsider)
    assert api.post(api_url(project), {"items": GOOD}, format="json").status_code == 404
    api.force_authenticate(annotator)
    assert api.post(api_url(project), {"items": GOOD}, format="json").status_code == 403
    api.force_authenticate(owner)
    assert api.get(api_url(project)).status_code == 405
    assert Item.objects.filter(project=project).count() == 3


# ---------------------------------------------------------------- management command


def test_command_imports_a_datasets_directory(tmp_path, project):
    import datasets

    datasets.Dataset.from_list(GOOD).save_to_disk(tmp_path / "ds")
    out = io.StringIO()
    call_command("import_items", str(tmp_path / "ds"), project=str(project.public_id), stdout=out)
    assert "Imported 2 items into 'Demo'." in out.getvalue()


def test_command_reports_every_error_and_fails(tmp_path, project):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD[0]) + "\n{broken\n" + json.dumps({"prompt": "x"}) + "\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing imported: 2 error"):
        call_command("import_items", str(path), project=str(project.public_id), stderr=err)
    assert "line 2: malformed JSON" in err.getvalue()
    assert "line 3, field 'responses': missing field" in err.getvalue()
    assert not Item.objects.filter(external_id="u1").exists()


def test_command_skip_invalid_lists_what_it_left_out(tmp_path, project):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(GOOD[0]) + "\n{broken\n" + json.dumps(GOOD[1]) + "\n")
    out, err = io.StringIO(), io.StringIO()
    call_command("import_items", str(path), project=str(project.public_id), skip_invalid=True, stdout=out, stderr=err)
    assert "skipped line 2: malformed JSON" in err.getvalue()
    assert "Imported 2 items into 'Demo', 1 invalid row skipped" in out.getvalue()


def test_command_bad_arguments(tmp_path, project):
    with pytest.raises(CommandError, match="--project: no project with public id 'nope'"):
        call_command("import_items", "x.jsonl", project="nope")
    with pytest.raises(CommandError, match="no such file or directory: 'missing.jsonl' \\(for a hub id add --format hub\\)"):
        call_command("import_items", "missing.jsonl", project=str(project.public_id))
    (tmp_path / "items.txt").write_text("hello")
    with pytest.raises(CommandError, match="unreadable file type '.txt'"):
        call_command("import_items", str(tmp_path / "items.txt"), project=str(project.public_id))
