"""The review demo's persona panel and its one finished synthetic run, from the shipped files.

The judgments were made by the real default model (scripts/make_demo_review_data.py); they are
stored here through `synthetic.runs.store_judgments`, the code a live run stores with, so the
rankings, the judgment records and the run's counters look exactly like a run's.
"""
from __future__ import annotations

from typing import Any

from django.utils import timezone

from annotation.models import Item, Project
from jobs.models import Run
from synthetic import personas as pure
from synthetic.models import PersonaPanel, SyntheticRun
from synthetic.runs import store_judgments, write_bias_report
from synthetic.services import create_panel, twin_id

ENGINE, MODEL = "transformers", "var/models/smollm2-135m-instruct"
TWIN_PREFIX = "twin-of-"


def _panel_personas(project: Project, rows: list[dict[str, Any]], users: dict[str, Any]) -> list[pure.Persona]:
    """The shipped personas; a twin's placeholder id and `twin_of` become the project's own."""
    out = []
    for row in rows:
        persona = pure.Persona(row["id"], row["description"], dict(row["attributes"]))
        if persona.id.startswith(TWIN_PREFIX):
            user = users[persona.id.removeprefix(TWIN_PREFIX)]
            persona = pure.Persona(twin_id(project, user.pk), persona.description,
                                   {**persona.attributes, "twin_of": str(user.pk)})
        out.append(persona)
    return out


def _records(rows: list[dict[str, Any]], ids: dict[str, str]) -> list[Any]:
    from synthetic.judging import JudgmentRecord

    return [
        JudgmentRecord(
            item_id=r["item"], persona_id=ids[r["persona"]], model=r["model"], method=r["method"],
            prompt_version=r["prompt_version"], seed=r["seed"], shown_order=r["shown_order"],
            raw_output=r["raw_output"], ranking=r["ranking"], failure=r["failure"],
        )
        for r in rows
    ]


def _run(project: Project, owner: Any, panel: PersonaPanel, items: dict[str, Item], first: dict[str, Any]) -> SyntheticRun:
    summary = {"engine": ENGINE, "model": MODEL, "method": first["method"], "panel": f"{panel.name} v{panel.version}",
               "items": len(items), "personas": panel.personas.count(), "seed": first["seed"],
               "prompt_version": first["prompt_version"], "demo": "judgments loaded from data/demo/review_judgments.jsonl"}
    now = timezone.now()
    run = Run.objects.create(kind="synthetic", name=f"{panel.name} × {ENGINE}:smollm2-135m-instruct", owner=owner,
                             project=project, config=summary, status=Run.Status.SUCCEEDED, started_at=now,
                             finished_at=now, log="Loaded from the shipped demo judgments (made with SmolLM2).\n")
    return SyntheticRun.objects.create(
        run=run, project=project, panel=panel, items=SyntheticRun.Items.ALL, item_ids=sorted(items), engine=ENGINE,
        model=MODEL, method=first["method"], seed=first["seed"], prompt_version=first["prompt_version"],
        permutations=1,  # one shown order per judgment, as the shipped judgments were made
        judgments_total=len(items) * summary["personas"],
    )


def store_demo_run(project: Project, owner: Any, items: dict[str, Item], users: dict[str, Any],
                   persona_rows: list[dict[str, Any]], judgment_rows: list[dict[str, Any]], name: str) -> int:
    """Create the panel and the run once; return how many judgments were stored now (0 when done)."""
    if not judgment_rows or SyntheticRun.objects.filter(project=project, panel__name=name).exists():
        return 0
    personas = _panel_personas(project, persona_rows, users)
    panel = create_panel(owner=owner, name=name, personas=personas, source=PersonaPanel.Source.IMPORTED,
                         project=project, description="Twins of the simulated demo annotators and a small stratified panel.")
    ids = {row["id"]: p.id for row, p in zip(persona_rows, personas, strict=True)}
    srun = _run(project, owner, panel, items, judgment_rows[0])
    by_id = {p.persona_id: p for p in panel.personas.all()}
    records = [r for r in _records(judgment_rows, ids) if r.item_id in items]
    stored = store_judgments(srun, records, items, by_id, {})
    write_bias_report(srun, _LogReporter(srun.run))  # counters, position bias, signal: as a run's end
    return len(stored)


class _LogReporter:
    """What write_bias_report needs of a run: its lines appended to the demo run's log."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def log(self, message: str) -> None:
        self.run.log += message + "\n"
        self.run.save(update_fields=["log"])

    def progress(self, done: int, total: int | None = None) -> None:
        pass

    def check_cancelled(self) -> None:
        pass
