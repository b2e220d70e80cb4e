"""Parsing and validation of item imports: every error names the line (or row) and the field."""
from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotation.importers import (
    ImportFailed,
    ImportSource,
    RowError,
    content_hash,
    detect_format,
    load_hh_rlhf_sample,
    parse_items,
)

HH_PAIR = {
    "chosen": "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: How do I boil an egg?"
              "\n\nAssistant: Put it in boiling water for 8 minutes.",
    "rejected": "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: How do I boil an egg?"
                "\n\nAssistant: Figure it out yourself.",
}


def jsonl(*rows: object) -> ImportSource:
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"
    return ImportSource.from_file(io.BytesIO(text.encode()), name="items.jsonl")


def csv_source(text: str) -> ImportSource:
    return ImportSource.from_file(io.BytesIO(text.encode()), name="items.csv")


def good(n: int = 1) -> dict[str, object]:
    return {"id": f"q{n}", "prompt": f"Question {n}?", "responses": ["Yes.", "No."]}


def only_error(source: ImportSource) -> str:
    with pytest.raises(ImportFailed) as caught:
        parse_items(source)
    assert len(caught.value.errors) == 1, [str(e) for e in caught.value.errors]
    return str(caught.value.errors[0])


# ---------------------------------------------------------------- shapes


def test_list_shape_with_strings_and_objects():
    items = parse_items(jsonl(
        good(1),
        {"id": "q2", "prompt": "Pick one", "responses": [{"id": "a", "text": "A", "source": "gpt"},
                                                         {"text": "B", "source": "llama"}, "C"]},
    ))
    assert [r.id for r in items[0].responses] == ["r1", "r2"]
    second = items[1]
    assert [(r.id, r.text, r.source) for r in second.responses] == [("a", "A", "gpt"), ("r2", "B", "llama"),
                                                                   ("r3", "C", "")]
    assert second.line == 2


def test_chat_messages_prompt_becomes_context_and_last_user_turn():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Capital of France?"}]
    (item,) = parse_items(jsonl({"prompt": messages, "responses": ["Paris", "Lyon"]}))
    assert item.prompt == "Capital of France?"
    assert item.context == messages[:3]


def test_pairwise_with_prompt_keeps_preference_in_metadata():
    (item,) = parse_items(jsonl({"id": "p1", "prompt": "Tell a joke", "chosen": "A pun.", "rejected": "No."}))
    assert [(r.id, r.text, r.source) for r in item.responses] == [("r1", "A pun.", "chosen"), ("r2", "No.", "rejected")]
    assert item.metadata["pairwise"] == {"chosen": "r1", "rejected": "r2"}


def test_hh_rlhf_pair_without_prompt_is_split_into_context_prompt_and_two_answers():
    (item,) = parse_items(jsonl(HH_PAIR))
    assert item.prompt == "How do I boil an egg?"
    assert item.context == [{"role": "user", "content": "Hi there"},
                            {"role": "assistant", "content": "Hello! How can I help?"}]
    assert [r.text for r in item.responses] == ["Put it in boiling water for 8 minutes.", "Figure it out yourself."]
    # No id in the row: a stable hash of the content, the same on every import.
    assert item.external_id == content_hash(item.context, item.prompt, [r.text for r in item.responses])
    assert parse_items(jsonl(HH_PAIR))[0].external_id == item.external_id


def test_gzipped_jsonl_and_extra_fields_kept_in_metadata():
    raw = gzip.compress((json.dumps({**good(), "category": "geo", "metadata": {"split": "dev"}}) + "\n").encode())
    (item,) = parse_items(ImportSource.from_file(io.BytesIO(raw), name="items.jsonl.gz"))
    assert item.metadata == {"category": "geo", "split": "dev"}


def test_csv_with_numbered_response_columns_and_sources():
    text = 'id,prompt,response_1,response_2,response_3,source_1,source_2,source_3,topic\n' \
           'c1,"Multi\nline?",Yes,No,,m1,m2,,misc\n'
    (item,) = parse_items(csv_source(text))
    assert item.prompt == "Multi\nline?"
    assert [(r.text, r.source) for r in item.responses] == [("Yes", "m1"), ("No", "m2")]  # empty cell: no response
    assert item.metadata == {"topic": "misc"}


def test_parquet_rows(tmp_path):
    path = tmp_path / "items.parquet"
    pq.write_table(pa.Table.from_pylist([good(1), good(2)]), path)
    assert [i.external_id for i in parse_items(ImportSource.from_path(path))] == ["q1", "q2"]


def test_datasets_directory_saved_with_save_to_disk(tmp_path):
    import datasets

    datasets.Dataset.from_list([good(1), {**good(2), "responses": ["a", "b", "c"]}]).save_to_disk(tmp_path / "ds")
    items = parse_items(ImportSource.from_path(tmp_path / "ds"))
    assert [len(i.responses) for i in items] == [2, 3]


def test_hub_id_goes_through_load_dataset_and_reports_failure_clearly():
    # Tests never reach the hub (HF_HUB_OFFLINE=1): the real code path must fail with a clear message.
    message = only_error(ImportSource.from_hub("no-such-owner/no-such-dataset-rlchf"))
    assert "could not load dataset 'no-such-owner/no-such-dataset-rlchf' from the hub" in message


def test_shipped_hh_rlhf_sample_loads_with_limit():
    items = list(load_hh_rlhf_sample("data/hh-rlhf/harmless-base_test.jsonl.gz", limit=25))
    assert len(items) == 25
    assert all(len(i.responses) == 2 and i.prompt and i.metadata["dataset"] == "hh-rlhf" for i in items)
    assert items[0].prompt == "okay some of these do not have anything to do with pens"
    assert len({i.external_id for i in items}) == 25


# ---------------------------------------------------------------- one test per error kind


def test_malformed_json_names_the_line():
    assert only_error(jsonl(good(1), '{"id": "q2", "prompt": "x",,}')).startswith("line 2: malformed JSON")


def test_missing_field_names_line_and_field():
    assert only_error(jsonl(good(1), good(2), {"id": "q3", "responses": ["a", "b"]})) == \
        "line 3, field 'prompt': missing field"


def test_missing_responses_and_missing_half_of_a_pair():
    assert "line 1, field 'responses': missing field" in only_error(jsonl({"prompt": "x"}))
    assert only_error(jsonl({"prompt": "x", "chosen": "a"})).startswith("line 1, field 'rejected': missing field")


def test_wrong_type_names_the_field():
    assert only_error(jsonl({"prompt": 42, "responses": ["a", "b"]})) == \
        "line 1, field 'prompt': must be a string or a list of chat messages, got a number"
    assert only_error(jsonl({"prompt": "x", "responses": "a, b"})) == "line 1, field 'responses': must be a list, got a string"
    assert only_error(jsonl({"prompt": "x", "responses": ["a", 7]})) == \
        "line 1, field 'responses[1]': must be a string or {id?, text, source?}, got a number"


def test_too_few_responses():
    assert only_error(jsonl(good(1), good(2), good(3), good(4), good(5), good(6),
                            {"id": "q7", "prompt": "x", "responses": ["only one"]})) == \
        "line 7, field 'responses': needs 2 to 16 responses, got 1"


def test_too_many_responses():
    assert only_error(jsonl({"prompt": "x", "responses": [f"r{i}" for i in range(17)]})) == \
        "line 1, field 'responses': needs 2 to 16 responses, got 17"


def test_empty_text():
    assert only_error(jsonl({"prompt": "x", "responses": ["ok", {"text": "   "}]})) == \
        "line 1, field 'responses[1].text': is empty"
    assert only_error(jsonl({"prompt": "  ", "responses": ["a", "b"]})) == "line 1, field 'prompt': is empty"


def test_duplicate_id_in_file_names_both_lines():
    assert only_error(jsonl(good(1), good(2), good(1))) == "line 3, field 'id': duplicate id 'q1', first used on line 1"


def test_duplicate_content_without_ids():
    row = {"prompt": "Same?", "responses": ["a", "b"]}
    assert only_error(jsonl(row, row)) == "line 2, field 'prompt': duplicate item: same prompt and responses as line 1"


def test_duplicate_response_id_within_an_item():
    assert only_error(jsonl({"prompt": "x", "responses": [{"id": "a", "text": "1"}, {"id": "a", "text": "2"}]})) == \
        "line 1, field 'responses[1].id': duplicate response id 'a'"


def test_unreadable_file_type():
    with pytest.raises(RowError, match=r"unreadable file type '.xlsx' of 'items.xlsx'; use .csv, .jsonl"):
        detect_format("items.xlsx")


def test_not_a_parquet_file():
    source = ImportSource.from_file(io.BytesIO(b"this is not parquet"), name="items.parquet")
    assert "'items.parquet' is not a readable Parquet file" in only_error(source)


def test_bad_csv_header():
    assert only_error(csv_source("question,answer_a,answer_b\nx,a,b\n")) == \
        "line 1, field 'header': needs a 'prompt' column; found question, answer_a, answer_b"
    assert only_error(csv_source("prompt,notes\nx,a\n")).startswith("line 1, field 'header': needs response columns")


def test_csv_row_with_wrong_cell_count_names_its_line():
    assert only_error(csv_source("prompt,response_1,response_2\nx,a,b\ny,a\n")) == \
        "line 3: expected 3 cells as in the header, got 2"


def test_csv_bad_json_cell():
    assert only_error(csv_source('prompt,responses\nx,"[""a"", oops]"\n')).startswith(
        "line 2, field 'responses': is not valid JSON")


def test_not_utf8_line():
    source = ImportSource.from_file(io.BytesIO(json.dumps(good()).encode() + b"\n\xff\xfe{}\n"), name="x.jsonl")
    assert only_error(source) == "line 2: is not UTF-8 text"


def test_hh_pair_that_differs_before_the_last_turn():
    pair = {"chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d",
            "rejected": "\n\nHuman: a\n\nAssistant: B"}
    assert "field 'rejected': chosen and rejected differ before their final Assistant turn" in only_error(jsonl(pair))


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "Boil an egg?", "chosen": "Eight minutes.", "rejected": "Eight minutes."},
        {"prompt": "Boil an egg?", "chosen": "Eight minutes.", "rejected": "  Eight minutes.\n"},
        {"prompt": [{"role": "user", "content": "Boil an egg?"}], "chosen": "Eight.", "rejected": "Eight."},
    ],
    ids=["same", "same-but-whitespace", "messages-prompt"],
)
def test_pairwise_row_with_equal_chosen_and_rejected_names_the_line(row):
    assert only_error(jsonl(good(1), row)) == (
        "line 2, field 'rejected': is the same text as 'chosen'; a preference pair needs two different answers"
    )


def test_hh_pair_with_equal_final_answers_names_the_line():
    same = HH_PAIR["chosen"]
    assert only_error(jsonl(good(1), good(2), {"chosen": same, "rejected": same})).startswith("line 3, field 'rejected'")


@pytest.mark.parametrize(
    "row,field",
    [({"prompt": "a\x00b", "responses": ["x", "y"]}, "prompt"),
     ({"prompt": "p", "responses": ["x", {"text": "y\x00"}]}, "responses[1].text"),
     ({"prompt": "p", "responses": ["x", "y"], "metadata": {"tags": ["ok", "\x00"]}}, "metadata.tags[1]")],
)
def test_a_nul_character_is_an_error_naming_line_and_field(row, field):
    assert only_error(jsonl(good(1), row)) == (
        f"line 2, field '{field}': contains a NUL character (\\u0000), which cannot be stored"
    )


@pytest.mark.parametrize(
    "line,expected",
    [('{"prompt": "\\ud800", "responses": ["a", "b"]}',
      "line 2, field 'prompt': contains an unpaired surrogate (such as \\ud800), which is not valid Unicode"),
     ('{"prompt": "p", "responses": ["a", "b"], "context": [{"role": "user", "content": "x\\udfff"}]}',
      "line 2, field 'context[0].content': contains an unpaired surrogate"),
     ('{"prompt": "p", "responses": ["a", "b"], "metadata": {"score": 1e999}}',
      "line 2, field 'metadata.score': is not a finite number"),
     ("[" * 100_000, "line 2: malformed JSON: nested too deeply")],
    ids=["surrogate", "surrogate-in-context", "infinity", "deep"],
)
def test_values_no_database_stores_are_errors_naming_line_and_field(line, expected):
    assert only_error(jsonl(good(1), line)).startswith(expected)


def test_parquet_errors_count_rows():
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([good(1), {"id": "q2", "prompt": "x", "responses": ["one"]}]), buffer)
    assert only_error(ImportSource.from_file(buffer, name="items.parquet")) == \
        "row 2, field 'responses': needs 2 to 16 responses, got 1"


def test_every_bad_line_is_reported_not_only_the_first():
    with pytest.raises(ImportFailed) as caught:
        parse_items(jsonl(good(1), "not json", good(3), {"prompt": "x", "responses": []}))
    assert [(e.line, e.field) for e in caught.value.errors] == [(2, None), (4, "responses")]
