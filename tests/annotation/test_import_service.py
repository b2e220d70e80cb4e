"""Writing imports: all or nothing, duplicates against the project, batched writes."""
from __future__ import annotations

import io
import json

import pytest

from annotation.importers import ImportFailed, ImportSource, load_hh_rlhf_sample
from annotation.models import Item, Response
from annotation.services_io import create_parsed_items, import_items

pytestmark = pytest.mark.django_db


def jsonl(rows: list[object]) -> ImportSource:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    return ImportSource.from_file(io.BytesIO(text.encode()), name="items.jsonl")


def rows(n: int, start: int = 0, k: int = 3) -> list[dict[str, object]]:
    return [{"id": f"new-{i}", "prompt": f"Prompt {i}", "responses": [f"answer {i}.{j}" for j in range(k)]}
            for i in range(start, start + n)]


def test_import_creates_items_with_responses_in_order(project):
    report = import_items(project=project, source=jsonl(rows(2)))
    assert report.created == 2
    item = Item.objects.get(project=project, external_id="new-1")
    assert item.prompt == "Prompt 1"
    assert list(item.responses.values_list("response_id", "text", "position")) == [
        ("r1", "answer 1.0", 0), ("r2", "answer 1.1", 1), ("r3", "answer 1.2", 2)]


def test_one_bad_row_at_the_end_and_nothing_is_imported(project):
    before = Item.objects.count(), Response.objects.count()
    bad = rows(600) + [{"id": "last", "prompt": "x", "responses": ["lonely"]}]
    with pytest.raises(ImportFailed) as caught:
        import_items(project=project, source=jsonl(bad), batch_size=100)
    assert str(caught.value.errors[0]) == "line 601, field 'responses': needs 2 to 16 responses, got 1"
    assert (Item.objects.count(), Response.objects.count()) == before


def test_id_already_in_project_is_an_error_naming_the_line(project):
    with pytest.raises(ImportFailed) as caught:
        import_items(project=project, source=jsonl([*rows(1), {"id": "item-1", "prompt": "x", "responses": ["a", "b"]}]))
    assert [str(e) for e in caught.value.errors] == ["line 2, field 'id': item 'item-1' already exists in this project"]
    assert not Item.objects.filter(external_id="new-0").exists()
    assert Item.objects.get(project=project, external_id="item-1").prompt == "Question 1?"  # untouched


def test_skip_existing_leaves_them_out_and_counts_them(project):
    source = jsonl([*rows(2), {"id": "item-1", "prompt": "changed", "responses": ["a", "b"]}])
    report = import_items(project=project, source=source, skip_existing=True)
    assert (report.created, report.skipped_existing, report.skipped_ids) == (2, 1, ["item-1"])
    assert Item.objects.get(project=project, external_id="item-1").prompt == "Question 1?"
    # Re-running the same file is then harmless.
    again = import_items(project=project, source=source, skip_existing=True)
    assert (again.created, again.skipped_existing) == (0, 3)


def test_same_external_id_in_another_project_is_fine(project, owner):
    from annotation.services import create_project

    other = create_project(owner=owner, name="Other")
    assert import_items(project=other, source=jsonl([{"id": "item-1", "prompt": "x", "responses": ["a", "b"]}])).created == 1


def test_empty_file_is_an_error(project):
    with pytest.raises(ImportFailed, match="'items.jsonl' contains no items"):
        import_items(project=project, source=jsonl(["", "  "]))


def test_large_import_costs_a_few_queries_per_batch_not_per_row(project, django_assert_max_num_queries):
    # 2,000 items and 8,000 responses: one query per row would be 10,000. Per batch of 500 there
    # is one id check, then multi-row inserts (SQLite caps a statement at 999 parameters, so
    # Django splits them into about 60 statements there; PostgreSQL needs fewer).
    with django_assert_max_num_queries(100):
        report = import_items(project=project, source=jsonl(rows(2000, k=4)), batch_size=500)
    assert report.created == 2000
    assert Response.objects.filter(item__project=project).count() == 3 * 4 + 2000 * 4


def test_many_errors_are_capped(project):
    bad = [{"id": f"b{i}", "prompt": "x", "responses": []} for i in range(80)]
    with pytest.raises(ImportFailed) as caught:
        import_items(project=project, source=jsonl(bad))
    assert len(caught.value.errors) == 50 and caught.value.truncated


def test_hh_rlhf_sample_into_a_demo_project(project):
    created = create_parsed_items(project=project, items=load_hh_rlhf_sample("data/hh-rlhf/harmless-base_test.jsonl.gz", 40))
    assert created == 40
    item = Item.objects.filter(project=project, metadata__dataset="hh-rlhf").first()
    assert item.context and item.context[0]["role"] == "user"
    assert sorted(item.responses.values_list("source", flat=True)) == ["chosen", "rejected"]
    # Running the demo builder again adds nothing.
    assert create_parsed_items(project=project, items=load_hh_rlhf_sample("data/hh-rlhf/harmless-base_test.jsonl.gz", 40)) == 0


def test_whole_hh_rlhf_file_is_refused_naming_its_bad_lines(project):
    with pytest.raises(ImportFailed) as caught:
        import_items(project=project, source=ImportSource.from_path("data/hh-rlhf/harmless-base_test.jsonl.gz"))
    assert [e.line for e in caught.value.errors] == [87, 517, 926, 1104, 1255, 1689, 1951, 1953, 2037]
    assert Item.objects.filter(project=project).count() == 3


def test_skip_invalid_imports_the_rest_of_the_hh_rlhf_file_and_reports_each_bad_line(project):
    source = ImportSource.from_path("data/hh-rlhf/harmless-base_test.jsonl.gz")
    report = import_items(project=project, source=source, skip_invalid=True)
    assert [e.line for e in report.invalid] == [87, 517, 926, 1104, 1255, 1689, 1951, 1953, 2037]
    assert report.skipped_invalid == 9 and all(e.field and e.message for e in report.invalid)
    assert report.created == Item.objects.filter(project=project).count() - 3 > 2000
    assert report.as_dict()["invalid"][0]["line"] == 87
    assert "9 invalid rows skipped (first: line 87" in report.summary()


def test_skip_invalid_still_fails_when_no_row_is_valid(project):
    with pytest.raises(ImportFailed) as caught:
        import_items(project=project, source=jsonl([{"prompt": "p", "responses": ["only one"]}, "{broken"]),
                     skip_invalid=True)
    assert [e.line for e in caught.value.errors] == [1, 2]
    assert Item.objects.filter(project=project).count() == 3


def test_skip_invalid_keeps_file_level_errors_fatal(project):
    with pytest.raises(ImportFailed):
        import_items(project=project, source=ImportSource.from_file(io.BytesIO(b"not parquet"), name="items.parquet"),
                     skip_invalid=True)


def test_skip_invalid_leaves_out_a_pair_with_equal_answers_and_names_its_line(project):
    rows = [{"id": "ok", "prompt": "Boil an egg?", "chosen": "Eight minutes.", "rejected": "Raw."},
            {"id": "eq", "prompt": "Boil an egg?", "chosen": "Eight minutes.", "rejected": "Eight minutes."}]
    report = import_items(project=project, source=jsonl(rows), skip_invalid=True)
    assert report.created == 1 and [(e.line, e.field) for e in report.invalid] == [(2, "rejected")]
    assert not Item.objects.filter(project=project, external_id="eq").exists()
