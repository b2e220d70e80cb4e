"""Workflows of the synthetic app: persona panels (import, generate, twins, new versions) and
starting synthetic-rating and candidate-generation runs.

A generated panel's descriptions can be written by a model (`generate_panel(describe_with=...)`).
That runs inside the caller (the web request), not as a job, so it is capped at
MAX_DESCRIBED_PANEL_SIZE personas: one batched call of a small local model or an
OpenAI-compatible server takes seconds to a minute for such a panel. The model is released
before the panel is stored; an engine failure stores nothing.

Panels never change in place: every change stores a new panel row with the next version, so a
run always points at the personas it judged with. Everything a run needs is validated here,
BEFORE anything is queued: a run that cannot start is never stored.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Max, QuerySet

from annotation.importing.storable import unstorable
from annotation.models import AnnotatorProfile, Item, Membership, Project, Ranking
from annotation.services import delete_rankings
from jobs import paths
from jobs import services as jobs_services
from synthetic import endpoints, model_choices
from synthetic import personas as pure
from synthetic.backends import (
    BackendConfig,
    BackendConfigError,
    GenerationParams,
    config_problems,
    load_backend,
    loads_local_model,
    readiness_problems,
)
from synthetic.judging.describe import DEFAULT_DESCRIPTION_PROMPT, FALLBACK_KEY, enrich_descriptions
from synthetic.judging.prompts import PromptTemplateError, load_template
from synthetic.judging.types import DEFAULT_PROMPT_VERSIONS, Method
from synthetic.models import GenerationRun, Persona, PersonaPanel, SyntheticRun

logger = logging.getLogger(__name__)

MAX_PANEL_SIZE = 10_000
# Listwise debiasing: more orders than this cost more than they tell (K! grows fast anyway).
MAX_PERMUTATIONS = 24
# Model-written descriptions are generated inside the request: small panels only (see above).
MAX_DESCRIBED_PANEL_SIZE = 50
DESCRIPTION_PARAMS = GenerationParams(max_new_tokens=160, temperature=0.7, top_p=0.95)
# Profile fields that the panel generator calls by another name.
PROFILE_TO_PANEL = {"gender": "sex"}


class PanelError(ValueError):
    """A panel cannot be made as asked; the message says what is wrong (and on which line)."""


class SyntheticRunError(ValueError):
    """A run cannot start as configured; nothing was stored or queued."""


# ---------------------------------------------------------------- panels


def _next_version(owner: AbstractBaseUser, name: str) -> int:
    latest = PersonaPanel.objects.filter(owner=owner, name=name).aggregate(v=Max("version"))["v"]
    return (latest or 0) + 1


@transaction.atomic
def create_panel(
    *,
    owner: AbstractBaseUser,
    name: str,
    personas: Sequence[pure.Persona],
    source: str,
    project: Project | None = None,
    description: str = "",
    recipe: dict[str, Any] | None = None,
) -> PersonaPanel:
    """Store `personas` as a new panel, or as the next version of the owner's panel `name`."""
    name = name.strip()
    if not name:
        raise PanelError("a panel needs a name")
    if not personas:
        raise PanelError(f"panel {name!r} would have no personas")
    # Lock the owner's existing versions so two saves cannot both take the same next version.
    list(PersonaPanel.objects.select_for_update().filter(owner=owner, name=name).values_list("pk", flat=True))
    panel = PersonaPanel.objects.create(
        owner=owner, name=name, version=_next_version(owner, name), project=project,
        description=description, source=source, recipe=recipe or {},
    )
    Persona.objects.bulk_create(
        Persona(panel=panel, persona_id=p.id, description=p.description, attributes=p.attributes)
        for p in personas
    )
    return panel


def panel_personas(panel: PersonaPanel) -> list[pure.Persona]:
    """The panel's personas as the pure engine's `Persona` (with every attribute)."""
    return [pure.Persona(p.persona_id, p.description, p.attributes) for p in panel.personas.all()]


@transaction.atomic
def import_panel(
    *,
    owner: AbstractBaseUser,
    name: str,
    text: str,
    project: Project | None = None,
    description: str = "",
    filename: str = "",
) -> PersonaPanel:
    """Import personas from JSONL (our format, the seed project's, PersonaHub's).

    All or nothing: one bad row rejects the file, and the error lists every bad row by line.
    """
    try:
        personas = pure.parse_persona_jsonl(text)
    except pure.PersonaImportError as exc:
        where = f" in {filename}" if filename else ""
        raise PanelError(f"could not import personas{where}: {exc}") from None
    return create_panel(
        owner=owner, name=name, personas=personas, source=PersonaPanel.Source.IMPORTED, project=project,
        description=description, recipe={"import": filename or "pasted text", "rows": len(personas)},
    )


@transaction.atomic
def new_panel_version(
    *, panel: PersonaPanel, personas: Sequence[pure.Persona] | None = None, description: str | None = None
) -> PersonaPanel:
    """A changed copy of `panel` as its next version; the old version stays as it was."""
    return create_panel(
        owner=panel.owner, name=panel.name,
        personas=panel_personas(panel) if personas is None else personas,
        source=panel.source, project=panel.project,
        description=panel.description if description is None else description,
        recipe={**panel.recipe, "from_version": panel.version},
    )


def consenting_profiles(project: Project) -> QuerySet[AnnotatorProfile]:
    """Profiles of the project's annotators who consented to share at least one field."""
    annotators = Membership.objects.filter(project=project, role=Membership.Role.ANNOTATOR).values("user_id")
    return (
        AnnotatorProfile.objects.filter(user_id__in=annotators)
        .exclude(consented_fields=[])
        .select_related("user")
        .order_by("user_id")
    )


def project_quotas(project: Project) -> dict[str, dict[str, float]]:
    """Generator quotas matching the consented demographics of the project's annotators."""
    profiles = []
    for profile in consenting_profiles(project):
        values = profile.consented_values()
        profiles.append({PROFILE_TO_PANEL.get(k, k): v for k, v in values.items()})
    return pure.quotas_from_profiles(profiles)


# Not atomic as a whole: a model writing descriptions must not hold a transaction open;
# `create_panel` stores the result atomically.
def generate_panel(
    *,
    owner: AbstractBaseUser,
    name: str,
    size: int,
    seed: int = 0,
    project: Project | None = None,
    match_annotators: bool = False,
    quotas: dict[str, dict[str, float]] | None = None,
    description: str = "",
    describe_with: dict[str, Any] | None = None,
) -> PersonaPanel:
    """A seeded stratified panel; with `match_annotators`, quotas follow the project's annotators.

    `describe_with` (`{"engine", "model", **backend options}`, as a run's model) has a model
    write the descriptions; the backend is checked before anything else happens.
    """
    if not 1 <= size <= MAX_PANEL_SIZE:
        raise PanelError(f"panel size must be between 1 and {MAX_PANEL_SIZE}, got {size}")
    config, source = (
        _description_backend(describe_with, size, project, owner) if describe_with is not None else (None, None)
    )
    quotas = dict(quotas or {})
    if match_annotators:
        if project is None:
            raise PanelError("matching annotators needs a project")
        quotas = {**project_quotas(project), **quotas}
        if not quotas:
            raise PanelError(
                f"no annotator of project {project.name!r} has consented to share a field the generator uses"
            )
    spec = pure.PanelSpec(size=size, seed=seed, quotas=quotas)
    problems = pure.panel_problems(spec)
    if problems:
        raise PanelError(" ".join(problems))
    recipe: dict[str, Any] = {"size": size, "seed": seed, "quotas": quotas, "match_annotators": match_annotators}
    personas = pure.generate_panel(spec)
    if config is not None:
        personas = _describe(config, personas, seed)
        recipe["descriptions"] = {
            "model": config.label, "prompt_version": DEFAULT_DESCRIPTION_PROMPT,
            "fallbacks": sum(1 for p in personas if FALLBACK_KEY in p.attributes),
        }
        if source:
            recipe["descriptions"]["model_source"] = source
    return create_panel(
        owner=owner, name=name, personas=personas, source=PersonaPanel.Source.GENERATED,
        project=project, description=description, recipe=recipe,
    )


def _description_backend(
    describe_with: dict[str, Any], size: int, project: Project | None, owner: AbstractBaseUser
) -> tuple[BackendConfig, dict[str, Any] | None]:
    if size > MAX_DESCRIBED_PANEL_SIZE:
        raise PanelError(
            f"a model writes descriptions for at most {MAX_DESCRIBED_PANEL_SIZE} personas (inside this "
            f"request), got {size}: generate a smaller panel, or keep the template descriptions"
        )
    spec = dict(describe_with)
    try:
        config = backend_config(str(spec.get("engine", "")), str(spec.get("model", "")), spec_backend_options(spec))
        source = model_source(project, owner, config, str(spec.get("registered_model") or ""))
        check_backend(config)
    except SyntheticRunError as exc:
        raise PanelError(str(exc)) from None
    return config, source


def _describe(config: BackendConfig, personas: list[pure.Persona], seed: int) -> list[pure.Persona]:
    """`personas` with descriptions written by `config`'s model; PanelError if the engine fails."""
    try:
        backend = load_backend(config)
    except Exception as exc:  # loading runs third-party code: any failure means "cannot describe"
        logger.exception("loading %s to describe personas failed", config.label)
        raise PanelError(f"backend: could not load {config.label}: {exc}") from None
    try:
        return enrich_descriptions(backend, personas, DESCRIPTION_PARAMS, seed)
    except Exception as exc:  # an engine failure stores nothing and says why
        logger.exception("describing personas with %s failed", config.label)
        raise PanelError(f"backend: {config.label} failed while writing descriptions: {exc}") from None
    finally:
        backend.close()


def twin_id(project: Project, user_id: int) -> str:
    """`twin-<12 hex>`: stable per project and annotator, and not their user id, which every
    export names as `user:<id>` (so a twin's id would tie its attributes to the human rater)."""
    key = settings.SECRET_KEY.encode()
    digest = hmac.new(key, f"twin:{project.public_id}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"twin-{digest[:12]}"


@transaction.atomic
def twin_panel(*, owner: AbstractBaseUser, project: Project, name: str, description: str = "") -> PersonaPanel:
    """One persona per consenting annotator of `project`, built from consented fields only.

    `attributes["twin_of"]` records the annotator's user id; only the project's researchers see it
    (panels of a project are visible to its researchers only, and raters drop it).
    """
    twins = []
    for profile in consenting_profiles(project):
        consented = profile.consented_values()
        if consented:
            twins.append(pure.twin_persona(str(profile.user_id), consented, list(consented),
                                           persona_id=twin_id(project, profile.user_id)))
    if not twins:
        raise PanelError(f"no annotator of project {project.name!r} has consented to share a demographic field")
    return create_panel(
        owner=owner, name=name, personas=twins, source=PersonaPanel.Source.TWINS, project=project,
        description=description, recipe={"twins_of_project": str(project.public_id)},
    )


# ---------------------------------------------------------------- synthetic runs


# What a run may set besides engine and model. Where requests go and with which key is never a
# run's choice: `endpoint` names an operator-defined endpoint (synthetic.endpoints) that resolves
# to the BackendConfig fields endpoint, base_urls and api_key.
_BACKEND_FIELDS = (
    {f.name for f in dataclass_fields(BackendConfig)} - {"engine", "model", "base_urls", "api_key"}
) | endpoints.RUN_OPTIONS


# The keys of a model spec ({"engine", "model", "registered_model", **backend options}) that are not options.
MODEL_SPEC_KEYS = ("engine", "model", "registered_model")


def spec_backend_options(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in MODEL_SPEC_KEYS}


def model_source(
    project: Project | None, owner: AbstractBaseUser, config: BackendConfig, key: str = "",
    field: str = "registered_model",
) -> dict[str, Any] | None:
    """What a run records about its model, from synthetic.model_choices (the default model, the
    registry's models): the record of the choice `key`, which must be one `owner` may use in
    `project` and name config's directory; without a key, of the choice whose directory config's
    model is; None for any other model. SyntheticRunError naming `field` for a bad key."""
    local = loads_local_model(config.engine)
    if not key and not local:
        return None
    if not local:
        raise SyntheticRunError(f"{field}: a registered model is a directory on this server; the {config.engine} "
                                "engine cannot load it")
    resolved = Path(config.model).resolve()
    choices = model_choices.model_choices(project, owner)
    if not key:
        return next((c.record for c in choices if Path(c.path).resolve() == resolved), None)
    choice = next((c for c in choices if c.key == key), None)
    if choice is None:
        raise SyntheticRunError(f"{field}: {key!r} is not a model you can use in this project")
    if Path(choice.path).resolve() != resolved:
        raise SyntheticRunError(f"{field}: {choice.label} is {choice.path}, not {config.model}")
    return choice.record


def local_model_path(engine: str, model: str, field: str = "model") -> str:
    """`model` itself for engines that do not open a local path (openai's served name); for
    transformers and vLLM the resolved path, which must lie under the operator's model roots
    (jobs.paths: MODELS_DIR, ARTIFACTS_DIR, EXTRA_MODEL_DIRS), else SyntheticRunError naming `field`."""
    if not loads_local_model(engine):
        return model
    try:
        return str(paths.resolve_model_path(model, field))
    except paths.PathNotAllowed as exc:
        raise SyntheticRunError(str(exc)) from None


def backend_config(
    engine: str, model: str, options: dict[str, Any] | None = None, field: str = "model"
) -> BackendConfig:
    """A `BackendConfig`, with SyntheticRunError naming any unknown option, unusable endpoint or
    model path outside the operator's model roots (`field` names the model in that error)."""
    model = local_model_path(engine, model, field)
    options = dict(options or {})
    try:
        endpoints.check_run_options(options)
    except endpoints.EndpointError as exc:
        raise SyntheticRunError(f"backend: {exc}") from None
    unknown = sorted(set(options) - _BACKEND_FIELDS)
    if unknown:
        raise SyntheticRunError(
            f"unknown backend option(s) {', '.join(unknown)}; known: {', '.join(sorted(_BACKEND_FIELDS))}"
        )
    endpoint, base_url = options.pop("endpoint", None), options.pop("base_url", None)
    if engine == "openai":
        try:
            options.update(endpoints.resolve(endpoint, base_url))
        except endpoints.EndpointError as exc:
            raise SyntheticRunError(f"backend: {exc}") from None
    elif endpoint or base_url:
        raise SyntheticRunError(f"backend: the {engine!r} engine runs locally; only 'openai' uses an endpoint")
    return BackendConfig(engine=engine, model=model, **options)


def check_backend(config: BackendConfig) -> None:
    """Raise SyntheticRunError with every reason `config` cannot run here (missing package, path,
    a server that does not answer its models request)."""
    try:
        problems = config_problems(config) or readiness_problems(config)
    except BackendConfigError as exc:
        problems = [str(exc)]
    if problems:
        raise SyntheticRunError("backend: " + " ".join(problems))


def select_items(
    project: Project, mode: str, item_ids: Sequence[str] = (), sample_size: int | None = None, sample_seed: int = 0
) -> list[Item]:
    """The items a run judges, in a stable order; SyntheticRunError for an empty or bad choice.
    Where the project sets a synthetic target, items that have reached it are left out."""
    items = list(Item.objects.filter(project=project).order_by("id"))
    if mode == SyntheticRun.Items.LIST:
        wanted = list(dict.fromkeys(item_ids))
        by_id = {i.external_id: i for i in items}
        missing = [x for x in wanted if x not in by_id]
        if missing:
            raise SyntheticRunError(f"items: no item with external id {', '.join(map(repr, missing[:10]))} in this project")
        items = [by_id[x] for x in wanted]
    elif mode == SyntheticRun.Items.RANDOM:
        if not sample_size or sample_size < 1:
            raise SyntheticRunError("items: a random sample needs a size of at least 1")
        items = sorted(random.Random(sample_seed).sample(items, min(sample_size, len(items))), key=lambda i: i.pk)
    elif mode != SyntheticRun.Items.ALL:
        raise SyntheticRunError(f"items: unknown selection {mode!r}; use all, list or random")
    if not items:
        raise SyntheticRunError("items: the selection holds no item")
    target = project.synthetic_target
    if target and not (items := [i for i in items if i.synthetic_count < target]):
        raise SyntheticRunError(f"items: every selected item already has the project's {target} synthetic ranking(s)")
    return items


def _check_judging(method: str, prompt_version: str, tie_margin: float, temperature: float) -> None:
    if not prompt_version.startswith(method.split("_")[0]):
        raise SyntheticRunError(f"prompt version: {prompt_version!r} is not a {method} prompt")
    try:
        load_template(prompt_version)
    except PromptTemplateError as exc:
        raise SyntheticRunError(f"prompt version: {exc}") from None
    if not 0 <= tie_margin < 0.5:
        raise SyntheticRunError(f"tie margin must be in [0, 0.5), got {tie_margin}")
    if temperature < 0:
        raise SyntheticRunError(f"temperature must be >= 0, got {temperature}")


def _check_debiasing(permutations: int, score_margin: float, label_mass_threshold: float) -> None:
    if not 1 <= permutations <= MAX_PERMUTATIONS:
        raise SyntheticRunError(f"permutations must be between 1 and {MAX_PERMUTATIONS}, got {permutations}")
    if score_margin < 0:
        raise SyntheticRunError(f"score margin must be >= 0, got {score_margin}")
    if not 0 <= label_mass_threshold <= 1:
        raise SyntheticRunError(f"label mass threshold must be between 0 and 1, got {label_mass_threshold}")


@transaction.atomic
def start_synthetic_run(
    *,
    owner: AbstractBaseUser,
    project: Project,
    panel: PersonaPanel,
    engine: str,
    model: str,
    backend_options: dict[str, Any] | None = None,
    method: str = SyntheticRun.DEFAULT_METHOD,
    items: str = SyntheticRun.Items.ALL,
    item_ids: Sequence[str] = (),
    sample_size: int | None = None,
    sample_seed: int = 0,
    allow_ties: bool = False,
    reasoning: bool = False,
    both_orders: bool = True,
    tie_margin: float = 0.05,
    orders_per_item: int | None = None,
    temperature: float = 0.0,
    max_reasoning_tokens: int = 256,
    seed: int = 0,
    prompt_version: str = "",
    name: str = "",
    permutations: int = 3,
    score_margin: float = 0.1,
    label_mass_threshold: float = 0.5,
    registered_model: str = "",
) -> SyntheticRun:
    """Validate everything (backend first), then store the run and queue it on commit.
    `registered_model` is the key of the synthetic.model_choices choice `model` came from."""
    config = backend_config(engine, model, backend_options)
    source = model_source(project, owner, config, registered_model)
    check_backend(config)
    if method not in SyntheticRun.Method.values:
        raise SyntheticRunError(f"method: unknown method {method!r}; use {', '.join(SyntheticRun.Method.values)}")
    prompt_version = prompt_version or DEFAULT_PROMPT_VERSIONS[Method(method)]
    _check_judging(method, prompt_version, tie_margin, temperature)
    _check_debiasing(permutations, score_margin, label_mass_threshold)
    if allow_ties and not project.allow_ties:
        raise SyntheticRunError("allow ties: this project does not allow ties in rankings")
    chosen = select_items(project, items, item_ids, sample_size, sample_seed)
    if not panel.personas.exists():
        raise SyntheticRunError(f"panel {panel}: has no personas")
    summary = {
        "engine": engine, "model": model, "method": method, "panel": f"{panel.name} v{panel.version}",
        "items": len(chosen), "personas": panel.personas.count(), "seed": seed, "prompt_version": prompt_version,
    }
    if source:
        summary["model_source"] = source
    run = jobs_services.start_run("synthetic", owner, project, summary, name=name or f"{panel.name} × {config.label}")
    return SyntheticRun.objects.create(
        run=run, project=project, panel=panel, items=items, item_ids=[i.external_id for i in chosen],
        sample_size=sample_size,
        sample_seed=sample_seed, engine=engine, model=model, backend_options=backend_options or {}, method=method,
        allow_ties=allow_ties, reasoning=reasoning, both_orders=both_orders, tie_margin=tie_margin,
        orders_per_item=orders_per_item, seed=seed, prompt_version=prompt_version,
        permutations=permutations, score_margin=score_margin, label_mass_threshold=label_mass_threshold,
        sampling={"temperature": temperature, "max_reasoning_tokens": max_reasoning_tokens},
        judgments_total=len(chosen) * summary["personas"],
    )


@transaction.atomic
def delete_run_rankings(*, srun: SyntheticRun) -> int:
    """Take the rankings this run put into the project out of it (a rater's earlier version, from
    another run, becomes current again). The run's judgments and raw outputs stay for the record.
    Refused while the run is queued or running: it would keep adding rankings."""
    if srun.run.is_active:
        raise SyntheticRunError("the run is still queued or running: cancel it before deleting its rankings")
    ids = list(Ranking.objects.filter(judgments__run=srun).values_list("pk", flat=True))
    deleted = delete_rankings(ranking_ids=ids)
    SyntheticRun.objects.filter(pk=srun.pk).update(rankings_deleted=F("rankings_deleted") + deleted)
    srun.refresh_from_db(fields=["rankings_deleted"])
    logger.info("deleted %d ranking(s) of synthetic run %s", deleted, srun.pk)
    return deleted


# ---------------------------------------------------------------- generation runs


def parse_prompts_jsonl(text: str) -> list[dict[str, str]]:
    """[{id, prompt}] from JSONL rows `{"id": ..., "prompt": ...}` (id optional), errors by line."""
    rows, errors = [], []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {line_no}: invalid JSON ({exc.msg})")
            continue
        except RecursionError:
            errors.append(f"line {line_no}: invalid JSON (nested too deeply)")
            continue
        prompt = row.get("prompt") if isinstance(row, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            errors.append(f"line {line_no}: missing or empty 'prompt'")
            continue
        problem = unstorable({"prompt": prompt, "id": str(row.get("id") or "")})
        if problem is not None:
            errors.append(f"line {line_no}: field {problem[0]!r} {problem[1]}")
            continue
        rows.append({"id": str(row.get("id") or f"gen-{line_no}"), "prompt": prompt})
    if errors:
        raise SyntheticRunError("prompts: " + "; ".join(errors))
    if not rows:
        raise SyntheticRunError("prompts: the file holds no prompt")
    return rows


def _check_generation(project: Project, prompts: list[dict[str, str]], models: list[BackendConfig], k: int,
                      temperature: float) -> None:
    if not 2 <= k <= 16:
        raise SyntheticRunError(f"K must be between 2 and 16 responses per prompt, got {k}")
    if not models:
        raise SyntheticRunError("models: give at least one model")
    if k > len(models) and temperature <= 0:
        raise SyntheticRunError("temperature: several responses from one model need temperature > 0")
    ids = [p["id"] for p in prompts]
    duplicates = sorted({x for x in ids if ids.count(x) > 1})
    if duplicates:
        raise SyntheticRunError(f"prompts: duplicate id(s) {', '.join(duplicates[:10])}")
    taken = list(Item.objects.filter(project=project, external_id__in=ids).values_list("external_id", flat=True)[:10])
    if taken:
        raise SyntheticRunError(f"prompts: the project already has item(s) {', '.join(taken)}")


@transaction.atomic
def start_generation_run(
    *,
    owner: AbstractBaseUser,
    project: Project,
    prompts: list[dict[str, str]],
    models: Iterable[dict[str, Any]],
    k: int = 4,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 256,
    seed: int = 0,
    name: str = "",
) -> GenerationRun:
    """Validate the prompts and every model's backend, then store the run and queue it. A model
    spec is {"engine", "model", "registered_model" (a synthetic.model_choices key, optional), **options}."""
    model_specs = [dict(m) for m in models]
    configs, sources = [], []
    for n, spec in enumerate(model_specs):
        config = backend_config(str(spec.get("engine", "")), str(spec.get("model", "")), spec_backend_options(spec),
                                field=f"models[{n}].model")
        configs.append(config)
        sources.append(model_source(project, owner, config, str(spec.get("registered_model") or ""),
                                    field=f"models[{n}].registered_model"))
    for config in configs:
        check_backend(config)
    _check_generation(project, prompts, configs, k, temperature)
    summary = {"prompts": len(prompts), "models": [c.label for c in configs], "k": k, "seed": seed}
    if any(sources):
        summary["model_sources"] = sources
    run = jobs_services.start_run("generation", owner, project, summary, name=name or f"generate {k} × {len(prompts)}")
    return GenerationRun.objects.create(
        run=run, project=project, prompts=prompts, models_config=model_specs, k=k, seed=seed,
        sampling={"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens},
    )
