"""Training workflows: register models, check and start training runs, register their results,
and create experiments of matched conditions.

A run's config is checked completely before anything is stored: a config that cannot run (unknown
base model directory, snapshot without the file its method reads, LoRA rank 0, more GPUs than a
node has, a hyperparameter we do not pass through) raises `TrainingError` naming the field.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse

from jobs import paths
from jobs.services import RunError, start_run
from synthetic.model_choices import ModelChoice
from training.models import Experiment, ExperimentCondition, RegisteredModel, TrainingRun

SNAPSHOT_ID = re.compile(r"^[0-9a-f]{16}$")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"

OBJECTIVES = {
    "sft": ("sft",),
    "dpo": ("trl", "weighted", "group_robust", "listwise"),
    "reward": ("margin", "no_margin"),
    "rl": ("utilitarian", "egalitarian", "nash"),
}
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm")
PRESETS = ("", "multi_gpu", "zero1", "zero2", "zero3", "fsdp1", "fsdp2")
DATASET_FILES = ("pairs", "baseline_pairs", "rankings")

# The hyperparameters a researcher may set (everything else in the YAML is decided here), with types.
HYPERPARAMETERS: dict[str, type] = {
    "learning_rate": float, "max_steps": int, "num_train_epochs": float, "per_device_train_batch_size": int,
    "gradient_accumulation_steps": int, "max_length": int, "seed": int,
    "lr_scheduler_type": str, "save_steps": int, "logging_steps": int, "gradient_checkpointing": bool,
    "use_peft": bool, "lora_r": int, "lora_alpha": int, "lora_dropout": float, "beta": float, "loss_type": list,
    "label_smoothing": float, "num_generations": int, "max_completion_length": int, "temperature": float,
    "group_by": str, "group_filter": str, "group_step_size": float, "algorithm": str, "dataset_file": str,
    "max_train_rows": int,
}
# Settings that only some recipes' TRL configs have (TrlParser refuses unknown keys).
ONLY_FOR: dict[str, tuple[str, ...]] = {
    "beta": ("dpo", "rl"), "loss_type": ("dpo",), "label_smoothing": ("dpo",), "num_generations": ("rl",),
    "max_completion_length": ("rl",), "temperature": ("rl",), "max_length": ("sft", "dpo", "reward"),
    "group_by": ("dpo",), "group_step_size": ("dpo",), "algorithm": ("rl",),
}
DEFAULT_LEARNING_RATE = {"sft": 2e-5, "dpo": 5e-7, "reward": 1e-5, "rl": 1e-6}


# Metrics the run page charts (and the API returns), besides every group_weight/* and rewards/*.
CHART_KEYS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "learning_rate",
              "worst_group_loss", "accuracy", "margin", "reward", "mean_token_accuracy")


class TrainingError(RunError):
    """A training run, model or experiment cannot be created as asked; the message names the field."""


def error_field(exc: RunError) -> tuple[str, str]:
    """The field a refusal names ("field: ...", "hyperparameters.field: ..."; its last part) and the message."""
    message = str(exc).removeprefix("invalid config for a training run: ")
    return message.split(":", 1)[0].split(".")[-1].strip(), message


# ---------------------------------------------------------------- snapshots


def snapshot_dir(snapshot_id: str) -> Path:
    if not isinstance(snapshot_id, str) or not SNAPSHOT_ID.match(snapshot_id):
        raise TrainingError(f"snapshot_id: {snapshot_id!r} is not a snapshot id (16 hex digits)")
    path = Path(settings.SNAPSHOTS_DIR) / snapshot_id
    if not path.is_dir():
        raise TrainingError(f"snapshot_id: no snapshot {snapshot_id} in {settings.SNAPSHOTS_DIR}")
    return path


def needed_file(recipe: str, objective: str, hyper: dict[str, Any]) -> str:
    """The snapshot file (without .jsonl) the recipe reads for this objective."""
    if recipe == "sft" or (recipe == "dpo" and objective == "listwise"):
        return "rankings"
    if recipe == "dpo" and objective == "group_robust":
        return "baseline_pairs"
    return str(hyper.get("dataset_file", "pairs"))


def _foreign_snapshot_ids(project: Any) -> set[str]:
    """Snapshots the aggregation app froze for OTHER projects: never readable from this one."""
    from aggregation.models import Snapshot

    return set(Snapshot.objects.exclude(project=project).values_list("snapshot_id", flat=True))


def check_project_snapshot(project: Any, snapshot_id: str) -> Path:
    """The snapshot's directory, if the project may train on it (its own snapshot, or a directory
    no project's record claims, e.g. one written by hand); the same error as a missing one otherwise."""
    if snapshot_id in _foreign_snapshot_ids(project):
        raise TrainingError(f"snapshot_id: no snapshot {snapshot_id} in {settings.SNAPSHOTS_DIR}")
    return snapshot_dir(snapshot_id)


def list_snapshots(project: Any) -> list[str]:
    root = Path(settings.SNAPSHOTS_DIR)
    if not root.is_dir():
        return []
    foreign = _foreign_snapshot_ids(project)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and SNAPSHOT_ID.match(p.name) and p.name not in foreign)


# ---------------------------------------------------------------- models


def project_models(project: Any) -> QuerySet[RegisteredModel]:
    """The models a project's pages list and its runs may use."""
    return RegisteredModel.objects.filter(project=project)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def model_files(model: RegisteredModel) -> list[dict[str, Any]]:
    root = Path(model.path)
    if not model.path or not root.is_dir():
        return []
    return [{"name": str(f.relative_to(root)), "size": f.stat().st_size}
            for f in sorted(root.rglob("*")) if f.is_file() and "checkpoint-" not in str(f.relative_to(root))]


def model_zip(model: RegisteredModel) -> tuple[Iterator[bytes], str] | None:
    """The model's HF directory as a streamed zip (checkpoints left out; lineage.json added where the
    directory has none) and its file name, or None when it has no files here. A real model is
    gigabytes: it is never held in memory."""
    files = model_files(model)
    if not files:
        return None
    folder = _archive_folder(model.name)
    entries = [(Path(model.path) / f["name"], f"{folder}/{f['name']}") for f in files]
    extra = {} if any(f["name"] == "lineage.json" for f in files) else {
        f"{folder}/lineage.json": json.dumps(model.lineage, indent=2).encode()}
    return _zip_chunks(entries, extra), f"{folder}.zip"


def _archive_folder(name: str) -> str:
    """The zip's top folder: the model's name with nothing that could leave the folder (no `/`, `..`)."""
    return re.sub(r"[^\w.-]+", "-", name).strip(".-") or "model"


class _ZipStream:
    """A write-only file for zipfile that hands on what was written so far (it cannot seek, so
    zipfile writes each entry's sizes after its data)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")  # incompressible: stored as they are
CHUNK_BYTES = 1 << 20


def _zip_chunks(entries: list[tuple[Path, str]], extra: dict[str, bytes]) -> Iterator[bytes]:
    return (chunk for chunk in _zip_parts(entries, extra) if chunk)


def _zip_parts(entries: list[tuple[Path, str]], extra: dict[str, bytes]) -> Iterator[bytes]:
    stream = _ZipStream()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, arcname in entries:
            info = zipfile.ZipInfo.from_file(source, arcname)
            info.compress_type = zipfile.ZIP_STORED if source.suffix in WEIGHT_SUFFIXES else zipfile.ZIP_DEFLATED
            with open(source, "rb") as src, archive.open(info, "w") as dst:
                while chunk := src.read(CHUNK_BYTES):
                    dst.write(chunk)
                    yield stream.take()
        for arcname, data in extra.items():
            archive.writestr(arcname, data)
    yield stream.take()


def _check_model_dir(path: str, field: str = "path") -> Path:
    """A model directory must lie under the operator's model roots (jobs.paths: MODELS_DIR,
    ARTIFACTS_DIR, EXTRA_MODEL_DIRS; no user value names a file elsewhere) and hold config.json.
    A relative path is taken from MODELS_DIR."""
    try:
        resolved = paths.resolve_model_path(path, field, relative_to=Path(settings.MODELS_DIR))
    except paths.PathNotAllowed as exc:
        raise TrainingError(str(exc)) from None
    try:
        is_model = (resolved / "config.json").is_file()
    except OSError:  # a name longer than the filesystem allows (ENAMETOOLONG was a 500)
        is_model = False
    if not is_model:
        raise TrainingError(f"{field}: {resolved} is not a model directory (no config.json)")
    return resolved


def external_lineage(name: str, base: str) -> dict[str, Any]:
    """The lineage (ARCHITECTURE.md, every key) of a model we did not train: its base is where it came from."""
    return {"model": name, "base": base, "recipe": "external", "objective": "", "snapshot": None, "config_hash": "",
            "code_version": code_version(), "created_at": datetime.now(UTC).isoformat()}


@transaction.atomic
def register_base_model(*, owner: Any, project: Any, name: str, path: str = "", hub_id: str = "") -> RegisteredModel:
    """Register a base model from a directory under the model roots (`_check_model_dir`), or from a hub id that a worker
    fetches (the web process never downloads)."""
    name = name.strip()
    if not name:
        raise TrainingError("name: a model needs a name")
    if bool(path) == bool(hub_id):
        raise TrainingError("path: give either a local directory or a hub id, not both")
    if path:
        resolved = _check_model_dir(path)
        return RegisteredModel.objects.create(
            owner=owner, project=project, name=name, kind=RegisteredModel.Kind.BASE, path=str(resolved),
            lineage=external_lineage(name, str(resolved)), size_bytes=dir_size(resolved),
        )
    if not HUB_ID.match(hub_id):
        raise TrainingError(f"hub_id: {hub_id!r} is not a hub id (owner/name)")
    model = RegisteredModel.objects.create(
        owner=owner, project=project, name=name, kind=RegisteredModel.Kind.BASE, hub_id=hub_id,
        status=RegisteredModel.Status.FETCHING, lineage=external_lineage(name, hub_id),
    )
    run = start_run("model-fetch", owner, project, {"model": str(model.public_id), "hub_id": hub_id},
                    name=f"fetch {hub_id}")
    model.fetch_run = run
    model.save(update_fields=["fetch_run"])
    return model


def register_trained_model(training_run: TrainingRun) -> RegisteredModel:
    """Register (once) the model a finished run wrote, with the lineage.json the recipe wrote; an
    experiment condition trained by this run gets it as its model (what evaluation compares)."""
    model = RegisteredModel.objects.filter(training_run=training_run).first()
    if model is None:
        out = Path(training_run.output_dir)
        lineage = json.loads((out / "lineage.json").read_text())
        lineage["base_model_id"] = str(training_run.base_model.public_id)
        run = training_run.run
        model = RegisteredModel.objects.create(
            owner=run.owner, project=training_run.project, name=run.name or f"{training_run.recipe}-{run.public_id}",
            kind=RegisteredModel.Kind.TRAINED, path=str(out), lineage=lineage, size_bytes=dir_size(out),
            training_run=training_run,
        )
    ExperimentCondition.objects.filter(training_run=training_run, model__isnull=True).update(model=model)
    return model


def usable_models(project: Any, user: Any) -> QuerySet[RegisteredModel]:
    """Registered models `user` may use in `project`: the project's own, and the user's models that
    belong to no project (a project of None: only those)."""
    mine = Q(owner=user, project__isnull=True)
    return RegisteredModel.objects.filter(mine | Q(project=project) if project is not None else mine)


def check_usable(field: str, model: RegisteredModel, project: Any, owner: Any) -> None:
    if not usable_models(project, owner).filter(pk=model.pk).exists():
        raise TrainingError(f"{field}: model {model.name} is not one of this project's models")


def model_choices(project: Any, user: Any) -> list[ModelChoice]:
    """The ready registered models as choices of the synthetic forms (a rater's, a generation run's
    or the panel generator's model); TrainingConfig.ready() registers this with synthetic.model_choices."""
    models = usable_models(project, user).filter(status=RegisteredModel.Status.READY).exclude(path="")
    return [ModelChoice(key=f"registry:{m.public_id}", label=_choice_label(m), path=m.path, record=model_record(m))
            for m in models.select_related("project")]


def _choice_label(model: RegisteredModel) -> str:
    lineage = model.lineage or {}
    if model.kind == RegisteredModel.Kind.TRAINED:
        return f"{model.name} (trained: {lineage.get('recipe', '?')} on snapshot {lineage.get('snapshot') or '?'})"
    return f"{model.name} (base model)"


def model_record(model: RegisteredModel) -> dict[str, Any]:
    """What a run that used `model` keeps about it: which model, where, and its lineage."""
    url = reverse("training-model-detail", args=[model.project.public_id, model.public_id]) if model.project else ""
    return {"provider": "training", "id": str(model.public_id), "name": model.name, "kind": model.kind,
            "path": model.path, "lineage": model.lineage, "url": url}


# ---------------------------------------------------------------- training runs


def clean_hyperparameters(recipe: str, hyper: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(hyper, dict):
        raise TrainingError("hyperparameters: must be a mapping")
    cleaned: dict[str, Any] = {}
    for key, value in hyper.items():
        kind = HYPERPARAMETERS.get(key)
        if kind is None:
            raise TrainingError(f"hyperparameters.{key}: not a setting a run may change")
        if recipe not in ONLY_FOR.get(key, (recipe,)):
            raise TrainingError(f"hyperparameters.{key}: not a setting of a {recipe} run")
        cleaned[key] = _coerce(key, value, kind)
    if cleaned.get("use_peft") and cleaned.get("lora_r", 16) <= 0:
        raise TrainingError(f"hyperparameters.lora_r: LoRA rank must be at least 1, got {cleaned['lora_r']}")
    for key in ("max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "save_steps",
                "logging_steps", "num_generations", "max_completion_length"):
        if key in cleaned and cleaned[key] <= 0 and not (key == "max_steps" and cleaned[key] == -1):
            raise TrainingError(f"hyperparameters.{key}: must be positive, got {cleaned[key]}")
    if "learning_rate" in cleaned and not 0 < cleaned["learning_rate"] < 1:
        raise TrainingError(f"hyperparameters.learning_rate: {cleaned['learning_rate']} is not in (0, 1)")
    for loss in cleaned.get("loss_type", []):
        if loss not in DPO_LOSS_TYPES:
            raise TrainingError(f"hyperparameters.loss_type: unknown DPO loss {loss!r}")
    if cleaned.get("dataset_file", "pairs") not in DATASET_FILES:
        raise TrainingError(f"hyperparameters.dataset_file: one of {', '.join(DATASET_FILES)}")
    if cleaned.get("algorithm", "grpo") not in ("grpo", "rloo"):
        raise TrainingError("hyperparameters.algorithm: grpo or rloo")
    return cleaned


def _coerce(key: str, value: Any, kind: type) -> Any:
    try:
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind is list:
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(v).strip() for v in items if str(v).strip()]
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise TrainingError(f"hyperparameters.{key}: {value!r} is not a {kind.__name__}") from None


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """The `jobs` validator of the "training" kind: everything a run needs, checked before it starts."""
    recipe, objective = config.get("recipe"), config.get("objective")
    if recipe not in OBJECTIVES:
        raise TrainingError(f"recipe: unknown {recipe!r} (one of {', '.join(OBJECTIVES)})")
    if objective not in OBJECTIVES[recipe]:
        raise TrainingError(f"objective: {objective!r} is not an objective of {recipe} ({', '.join(OBJECTIVES[recipe])})")
    hyper = clean_hyperparameters(recipe, config.get("hyperparameters", {}))
    snap = snapshot_dir(config.get("snapshot_id", ""))
    needed = needed_file(recipe, objective, hyper)
    if not (snap / f"{needed}.jsonl").is_file():
        raise TrainingError(f"snapshot_id: snapshot {snap.name} has no {needed}.jsonl, which {recipe}/{objective} reads")
    if not Path(config.get("base_model_path", "")).is_dir():
        raise TrainingError(f"base_model: model directory {config.get('base_model_path')!r} does not exist")
    for path in config.get("reward_model_paths", []):
        if not Path(path).is_dir():
            raise TrainingError(f"reward_models: model directory {path!r} does not exist")
    if recipe == "rl" and not config.get("reward_model_paths"):
        raise TrainingError("reward_models: an RL run needs at least one reward model")
    gpus = config.get("gpus", 0)
    if not isinstance(gpus, int) or gpus < 0:
        raise TrainingError(f"gpus: {gpus!r} is not a number of GPUs")
    if gpus > settings.TRAINING_NODE_GPUS:
        raise TrainingError(f"gpus: {gpus} asked, but a training node has {settings.TRAINING_NODE_GPUS} "
                            "(TRAINING_NODE_GPUS)")
    if config.get("preset", "") not in PRESETS:
        raise TrainingError(f"preset: unknown accelerate preset {config.get('preset')!r}")
    if config.get("preset") and gpus == 0:
        raise TrainingError(f"preset: {config['preset']} needs at least one GPU")
    if config.get("launcher", "local") not in TrainingRun.Launcher.values:
        raise TrainingError(f"launcher: unknown {config.get('launcher')!r}")
    return {**config, "hyperparameters": hyper}


def recipe_yaml(config: dict[str, Any]) -> dict[str, Any]:
    """The YAML mapping the recipe reads (TRL's config + ModelConfig + our RlchfArguments)."""
    recipe, objective, hyper = config["recipe"], config["objective"], dict(config["hyperparameters"])
    values: dict[str, Any] = {
        "model_name_or_path": config["base_model_path"],
        "snapshot_dir": str(Path(settings.SNAPSHOTS_DIR) / config["snapshot_id"]),
        "snapshot_id": config["snapshot_id"],
        "output_dir": config["output_dir"],
        "base_model_name": config.get("base_model_name", ""),
        "learning_rate": DEFAULT_LEARNING_RATE[recipe],
        "gradient_checkpointing": False, "max_steps": 100, "logging_steps": 1, "save_strategy": "steps",
        "save_steps": 50, "save_total_limit": 2, "report_to": "none", "disable_tqdm": True, "seed": 42,
    }
    if recipe in ("dpo", "reward"):
        values["objective"] = objective
    elif recipe == "rl":
        values["welfare"] = objective
        values["reward_models"] = list(config["reward_model_paths"])
        values.update({"num_generations": 2, "max_completion_length": 64})
    if config.get("ref_model_path"):
        values["ref_model_path"] = config["ref_model_path"]
    values.update(hyper)
    values["config_hash"] = config_hash(values)
    values["code_version"] = config.get("code_version", "")
    return values


def config_hash(values: dict[str, Any]) -> str:
    """Hash of what determines the result: everything but where it is written."""
    keyed = {k: v for k, v in values.items() if k not in ("output_dir", "config_hash", "code_version")}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:16]


@transaction.atomic
def start_training(
    *, owner: Any, project: Any, recipe: str, objective: str, base_model: RegisteredModel, snapshot_id: str,
    hyperparameters: dict[str, Any] | None = None, ref_model: RegisteredModel | None = None,
    reward_models: list[RegisteredModel] | None = None, gpus: int = 0, preset: str = "", launcher: str = "",
    name: str = "",
) -> TrainingRun:
    """Check the config, store the run and its TrainingRun, queue it on the gpu queue."""
    for field, model in (("base_model", base_model), ("ref_model", ref_model), *(("reward_models", m) for m in reward_models or [])):
        if model is not None:
            check_usable(field, model, project, owner)
            if not model.is_ready:
                raise TrainingError(f"{field}: model {model.name} is not ready ({model.get_status_display()})")
    check_project_snapshot(project, snapshot_id)
    launcher = launcher or settings.TRAINING_LAUNCHER
    output_dir = Path(settings.MODELS_DIR) / "trained" / str(uuid.uuid4())
    config = {
        "recipe": recipe, "objective": objective, "snapshot_id": snapshot_id,
        "base_model": str(base_model.public_id), "base_model_path": base_model.path, "base_model_name": base_model.name,
        "ref_model_path": ref_model.path if ref_model else "",
        "reward_model_paths": [m.path for m in reward_models or []],
        "hyperparameters": hyperparameters or {}, "gpus": gpus, "preset": preset, "launcher": launcher,
        "output_dir": str(output_dir), "code_version": code_version(),
    }
    try:
        run = start_run("training", owner, project, config, name=name or f"{recipe} {objective} on {snapshot_id}")
    except TrainingError:
        raise
    except RunError as exc:  # jobs wraps the validator's message; keep it naming the field
        raise TrainingError(str(exc).removeprefix("invalid config for a training run: ")) from None
    training = TrainingRun.objects.create(
        run=run, project=project, recipe=recipe, objective=objective, base_model=base_model, ref_model=ref_model,
        snapshot_id=snapshot_id, dataset=needed_file(recipe, objective, run.config["hyperparameters"]),
        launcher=launcher, output_dir=str(output_dir), config_hash=recipe_yaml(run.config)["config_hash"],
    )
    if reward_models:
        training.reward_models.set(reward_models)
    return training


def run_summary(training: TrainingRun) -> dict[str, Any] | None:
    """The recipe's rlchf_run.json (rows given / kept / dropped, precision, steps), once written."""
    path = Path(training.output_dir) / "rlchf_run.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None  # being written right now


def metric_series(training: TrainingRun) -> dict[str, dict[str, list[float]]]:
    """Logged metrics by name, {"loss": {"step": [...], "value": [...]}, ...}, group weights included,
    from the recipe's metrics.jsonl."""
    series: dict[str, dict[str, list[float]]] = {}
    path = Path(training.output_dir) / "metrics.jsonl"
    if not path.is_file():
        return series
    seen: dict[tuple[str, int], int] = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        for key, value in row.items():
            if (key in CHART_KEYS or key.startswith(("group_weight/", "rewards/"))) and isinstance(value, int | float):
                entry = series.setdefault(key, {"step": [], "value": []})
                # A resumed run logs its last steps again: keep the newest value per step.
                index = seen.get((key, row["step"]))
                if index is None:
                    seen[(key, row["step"])] = len(entry["step"])
                    entry["step"].append(row["step"])
                    entry["value"].append(value)
                else:
                    entry["value"][index] = value
    return series


def code_version() -> str:
    """The git commit of the code, read from .git without running git: a worktree's .git file names
    its git dir, whose `commondir` holds the branches; a branch may also be in packed-refs."""
    git = Path(settings.BASE_DIR) / ".git"
    try:
        if git.is_file():
            git = (Path(settings.BASE_DIR) / git.read_text().split(":", 1)[1].strip()).resolve()
        common = (git / (git / "commondir").read_text().strip()).resolve() if (git / "commondir").is_file() else git
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head[:12]
        ref = head.split(" ", 1)[1].strip()
        for root in (git, common):
            if (root / ref).is_file():
                return (root / ref).read_text().strip()[:12]
        packed = common / "packed-refs"
        for line in packed.read_text().splitlines() if packed.is_file() else []:
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0][:12]
        return ref.split("/")[-1]
    except (OSError, IndexError):
        return "unknown"


# ---------------------------------------------------------------- experiments

def item_splits(snapshot_id: str) -> dict[str, str]:
    """item -> split of a snapshot, from its pairs.jsonl (the contract puts both on every line)."""
    path = snapshot_dir(snapshot_id) / "pairs.jsonl"
    if not path.is_file():
        raise TrainingError(f"snapshots: snapshot {snapshot_id} has no pairs.jsonl")
    splits: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                splits[str(row.get("item"))] = str(row.get("split"))
    return splits


def check_same_split(snapshot_ids: list[str]) -> None:
    """Matched conditions must share the item split: an item is train in one condition only if
    it is train in every condition that has it."""
    first, reference = snapshot_ids[0], item_splits(snapshot_ids[0])
    for other in snapshot_ids[1:]:
        for item, split in item_splits(other).items():
            if reference.get(item, split) != split:
                raise TrainingError(f"snapshots: item {item} is {reference[item]} in {first} but {split} in {other}; "
                                    "matched conditions need snapshots frozen with the same item split")


CONDITIONS = (
    ("base", ExperimentCondition.Feedback.BASE, ""),
    ("rlhf-baseline", ExperimentCondition.Feedback.RLHF_BASELINE, "humans"),
    ("rlchf-humans", ExperimentCondition.Feedback.RLCHF_HUMANS, "humans"),
    ("rlchf-synthetic", ExperimentCondition.Feedback.RLCHF_SYNTHETIC, "synthetic"),
    ("rlchf-both", ExperimentCondition.Feedback.RLCHF_BOTH, "both"),
)


@transaction.atomic
def create_experiment(
    *, owner: Any, project: Any, name: str, base_model: RegisteredModel, snapshots: dict[str, str],
    hyperparameters: dict[str, Any] | None = None, seed: int = 42, objective: str = "trl",
    extra_snapshots: dict[str, str] | None = None, extra_objectives: list[str] | None = None, gpus: int = 0,
) -> Experiment:
    """Matched DPO conditions in one action: same base, hyperparameters, seed (and the snapshots'
    item split), different feedback. `snapshots` maps humans / synthetic / both to snapshot ids;
    the RLHF baseline trains on the human snapshot's baseline_pairs.jsonl (every rater's own pairs).
    `extra_snapshots` adds one condition per rule (name -> snapshot id), `extra_objectives` one per
    objective on the `both` snapshot."""
    if not name.strip():
        raise TrainingError("name: an experiment needs a name")
    check_usable("base_model", base_model, project, owner)
    for pool in ("humans", "synthetic", "both"):
        if pool not in snapshots:
            raise TrainingError(f"snapshots.{pool}: the experiment needs a {pool} snapshot")
    chosen = [snapshots[p] for p in ("humans", "synthetic", "both")] + list((extra_snapshots or {}).values())
    for sid in chosen:
        check_project_snapshot(project, sid)
    check_same_split(chosen)
    hyper = {**(hyperparameters or {}), "seed": seed}
    experiment = Experiment.objects.create(owner=owner, project=project, name=name.strip(), base_model=base_model,
                                           hyperparameters=hyper, seed=seed)
    plan: list[tuple[str, str, str, str, dict[str, Any]]] = []
    for cname, feedback, pool in CONDITIONS:
        if feedback == ExperimentCondition.Feedback.BASE:
            plan.append((cname, feedback, "", "", {}))
        elif feedback == ExperimentCondition.Feedback.RLHF_BASELINE:
            plan.append((cname, feedback, snapshots[pool], objective, {"dataset_file": "baseline_pairs"}))
        else:
            plan.append((cname, feedback, snapshots[pool], objective, {}))
    for rule, sid in (extra_snapshots or {}).items():
        plan.append((f"rule-{rule}", ExperimentCondition.Feedback.RULE, sid, objective, {}))
    for extra in extra_objectives or []:
        plan.append((f"objective-{extra}", ExperimentCondition.Feedback.OBJECTIVE, snapshots["both"], extra, {}))
    for cname, feedback, sid, obj, extra_hyper in plan:
        condition = ExperimentCondition(experiment=experiment, name=cname, feedback=feedback, snapshot_id=sid,
                                        objective=obj)
        if feedback == ExperimentCondition.Feedback.BASE:
            condition.model = base_model
        else:
            condition.training_run = start_training(
                owner=owner, project=project, recipe="dpo", objective=obj, base_model=base_model, snapshot_id=sid,
                hyperparameters={**hyper, **extra_hyper}, gpus=gpus, name=f"{experiment.name}: {cname}",
            )
        condition.save()
    return experiment
