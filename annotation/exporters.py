"""Raw ranking export: one judgment per record, in the contract of ARCHITECTURE.md.

    {"project", "item", "prompt", "context", "responses": [{"id", "text", "source"}],
     "rater": {"id", "kind", "profile", "persona", "model"},
     "ranking", "shown_order", "rationale", "flags", "seconds", "created_at"}

`context` is an addition to the contract: the chat turns before `prompt` ([{role, content}], empty
for a single-turn item), without which a multi-turn item (hh-rlhf dialogues) loses what the
responses answer. Readers of the contract that ignore unknown keys are unaffected.

`project` is the project's public id, `item` the item's external id, `rater.id` the rater's key
("user:<pk>" or "persona:<id>@<model>", never a username). `rater.profile` holds the annotator's
consented demographic fields only when the project's `demographics_export` is "individual", and
is null otherwise (and for synthetic raters). A twin persona (`"twin": true`, built from an
annotator's consented fields) is held to the same rule: without "individual", its description and
attributes are null.

Records stream: rankings are read with `.iterator(chunk_size=...)`, each chunk with its items'
responses prefetched, so a large project never sits whole in memory. JSONL is produced line by
line; Parquet is written one row group per chunk. In Parquet and `datasets` the two free-form
objects `rater.profile` and `rater.persona` are JSON strings (their keys differ per rater, which
a columnar schema cannot hold); everything else keeps its shape.
"""
from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from django.db.models import QuerySet
from django.http import FileResponse, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from annotation.models import AnnotatorProfile, Project, Ranking, Rater

CHUNK_SIZE = 500
FORMATS = ("jsonl", "parquet", "datasets")
RATER_KINDS = ("all", *Rater.Kind.values)


class ExportError(ValueError):
    """A bad export parameter; the message names it."""


@dataclass(frozen=True)
class ExportFilter:
    rater_kind: str = "all"
    since: datetime | None = None
    until: datetime | None = None
    current_only: bool = True

    @classmethod
    def from_params(cls, params: Any) -> ExportFilter:
        """From query parameters: rater_kind, since, until, versions=current|all."""
        kind = params.get("rater_kind") or "all"
        if kind not in RATER_KINDS:
            raise ExportError(f"rater_kind: {kind!r} is not one of {', '.join(RATER_KINDS)}")
        versions = params.get("versions") or "current"
        if versions not in ("current", "all"):
            raise ExportError(f"versions: {versions!r} is not one of current, all")
        return cls(rater_kind=kind, since=parse_bound(params.get("since"), "since"),
                   until=parse_bound(params.get("until"), "until"), current_only=versions == "current")


def parse_bound(value: str | None, name: str) -> datetime | None:
    """An ISO-8601 date or datetime, naive meaning UTC. `since` is inclusive, `until` exclusive;
    a bare `until` date means the end of that day, so `since=2026-11-01&until=2026-11-30` is all
    of November."""
    if not value:
        return None
    try:
        # parse_datetime also accepts a bare date (as midnight), so dates are told apart first.
        day = parse_date(value)
        moment = None if day else parse_datetime(value)
    except ValueError:
        moment = day = None
    if day is not None:
        moment = datetime.combine(day + timedelta(days=1) if name == "until" else day, time.min)
    if moment is None:
        raise ExportError(f"{name}: {value!r} is not an ISO-8601 date or datetime (e.g. 2026-11-25)")
    return timezone.make_aware(moment, UTC) if timezone.is_naive(moment) else moment


def check_format(fmt: str | None) -> str:
    fmt = fmt or "jsonl"
    if fmt not in FORMATS:
        raise ExportError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


# ---------------------------------------------------------------- records


def rankings_for_export(project: Project, flt: ExportFilter) -> QuerySet[Ranking]:
    rankings = Ranking.objects.filter(item__project=project)
    if flt.current_only:
        rankings = rankings.filter(is_current=True)
    if flt.rater_kind != "all":
        rankings = rankings.filter(rater__kind=flt.rater_kind)
    if flt.since:
        rankings = rankings.filter(created_at__gte=flt.since)
    if flt.until:
        rankings = rankings.filter(created_at__lt=flt.until)
    related = ["item", "rater"]
    if project.demographics_export == Project.DemographicsExport.INDIVIDUAL:
        related.append("rater__user__profile")
    return rankings.select_related(*related).prefetch_related("item__responses").order_by("item_id", "id")


def export_records(project: Project, flt: ExportFilter, *, chunk_size: int = CHUNK_SIZE) -> Iterator[dict[str, Any]]:
    """Contract records, streamed from the database `chunk_size` rankings at a time."""
    individual = project.demographics_export == Project.DemographicsExport.INDIVIDUAL
    project_id = str(project.public_id)
    for ranking in rankings_for_export(project, flt).iterator(chunk_size=chunk_size):
        yield ranking_record(ranking, project_id=project_id, individual=individual)


def ranking_record(ranking: Ranking, *, project_id: str, individual: bool) -> dict[str, Any]:
    item, rater = ranking.item, ranking.rater
    return {
        "project": project_id,
        "item": item.external_id,
        "prompt": item.prompt,
        "context": list(item.context or []),
        "responses": [{"id": r.response_id, "text": r.text, "source": r.source} for r in item.responses.all()],
        "rater": {
            "id": rater.key,
            "kind": rater.kind,
            "profile": _profile(rater) if individual else None,
            "persona": _persona(rater, individual),
            "model": rater.model or None,
        },
        "ranking": ranking.order,
        "shown_order": ranking.shown_order,
        "rationale": ranking.rationale or None,
        "flags": list(ranking.flags),
        "seconds": ranking.seconds,
        "created_at": ranking.created_at.isoformat(),
    }


def _persona(rater: Rater, individual: bool) -> dict[str, Any] | None:
    """A synthetic rater's persona. A twin's description and attributes are a real annotator's
    consented demographics, so they follow the project's setting like that annotator's profile."""
    if rater.kind != Rater.Kind.SYNTHETIC or rater.persona is None:
        return None
    persona = dict(rater.persona)
    if persona.get("twin") and not individual:
        persona.update(description=None, attributes=None)
    return persona


def _profile(rater: Rater) -> dict[str, str] | None:
    if rater.kind != Rater.Kind.HUMAN or rater.user is None:
        return None
    try:
        profile = rater.user.profile
    except AnnotatorProfile.DoesNotExist:
        return None
    return profile.consented_values()


def export_jsonl(project: Project, flt: ExportFilter, *, chunk_size: int = CHUNK_SIZE) -> Iterator[str]:
    for record in export_records(project, flt, chunk_size=chunk_size):
        yield json.dumps(record, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- columnar


def arrow_schema() -> Any:
    import pyarrow as pa

    response = pa.struct([("id", pa.string()), ("text", pa.string()), ("source", pa.string())])
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    rater = pa.struct([("id", pa.string()), ("kind", pa.string()), ("profile", pa.string()),
                       ("persona", pa.string()), ("model", pa.string())])
    return pa.schema([
        ("project", pa.string()), ("item", pa.string()), ("prompt", pa.string()),
        ("context", pa.list_(message)), ("responses", pa.list_(response)), ("rater", rater),
        ("ranking", pa.list_(pa.list_(pa.string()))), ("shown_order", pa.list_(pa.string())),
        ("rationale", pa.string()), ("flags", pa.list_(pa.string())), ("seconds", pa.float64()),
        ("created_at", pa.string()),
    ])


def _columnar(record: dict[str, Any]) -> dict[str, Any]:
    rater = dict(record["rater"])
    for key in ("profile", "persona"):
        rater[key] = None if rater[key] is None else json.dumps(rater[key], ensure_ascii=False)
    return {**record, "rater": rater}


def write_parquet(project: Project, flt: ExportFilter, out: str | Path | IO[bytes], *,
                  chunk_size: int = CHUNK_SIZE) -> int:
    """Write the export to `out` (a path or binary file), one row group per chunk; return the count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema()
    count = 0
    rows: list[dict[str, Any]] = []
    with pq.ParquetWriter(out, schema) as writer:
        for record in export_records(project, flt, chunk_size=chunk_size):
            rows.append(_columnar(record))
            if len(rows) >= chunk_size:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                count, rows = count + len(rows), []
        if rows or not count:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            count += len(rows)
    return count


def write_datasets(project: Project, flt: ExportFilter, out_dir: str | Path, *,
                   chunk_size: int = CHUNK_SIZE) -> int:
    """Write the export as a `datasets` directory (`load_from_disk` reads it); return the count.

    ExportError when no ranking matches: `datasets` cannot build (nor load) a dataset from an
    empty file, so an empty export is refused with a reason instead of failing half-way.
    """
    if not rankings_for_export(project, flt).exists():
        raise ExportError(
            "no rankings match this export; a datasets export needs at least one (JSONL and Parquet give an empty file)"
        )
    import datasets

    with tempfile.TemporaryDirectory(prefix="rlchf-export-") as tmp:
        parquet = Path(tmp) / "rankings.parquet"
        count = write_parquet(project, flt, parquet, chunk_size=chunk_size)
        dataset = datasets.Dataset.from_parquet(str(parquet), cache_dir=str(Path(tmp) / "cache"))
        dataset.save_to_disk(str(out_dir))
    return count


def zip_directory(directory: str | Path, out: IO[bytes], *, root: str) -> None:
    """Zip `directory`'s files under the folder name `root` into `out`."""
    directory = Path(directory)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, f"{root}/{path.relative_to(directory)}")


def export_filename(project: Project, fmt: str, flt: ExportFilter) -> str:
    kind = "" if flt.rater_kind == "all" else f"-{flt.rater_kind}"
    stamp = timezone.now().date().isoformat()
    suffix = {"jsonl": ".jsonl", "parquet": ".parquet", "datasets": ".zip"}[fmt]
    return f"rankings-{project.public_id}{kind}-{stamp}{suffix}"


def download_response(project: Project, fmt: str, flt: ExportFilter) -> HttpResponseBase:
    """The export as an HTTP download: JSONL streamed line by line; Parquet and the zipped
    `datasets` directory written to a temporary file first, then streamed from disk."""
    filename = export_filename(project, fmt, flt)
    if fmt == "jsonl":
        response = StreamingHttpResponse(export_jsonl(project, flt), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    # Not a `with`: FileResponse closes (and so deletes) the file once the download is sent.
    spool = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        content_type = _write_spool(project, fmt, flt, spool, filename)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=filename, content_type=content_type)


def _write_spool(project: Project, fmt: str, flt: ExportFilter, spool: IO[bytes], filename: str) -> str:
    if fmt == "parquet":
        write_parquet(project, flt, spool)
        return "application/vnd.apache.parquet"
    with tempfile.TemporaryDirectory(prefix="rlchf-export-") as tmp:
        write_datasets(project, flt, Path(tmp) / "dataset")
        zip_directory(Path(tmp) / "dataset", spool, root=filename.removesuffix(".zip"))
    return "application/zip"
