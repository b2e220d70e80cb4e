"""Raw ranking export: the contract, demographics consent, filters, formats and streaming."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.exporters import (
    ExportError,
    ExportFilter,
    export_jsonl,
    export_records,
    write_parquet,
)
from annotation.models import AnnotatorProfile, Item, Project, Ranking, Rater
from annotation.services import rater_for_user, record_ranking, synthetic_rater

pytestmark = pytest.mark.django_db

PERSONA = {"id": "p-7", "description": "A retired teacher from Lyon", "attributes": {"age": 67, "nationality": "FR"}}
CONTRACT_KEYS = ["project", "item", "prompt", "context", "responses", "rater", "ranking", "shown_order", "rationale", "flags",
                 "seconds", "created_at"]


@pytest.fixture
def judged(project, annotator, annotator2):
    """Item 0 ranked by annie (with a profile), bob (no profile) and a synthetic persona."""
    AnnotatorProfile.objects.create(user=annotator, age_band="25-34", country="FR", gender="woman",
                                    consented_fields=["age_band", "country"])
    item = Item.objects.get(project=project, external_id="item-0")
    record_ranking(item=item, rater=rater_for_user(annotator), order=[["r3"], ["r1", "r4"], ["r2"]],
                   shown_order=["r2", "r3", "r1", "r4"], rationale="r3 is clearest", flags=["harmful"], seconds=12.4)
    record_ranking(item=item, rater=rater_for_user(annotator2), order=[["r1"], ["r2"], ["r3"], ["r4"]])
    record_ranking(item=item, rater=synthetic_rater(persona=PERSONA, model="fake:tiny"),
                   order=[["r4"], ["r3"], ["r2"], ["r1"]], shown_order=["r4", "r3", "r2", "r1"])
    return project


def lines(project: Project, **params: str) -> list[dict]:
    return [json.loads(line) for line in export_jsonl(project, ExportFilter.from_params(params))]


def by_rater(records: list[dict]) -> dict[str, dict]:
    return {r["rater"]["id"]: r for r in records}


def test_exported_line_matches_the_contract(judged, annotator):
    records = lines(judged)
    assert len(records) == 3
    human = by_rater(records)[f"user:{annotator.pk}"]
    assert list(human) == CONTRACT_KEYS
    assert human["project"] == str(judged.public_id)
    assert human["item"] == "item-0" and human["prompt"] == "Question 0?"
    assert human["responses"] == [{"id": f"r{k}", "text": f"Answer {k} to 0", "source": "demo"} for k in range(1, 5)]
    assert human["rater"] == {"id": f"user:{annotator.pk}", "kind": "human", "profile": None, "persona": None,
                              "model": None}
    assert human["ranking"] == [["r3"], ["r1", "r4"], ["r2"]]
    assert human["shown_order"] == ["r2", "r3", "r1", "r4"]
    assert (human["rationale"], human["flags"], human["seconds"]) == ("r3 is clearest", ["harmful"], 12.4)
    assert datetime.fromisoformat(human["created_at"]).tzinfo is not None


def test_synthetic_rater_carries_persona_and_model(judged):
    synthetic = by_rater(lines(judged))["persona:p-7@fake:tiny"]
    assert synthetic["rater"] == {"id": "persona:p-7@fake:tiny", "kind": "synthetic", "profile": None,
                                  "persona": PERSONA, "model": "fake:tiny"}
    assert (synthetic["rationale"], synthetic["flags"], synthetic["seconds"]) == (None, [], None)


def test_demographics_only_with_individual_consent_setting_and_only_consented_fields(judged, annotator, annotator2):
    for setting in (Project.DemographicsExport.NONE, Project.DemographicsExport.AGGREGATE):
        Project.objects.filter(pk=judged.pk).update(demographics_export=setting)
        judged.refresh_from_db()
        assert all(r["rater"]["profile"] is None for r in lines(judged)), setting
    Project.objects.filter(pk=judged.pk).update(demographics_export=Project.DemographicsExport.INDIVIDUAL)
    judged.refresh_from_db()
    records = by_rater(lines(judged))
    # "gender" has a value but no consent: it never leaves the database.
    assert records[f"user:{annotator.pk}"]["rater"]["profile"] == {"age_band": "25-34", "country": "FR"}
    assert records[f"user:{annotator2.pk}"]["rater"]["profile"] is None  # no profile at all
    assert records["persona:p-7@fake:tiny"]["rater"]["profile"] is None


def test_rater_kind_filter(judged):
    assert {r["rater"]["kind"] for r in lines(judged, rater_kind="human")} == {"human"}
    assert len(lines(judged, rater_kind="human")) == 2
    assert [r["rater"]["kind"] for r in lines(judged, rater_kind="synthetic")] == ["synthetic"]
    assert len(lines(judged, rater_kind="all")) == 3


def test_date_range_filter(judged, annotator):
    human = Ranking.objects.get(rater__user=annotator)
    Ranking.objects.filter(pk=human.pk).update(created_at=datetime(2026, 1, 15, 18, 0, tzinfo=UTC))
    Ranking.objects.exclude(pk=human.pk).update(created_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    assert [r["rater"]["id"] for r in lines(judged, until="2026-01-15")] == [f"user:{annotator.pk}"]  # whole day
    assert lines(judged, until="2026-01-15T18:00:00Z") == []  # a datetime `until` is exclusive
    assert len(lines(judged, since="2026-01-16")) == 2
    assert len(lines(judged, since="2026-01-15T18:00:00+00:00", until="2026-03-01")) == 3


def test_current_only_by_default_all_versions_on_request(judged, annotator):
    item = Item.objects.get(project=judged, external_id="item-0")
    record_ranking(item=item, rater=rater_for_user(annotator), order=[["r1"], ["r2"], ["r3"], ["r4"]])
    mine = [r for r in lines(judged) if r["rater"]["id"] == f"user:{annotator.pk}"]
    assert [r["ranking"] for r in mine] == [[["r1"], ["r2"], ["r3"], ["r4"]]]
    every = [r for r in lines(judged, versions="all") if r["rater"]["id"] == f"user:{annotator.pk}"]
    assert [r["ranking"] for r in every] == [[["r3"], ["r1", "r4"], ["r2"]], [["r1"], ["r2"], ["r3"], ["r4"]]]


@pytest.mark.parametrize(("params", "message"), [
    ({"rater_kind": "robots"}, "rater_kind: 'robots' is not one of all, human, synthetic"),
    ({"since": "2026-13-01"}, "since: '2026-13-01' is not an ISO-8601 date or datetime"),
    ({"until": "last week"}, "until: 'last week' is not an ISO-8601 date or datetime"),
    ({"versions": "some"}, "versions: 'some' is not one of current, all"),
])
def test_bad_filter_names_the_parameter(params, message):
    with pytest.raises(ExportError, match=message):
        ExportFilter.from_params(params)


def test_other_projects_rankings_are_not_exported(judged, owner):
    from annotation.services import create_item, create_project

    other = create_project(owner=owner, name="Other")
    item = create_item(project=other, external_id="x", prompt="?", responses=[{"id": "a", "text": "A"},
                                                                              {"id": "b", "text": "B"}])
    record_ranking(item=item, rater=synthetic_rater(persona=PERSONA, model="fake:tiny"), order=[["a"], ["b"]])
    assert {r["item"] for r in lines(judged)} == {"item-0"}
    assert [r["item"] for r in lines(other)] == ["x"]


# ---------------------------------------------------------------- streaming


def test_export_streams_in_chunks_with_one_response_query_per_chunk(project):
    # 1,200 rankings by 400 synthetic raters on 3 items, exported 100 at a time.
    raters = Rater.objects.bulk_create(
        Rater(kind=Rater.Kind.SYNTHETIC, persona={"id": f"p{n}"}, model="fake:m", key=f"persona:p{n}@fake:m")
        for n in range(400))
    items = list(Item.objects.filter(project=project))
    Ranking.objects.bulk_create(
        Ranking(item=item, rater=rater, order=[["r1"], ["r2"], ["r3"], ["r4"]], shown_order=["r1", "r2", "r3", "r4"])
        for item in items for rater in raters)
    stream = export_jsonl(project, ExportFilter(), chunk_size=100)
    with CaptureQueriesContext(connection) as queries:
        first = next(stream)
        response_queries_before = sum("annotation_response" in q["sql"] for q in queries.captured_queries)
        rest = list(stream)
    assert json.loads(first)["item"] == "item-0"
    # The first line came out after reading only the first chunk's responses, not the whole project.
    assert response_queries_before == 1
    assert len(rest) == 1199
    assert sum("annotation_response" in q["sql"] for q in queries.captured_queries) == 12
    assert sum("annotation_ranking" in q["sql"] for q in queries.captured_queries) == 1


# ---------------------------------------------------------------- formats


def test_parquet_holds_the_same_records_in_row_groups(judged, tmp_path):
    path = tmp_path / "r.parquet"
    assert write_parquet(judged, ExportFilter(), path, chunk_size=2) == 3
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_row_groups == 2
    rows = parquet.read().to_pylist()
    records = list(export_records(judged, ExportFilter()))
    assert [r["ranking"] for r in rows] == [r["ranking"] for r in records]
    synthetic = next(r for r in rows if r["rater"]["kind"] == "synthetic")
    assert json.loads(synthetic["rater"]["persona"]) == PERSONA
    assert synthetic["responses"][0] == {"id": "r1", "text": "Answer 1 to 0", "source": "demo"}


def test_earlier_chat_turns_are_exported_as_context(project, annotator, tmp_path):
    from annotation.services import create_item

    turns = [{"role": "user", "content": "Hi, can you help?"}, {"role": "assistant", "content": "Of course."}]
    item = create_item(project=project, external_id="chat", prompt="How do I boil an egg?", context=turns,
                       responses=[{"id": "a", "text": "Boil it."}, {"id": "b", "text": "Ten minutes in water."}])
    record_ranking(item=item, rater=rater_for_user(annotator), order=[["b"], ["a"]])
    (chat,) = [r for r in lines(project) if r["item"] == "chat"]
    assert (chat["prompt"], chat["context"]) == ("How do I boil an egg?", turns)
    write_parquet(project, ExportFilter(), tmp_path / "c.parquet")
    (row,) = [r for r in pq.read_table(tmp_path / "c.parquet").to_pylist() if r["item"] == "chat"]
    assert row["context"] == turns


def test_empty_export_is_a_valid_parquet_file(project, tmp_path):
    assert write_parquet(project, ExportFilter(), tmp_path / "e.parquet") == 0
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0


# ---------------------------------------------------------------- API, download page, command


def api_export(project: Project) -> str:
    return f"/api/v1/projects/{project.public_id}/export/"


def test_api_jsonl_is_streamed(judged, owner):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.get(api_export(judged), {"format": "jsonl", "rater_kind": "synthetic"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    body = b"".join(response.streaming_content).decode()
    assert [json.loads(line)["rater"]["kind"] for line in body.splitlines()] == ["synthetic"]


def test_api_parquet_download(judged, owner):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.get(api_export(judged), {"format": "parquet", "rater_kind": "human"})
    assert response.status_code == 200
    assert ".parquet" in response["Content-Disposition"]
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert table.num_rows == 2


def test_api_datasets_download_is_a_zipped_save_to_disk_directory(judged, owner, tmp_path):
    import datasets

    api = APIClient()
    api.force_authenticate(owner)
    response = api.get(api_export(judged), {"format": "datasets"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        archive.extractall(tmp_path)
    (folder,) = list(tmp_path.iterdir())
    dataset = datasets.load_from_disk(str(folder))
    assert dataset.num_rows == 3
    assert sorted(dataset.column_names) == sorted(CONTRACT_KEYS)


def test_api_export_bad_parameter_is_400(judged, owner):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.get(api_export(judged), {"format": "xlsx"})
    assert response.status_code == 400
    assert response.json() == {"detail": "format: 'xlsx' is not one of jsonl, parquet, datasets"}
    assert api.get(api_export(judged), {"since": "yesterday"}).json()["detail"].startswith("since: 'yesterday'")


def test_api_export_permissions(judged, outsider, annotator, owner):
    api = APIClient()
    assert api.get(api_export(judged)).status_code == 401
    api.force_authenticate(outsider)
    assert api.get(api_export(judged)).status_code == 404
    api.force_authenticate(annotator)  # annotators never see others' rankings or demographics
    assert api.get(api_export(judged)).status_code == 403
    api.force_authenticate(owner)
    assert api.post(api_export(judged)).status_code == 405


def test_researchers_download_button(client, judged, owner, annotator, outsider):
    url = reverse("annotation-export-rankings", kwargs={"public_id": judged.public_id})
    client.force_login(owner)
    page = client.get(reverse("annotation-import-items", kwargs={"public_id": judged.public_id})).content.decode()
    assert f'action="{url}"' in page
    response = client.get(url, {"format": "jsonl", "rater_kind": "all", "versions": "current"})
    assert response.status_code == 200 and 'attachment; filename="rankings-' in response["Content-Disposition"]
    assert len(b"".join(response.streaming_content).splitlines()) == 3
    bad = client.get(url, {"format": "jsonl", "until": "soon"})
    assert bad.status_code == 400 and "until: &#x27;soon&#x27; is not an ISO-8601 date" in bad.content.decode()
    client.force_login(annotator)
    assert client.get(url, {"format": "jsonl"}).status_code == 403
    client.force_login(outsider)
    assert client.get(url, {"format": "jsonl"}).status_code == 404


def test_command_exports_each_format(judged, tmp_path):
    import datasets

    pid = str(judged.public_id)
    call_command("export_rankings", project=pid, format="jsonl", out=str(tmp_path / "r.jsonl"), stdout=io.StringIO())
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 3
    call_command("export_rankings", project=pid, format="parquet", out=str(tmp_path / "r.parquet"),
                 rater_kind="human", stdout=io.StringIO())
    assert pq.read_table(tmp_path / "r.parquet").num_rows == 2
    out = io.StringIO()
    call_command("export_rankings", project=pid, format="datasets", out=str(tmp_path / "ds"), stdout=out)
    assert "Exported 3 rankings" in out.getvalue()
    assert datasets.load_from_disk(str(tmp_path / "ds")).num_rows == 3
    stdout = io.StringIO()
    call_command("export_rankings", project=pid, format="jsonl", out="-", rater_kind="synthetic", stdout=stdout)
    assert json.loads(stdout.getvalue())["rater"]["kind"] == "synthetic"


def test_command_bad_arguments(judged, tmp_path):
    with pytest.raises(CommandError, match="--since: 'june' is not an ISO-8601 date"):
        call_command("export_rankings", project=str(judged.public_id), out=str(tmp_path / "x"), since="june")
    with pytest.raises(CommandError, match="--project: no project with public id"):
        call_command("export_rankings", project="00000000-0000-0000-0000-000000000000", out=str(tmp_path / "x"))


def test_an_empty_datasets_export_is_a_clear_400_not_a_server_error(judged, owner, client, tmp_path):
    """`datasets` cannot build a dataset from no rows: API, page and command say so instead."""
    params = {"format": "datasets", "since": "2999-01-01"}
    api = APIClient()
    api.force_authenticate(owner)
    response = api.get(api_export(judged), params)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("no rankings match this export")
    client.force_login(owner)
    page = client.get(reverse("annotation-export-rankings", kwargs={"public_id": judged.public_id}), params)
    assert page.status_code == 400 and "no rankings match this export" in page.content.decode()
    with pytest.raises(CommandError, match="no rankings match this export"):
        call_command("export_rankings", project=str(judged.public_id), format="datasets", out=str(tmp_path / "ds"),
                     since="2999-01-01")
    # The other formats export an empty file, as before.
    empty = api.get(api_export(judged), {**params, "format": "parquet"})
    assert empty.status_code == 200
    assert pq.read_table(io.BytesIO(b"".join(empty.streaming_content))).num_rows == 0
