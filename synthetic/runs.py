"""Job handlers for the run kinds "synthetic" (persona x item judgments) and "generation"
(K candidate responses per prompt, stored as items).

Where the engine runs: with `settings.SYNTHETIC_ENGINE_SUBPROCESS` (the default) the handler
starts `manage.py synthetic_engine <kind> <id>` through `ctx.run_subprocess`: the child loads
the model, judges, and stores every chunk itself, so a crash of the engine (CUDA error, OOM
kill, segfault in a native library) fails the run but never takes the worker down, and the
chunks stored before the crash are kept for a resume. Cancel: the worker's heartbeat notices the
request and stops the child; the child also checks between chunks. Without the setting (tests,
debugging) the same code runs inside the worker.

Resume: a synthetic run skips every (item, persona) judgment already stored (a unique
constraint guarantees one per pair); a generation run skips prompts already stored as items.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction

from annotation.models import Item, Ranking, Rater
from annotation.services import create_item, record_ranking, synthetic_rater
from annotation.weak_orders import RankingError
from jobs import live, registry
from jobs.models import Run
from jobs.runner import Cancelled, RunContext, RunFailure, SubprocessFailed
from synthetic.models import GenerationRun, Judgment, Persona, SyntheticRun

logger = logging.getLogger(__name__)

GENERATION_CHUNK = 32
REJECTED = "ranking rejected by the project"


class Reporter(Protocol):
    """What the judging loop needs from its run: a `RunContext`, or `ChildReporter`."""

    def progress(self, done: int, total: int | None = None) -> None: ...

    def log(self, message: str) -> None: ...

    def check_cancelled(self) -> None: ...


class ChildReporter:
    """The reporter of an engine subprocess: progress straight to the run row, log to stdout
    (which the worker's `run_subprocess` streams into the run log), cancel read from the row."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def progress(self, done: int, total: int | None = None) -> None:
        fields: dict[str, Any] = {"progress_done": done}
        if total is not None:
            fields["progress_total"] = total
        Run.objects.filter(pk=self.run.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.run, name, value)
        live.publish(self.run)

    def log(self, message: str) -> None:
        sys.stdout.write(message.rstrip("\n") + "\n")
        sys.stdout.flush()

    def check_cancelled(self) -> None:
        if Run.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            raise Cancelled("cancel requested")


# ---------------------------------------------------------------- the handlers


def _in_subprocess() -> bool:
    return bool(getattr(settings, "SYNTHETIC_ENGINE_SUBPROCESS", True))


def _run_child(run: Run, ctx: RunContext, kind: str, pk: int) -> None:
    argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "synthetic_engine", kind, str(pk)]
    try:
        ctx.run_subprocess(argv, cwd=str(settings.BASE_DIR))
    except SubprocessFailed:
        # The child stops by itself when it sees the cancel request before the heartbeat does.
        if Run.objects.filter(pk=run.pk, cancel_requested=True).exists():
            raise Cancelled("cancel requested") from None
        raise


@registry.register("synthetic", label="Synthetic ratings")
def run_synthetic(run: Run, ctx: RunContext) -> None:
    srun = SyntheticRun.objects.select_related("project", "panel").get(run=run)
    if _in_subprocess():
        _run_child(run, ctx, "synthetic", srun.pk)
    else:
        judge_run(srun, ctx)
    write_bias_report(srun, ctx)


@registry.register("generation", label="Candidate generation")
def run_generation(run: Run, ctx: RunContext) -> None:
    grun = GenerationRun.objects.select_related("project").get(run=run)
    if _in_subprocess():
        _run_child(run, ctx, "generation", grun.pk)
    else:
        generate_run(grun, ctx)
    grun.refresh_from_db(fields=["items_created"])
    ctx.log(f"{grun.items_created} item(s) stored by this run")


# ---------------------------------------------------------------- judging


def judge_items(srun: SyntheticRun) -> dict[str, Item]:
    """The run's items by external id (the ids were frozen when the run started)."""
    items = Item.objects.filter(project=srun.project, external_id__in=srun.item_ids).prefetch_related("responses")
    by_id = {i.external_id: i for i in items}
    return {x: by_id[x] for x in srun.item_ids if x in by_id}


def judge_options(srun: SyntheticRun) -> Any:
    from synthetic.judging import JudgeOptions, Method

    sampling = srun.sampling or {}
    return JudgeOptions(
        method=Method(srun.method), allow_ties=srun.allow_ties, reasoning=srun.reasoning,
        max_reasoning_tokens=int(sampling.get("max_reasoning_tokens", 256)), both_orders=srun.both_orders,
        tie_margin=srun.tie_margin, orders_per_item=srun.orders_per_item,
        temperature=float(sampling.get("temperature", 0.0)), prompt_version=srun.prompt_version,
        chunk_size=int(sampling["chunk_size"]) if sampling.get("chunk_size") else None,
        permutations=srun.permutations, score_margin=srun.score_margin,
        label_mass_threshold=srun.label_mass_threshold,
    )


def _judge_item(item: Item) -> Any:
    from synthetic.judging import JudgeItem, ResponseText

    responses = tuple(ResponseText(r.response_id, r.text) for r in item.responses.all())
    return JudgeItem(item.external_id, item.prompt, responses)


def judge_run(srun: SyntheticRun, report: Reporter) -> None:
    """Judge every pending (item, persona) pair of the run, storing chunk by chunk."""
    from synthetic import services
    from synthetic.judging import iter_judgments

    items = judge_items(srun)
    personas = {p.persona_id: p for p in srun.panel.personas.all()}
    stored = set(srun.judgments.values_list("item__external_id", "persona__persona_id"))
    total = len(items) * len(personas)
    report.progress(len(stored), total)
    report.log(f"{total} judgment(s): {len(stored)} already stored, {total - len(stored)} to do")
    if len(stored) >= total:
        return
    report.check_cancelled()
    config = services.backend_config(srun.engine, srun.model, srun.backend_options)
    report.log(f"loading {config.label}")
    backend = load_engine(config)
    try:
        chunks = iter_judgments(
            backend, [_judge_item(i) for i in items.values()], services.panel_personas(srun.panel),
            judge_options(srun), srun.seed, skip=stored,
        )
        with engine_failures(config.label):
            _store_all(srun, chunks, items, personas, report, len(stored), total)
    finally:
        backend.close()


class EngineLoadError(RunFailure):
    """The run's engine could not be built; the message is the one-line cause."""


class EngineFailure(RunFailure):
    """The engine failed mid-run (a server that stopped answering a scoring request, ...); the
    message is the one-line cause, naming the engine."""


@contextmanager
def engine_failures(label: str) -> Iterator[None]:
    """Turn the engine's own `BackendError` into one readable line naming the engine and model
    (`label`, `engine:model`)."""
    from synthetic.backends import BackendError

    try:
        yield
    except BackendError as exc:
        raise EngineFailure(f"{label}: {one_line(exc)}") from exc


class AllJudgmentsFailed(RunFailure):
    """Every judgment of a run failed; the message names the first error and its count."""


def load_engine(config: Any) -> Any:
    """`load_backend(config)`, any failure turned into one readable line naming the model."""
    from synthetic.backends import BackendConfigError, BackendError, load_backend

    try:
        return load_backend(config)
    except Exception as exc:  # third-party loaders raise anything; the run needs the cause
        if isinstance(exc, BackendError | BackendConfigError):  # already names what failed and where
            raise EngineLoadError(f"{config.label}: {one_line(exc)}") from exc
        raise EngineLoadError(f"{config.label} could not be loaded from {config.model}: {one_line(exc)}") from exc


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name when it has none)."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _store_all(srun: SyntheticRun, chunks: Iterator[list[Any]], items: dict[str, Item],
               personas: dict[str, Persona], report: Reporter, done: int, total: int) -> None:
    raters: dict[tuple[str, str], Rater] = {}
    for chunk in chunks:
        store_judgments(srun, chunk, items, personas, raters)
        done += len(chunk)
        update_counters(srun)
        report.progress(done, total)
        report.log(f"{done}/{total} judged; {srun.parse_failures} failed so far")
        report.check_cancelled()
    check_outcome(srun)


def check_outcome(srun: SyntheticRun) -> None:
    """Raise AllJudgmentsFailed when the run stored judgments and none has a ranking."""
    update_counters(srun)
    if srun.judgments_done and srun.parse_failures == srun.judgments_done:
        errors = list(srun.judgments.order_by("id").values_list("error", flat=True))
        first = errors[0] or "no ranking"
        same = sum(1 for e in errors if e == first)
        raise AllJudgmentsFailed(
            f"every judgment failed ({len(errors)} of {len(errors)}); first error ({same} time(s)): {first}"
        )


def persona_rater(persona: Persona, model: str, judge: str = "") -> Rater:
    """The synthetic rater of `persona` judged by `model` with `judge` ("method/prompt version").

    Raters are keyed by persona id, model and judge, so another method or prompt never replaces
    this rater's rankings; a different persona that reuses an id (another panel, a new version
    that changed it) gets a distinct rater id suffixed with a digest of its content.
    """
    contract = persona.as_contract()
    rater = synthetic_rater(persona=contract, model=model, judge=judge)
    if rater.persona == contract:
        return rater
    digest = hashlib.sha256(json.dumps(contract, sort_keys=True).encode()).hexdigest()[:8]
    return synthetic_rater(persona={**contract, "id": f"{persona.persona_id}~{digest}"}, model=model, judge=judge)


@transaction.atomic
def store_judgments(srun: SyntheticRun, records: Sequence[Any], items: dict[str, Item],
                    personas: dict[str, Persona], raters: dict[tuple[str, str], Rater]) -> list[Judgment]:
    """Store one chunk: every record becomes a judgment; valid rankings land in the project."""
    stored = []
    for record in records:
        persona, item = personas[record.persona_id], items[record.item_id]
        key = (record.persona_id, record.model)
        if key not in raters:
            raters[key] = persona_rater(persona, record.model, f"{record.method}/{record.prompt_version}")
        ranking, error = _record_in_project(item, raters[key], record)
        stored.append(Judgment(
            run=srun, item=item, persona=persona, rater=raters[key], prompt_version=record.prompt_version,
            model=record.model, shown_order=record.shown_order, raw_output=record.raw_output or "",
            reasoning=record.reasoning or "", pairs=[_pair(p) for p in record.pairs],
            parsed_ranking=record.ranking, error=error, ranking=ranking,
            permutations=[asdict(p) for p in record.permutations], scores=record.scores,
            label_mass=record.label_mass,
        ))
    return Judgment.objects.bulk_create(stored)


def _record_in_project(item: Item, rater: Rater, record: Any) -> tuple[Any, str]:
    if record.ranking is None:
        return None, record.failure or "no ranking"
    try:
        ranking = record_ranking(
            item=item, rater=rater, order=record.ranking, shown_order=record.shown_order,
            rationale=record.reasoning or "",
        )
    except RankingError as exc:
        return None, f"{REJECTED}: {exc}"
    return ranking, ""


def _pair(pair: Any) -> dict[str, Any]:
    return {"first": pair.first, "second": pair.second, "p_first": pair.p_first, "logprobs": pair.logprobs}


def update_counters(srun: SyntheticRun) -> None:
    judgments = srun.judgments.all()
    srun.judgments_done = judgments.count()
    srun.parse_failures = judgments.filter(parsed_ranking__isnull=True).count()
    # By the error, not a missing ranking link: a researcher may have deleted the run's rankings.
    srun.rankings_rejected = judgments.filter(parsed_ranking__isnull=False, error__startswith=REJECTED).count()
    srun.low_confidence = judgments.filter(label_mass__lt=srun.label_mass_threshold).count()
    srun.save(update_fields=["judgments_done", "parse_failures", "rankings_rejected", "low_confidence"])


def stored_records(srun: SyntheticRun) -> list[Any]:
    """The run's stored judgments as the engine's `JudgmentRecord`s (for the bias report)."""
    from synthetic.judging import JudgmentRecord, PairProbability
    from synthetic.judging.types import PermutationOutput

    rows = srun.judgments.values_list(
        "item__external_id", "persona__persona_id", "model", "prompt_version", "shown_order", "raw_output",
        "parsed_ranking", "error", "pairs", "permutations", "scores", "label_mass",
    )
    return [
        JudgmentRecord(
            item_id=item, persona_id=persona, model=model, method=srun.method, prompt_version=version,
            seed=srun.seed, shown_order=shown, raw_output=raw, ranking=parsed, failure=error or None,
            pairs=[PairProbability(p["first"], p["second"], p["p_first"], p.get("logprobs", {})) for p in pairs],
            permutations=[PermutationOutput(**p) for p in perms], scores=scores, label_mass=mass,
        )
        for item, persona, model, version, shown, raw, parsed, error, pairs, perms, scores, mass in rows
    ]


def item_references(srun: SyntheticRun) -> dict[str, Any]:
    """Reference orders of the run's items: the imported chosen > rejected where the item has
    one, else the collective of its current human rankings (socialchoice's default rule)."""
    from socialchoice import Profile, aggregate

    items = Item.objects.filter(project=srun.project, external_id__in=srun.item_ids)
    references: dict[str, Any] = {}
    for item in items.prefetch_related("responses"):
        pair = (item.metadata or {}).get("pairwise") or {}
        if pair.get("chosen") and pair.get("rejected"):
            references[item.external_id] = [[pair["chosen"]], [pair["rejected"]]]
    human = (
        Ranking.objects.filter(item__in=items, is_current=True, rater__kind=Rater.Kind.HUMAN)
        .exclude(item__external_id__in=list(references))
        .values_list("item__external_id", "order")
    )
    orders: dict[str, list[Any]] = {}
    for external_id, order in human:
        orders.setdefault(external_id, []).append(order)
    for external_id, ballots in orders.items():
        ids = sorted({rid for ballot in ballots for group in ballot for rid in group})
        references[external_id] = aggregate(Profile.from_weak_orders(ids, ballots)).order
    return references


def write_bias_report(srun: SyntheticRun, report: Reporter) -> None:
    """Counters, the first-shown win rate against the unbiased rate, and the signal figures
    (`synthetic.judging.signal`), stored on the run."""
    from synthetic.judging import position_bias
    from synthetic.judging.signal import signal_report

    update_counters(srun)
    records = stored_records(srun)
    bias = position_bias(records, tie_margin=srun.tie_margin)
    if bias is not None:
        srun.bias_decisions, srun.first_shown_win_rate = bias.decisions, bias.first_shown_win_rate
        srun.expected_first_rate, srun.bias_z = bias.expected_rate, bias.z
        srun.save(update_fields=["bias_decisions", "first_shown_win_rate", "expected_first_rate", "bias_z"])
        report.log(
            f"position bias: first shown wins {bias.first_shown_win_rate:.3f} vs {bias.expected_rate:.3f} "
            f"expected over {bias.decisions} decision(s), z = {bias.z:.2f}"
        )
    signal = signal_report(records, item_references(srun), srun.label_mass_threshold)
    srun.signal = json.loads(json.dumps(asdict(signal)))  # int keys of the matrices become strings
    srun.save(update_fields=["signal"])
    for reason in signal.degenerate:
        report.log(f"WARNING: {reason}")
    report.log(
        f"{srun.judgments_done} judgment(s) stored, {srun.parse_failures} failed, "
        f"{srun.rankings_rejected} ranking(s) rejected by the project, {srun.low_confidence} low-confidence"
    )


# ---------------------------------------------------------------- generation


def _shares(k: int, n_models: int) -> list[int]:
    """Responses per model: K spread as evenly as possible, earlier models first."""
    return [k // n_models + (1 if i < k % n_models else 0) for i in range(n_models)]


def generate_run(grun: GenerationRun, report: Reporter) -> None:
    """Generate K responses for every prompt not yet stored as an item, chunk by chunk."""
    from synthetic import services
    from synthetic.backends import GenerationParams

    existing = set(Item.objects.filter(project=grun.project).values_list("external_id", flat=True))
    pending = [p for p in grun.prompts if p["id"] not in existing]
    total, done = len(grun.prompts), len(grun.prompts) - len(pending)
    report.progress(done, total)
    report.log(f"{total} prompt(s): {done} already stored, {len(pending)} to do")
    if not pending:
        return
    report.check_cancelled()
    sampling = grun.sampling or {}
    params = GenerationParams(
        max_new_tokens=int(sampling.get("max_new_tokens", 256)), temperature=float(sampling.get("temperature", 0.8)),
        top_p=float(sampling.get("top_p", 1.0)),
    )
    backends = []
    try:
        for spec in grun.models_config:
            config = services.backend_config(spec["engine"], spec["model"], services.spec_backend_options(spec))
            report.log(f"loading {config.label}")
            backends.append(load_engine(config))
        for start in range(0, len(pending), GENERATION_CHUNK):
            chunk = pending[start : start + GENERATION_CHUNK]
            with engine_failures(", ".join(b.model_label for b in backends)):
                _generate_chunk(grun, chunk, backends, params)
            done += len(chunk)
            report.progress(done, total)
            report.check_cancelled()
    finally:
        for backend in backends:
            backend.close()


def _generate_chunk(grun: GenerationRun, chunk: list[dict[str, str]], backends: list[Any], params: Any) -> None:
    from synthetic.judging import generate_candidates

    prompts = [p["prompt"] for p in chunk]
    columns = [
        generate_candidates(backend, prompts, share, replace(params), grun.seed + 1000 * index)
        for index, (backend, share) in enumerate(zip(backends, _shares(grun.k, len(backends)), strict=True))
        if share
    ]
    with transaction.atomic():
        for row, prompt in enumerate(chunk):
            candidates = [c for column in columns for c in column[row].responses]
            create_item(
                project=grun.project, external_id=prompt["id"], prompt=prompt["prompt"],
                responses=[{"id": f"r{n}", "text": c.text, "source": c.source} for n, c in enumerate(candidates, 1)],
                metadata={"generation_run": str(grun.run.public_id),
                          "finish_reasons": {f"r{n}": c.finish_reason for n, c in enumerate(candidates, 1)}},
            )
        GenerationRun.objects.filter(pk=grun.pk).update(items_created=grun.items_created + len(chunk))
        grun.items_created += len(chunk)
