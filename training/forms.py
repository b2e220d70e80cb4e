"""Forms of the training pages and API (training/api.py binds the same forms to JSON through
config.api_forms). They parse input; `services` checks what a run needs. Each form's action
method (`register`, `start`, `create`) calls its service and puts a refusal on the field it names."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet

from jobs import paths
from training import services
from training.models import Experiment, RegisteredModel, TrainingRun

OBJECTIVE_CHOICES = [
    ("trl", "DPO: TRL loss types (loss types below)"),
    ("weighted", "DPO: vote-share weighted"),
    ("group_robust", "DPO: group-robust (Ramesh et al. 2024)"),
    ("listwise", "DPO: Plackett-Luce listwise, ties as groups"),
    ("sft", "SFT on collective winners"),
    ("margin", "Reward model with the snapshot's margins"),
    ("no_margin", "Reward model without margins"),
    ("utilitarian", "RL: utilitarian welfare (mean of group rewards)"),
    ("egalitarian", "RL: egalitarian welfare (min, MaxMin-RLHF)"),
    ("nash", "RL: Nash welfare (product of group utilities)"),
]
DPO_OBJECTIVE_CHOICES = OBJECTIVE_CHOICES[:4]
PRESET_CHOICES = [(p, p or "none (one process per GPU, plain DDP)") for p in services.PRESETS]
HYPER_FIELDS = ("learning_rate", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
                "max_length", "seed", "beta", "loss_type", "use_peft", "lora_r", "lora_alpha", "group_by",
                "group_step_size", "dataset_file", "algorithm", "num_generations", "max_completion_length",
                "save_steps")
# Seeds go to numpy (0 <= seed < 2**32) and to a 32-bit integer column (Experiment.seed).
MAX_SEED = 2**31 - 1


def _snapshot_choices(project: Any) -> list[tuple[str, str]]:
    return [(s, s) for s in services.list_snapshots(project)]


class _ModelChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: RegisteredModel) -> str:
        return f"{obj.name} ({obj.get_kind_display().lower()})"


def add_service_error(form: forms.Form, exc: services.TrainingError) -> None:
    """Put the service's message on the field it names ("field: ..."), else on the form."""
    field, message = services.error_field(exc)
    form.add_error(field if field in form.fields else None, message)


def _choose_models_by(form: forms.Form, model_key: str | None) -> None:
    """The page picks models by primary key; the API by their public id (`model_key="public_id"`)."""
    for field in form.fields.values():
        if isinstance(field, forms.ModelChoiceField):
            field.to_field_name = model_key


class TrainingRunForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    recipe = forms.ChoiceField(choices=TrainingRun.Recipe.choices, initial="dpo")
    objective = forms.ChoiceField(choices=OBJECTIVE_CHOICES, initial="trl",
                                  help_text="Must belong to the recipe; each objective is documented in the README.")
    base_model = _ModelChoice(queryset=RegisteredModel.objects.none())
    ref_model = _ModelChoice(queryset=RegisteredModel.objects.none(), required=False,
                             help_text="DPO reference model; the base model when empty.")
    reward_models = forms.ModelMultipleChoiceField(queryset=RegisteredModel.objects.none(), required=False,
                                                   help_text="RL: one reward model per group (or per pool).")
    snapshot_id = forms.ChoiceField(choices=[], label="Snapshot")
    learning_rate = forms.FloatField(required=False, help_text="Empty: the recipe's default.")
    max_steps = forms.IntegerField(initial=100, min_value=1)
    per_device_train_batch_size = forms.IntegerField(initial=4, min_value=1)
    gradient_accumulation_steps = forms.IntegerField(initial=1, min_value=1)
    max_length = forms.IntegerField(initial=1024, min_value=8)
    seed = forms.IntegerField(initial=42, min_value=0, max_value=MAX_SEED)
    beta = forms.FloatField(required=False, help_text="DPO / RL KL strength; empty: TRL's default.")
    loss_type = forms.CharField(required=False, help_text="DPO loss types, comma-separated (sigmoid, ipo, robust, ...).")
    use_peft = forms.BooleanField(required=False, label="LoRA")
    lora_r = forms.IntegerField(required=False, initial=16, label="LoRA rank")
    lora_alpha = forms.IntegerField(required=False, initial=32, label="LoRA alpha")
    group_by = forms.CharField(required=False, help_text="Group-robust DPO groups: a demographic attribute, rater, or source (human / synthetic).")
    group_step_size = forms.FloatField(required=False, help_text="Group-robust DPO: exponentiated-gradient step.")
    dataset_file = forms.ChoiceField(choices=[(f, f"{f}.jsonl") for f in services.DATASET_FILES], initial="pairs")
    algorithm = forms.ChoiceField(choices=[("grpo", "GRPO"), ("rloo", "RLOO")], initial="grpo", required=False)
    num_generations = forms.IntegerField(required=False, min_value=2)
    max_completion_length = forms.IntegerField(required=False, min_value=1)
    save_steps = forms.IntegerField(initial=50, min_value=1, help_text="Checkpoint interval (resume starts there).")
    gpus = forms.IntegerField(initial=0, min_value=0, help_text="0: CPU. One process per GPU.")
    preset = forms.ChoiceField(choices=PRESET_CHOICES, required=False, help_text="TRL's accelerate preset.")
    launcher = forms.ChoiceField(choices=TrainingRun.Launcher.choices, initial="local")

    def __init__(self, *args: Any, models: QuerySet[RegisteredModel], project: Any, model_key: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ready = models.filter(status=RegisteredModel.Status.READY)
        for name in ("base_model", "ref_model", "reward_models"):
            self.fields[name].queryset = ready
        self.fields["snapshot_id"].choices = _snapshot_choices(project)
        _choose_models_by(self, model_key)

    def start(self, *, owner: Any, project: Any) -> TrainingRun | None:
        """Check and queue the run the (valid) form describes; None with the refusal on its field."""
        data = self.cleaned_data
        try:
            return services.start_training(
                owner=owner, project=project, recipe=data["recipe"], objective=data["objective"],
                base_model=data["base_model"], snapshot_id=data["snapshot_id"], hyperparameters=self.hyperparameters(),
                ref_model=data["ref_model"], reward_models=list(data["reward_models"]), gpus=data["gpus"],
                preset=data["preset"] or "", launcher=data["launcher"], name=data["name"],
            )
        except services.TrainingError as exc:
            add_service_error(self, exc)
            return None

    def hyperparameters(self) -> dict[str, Any]:
        data = self.cleaned_data
        recipe = data["recipe"]
        hyper = {k: data[k] for k in HYPER_FIELDS
                 if data.get(k) not in (None, "") and recipe in services.ONLY_FOR.get(k, (recipe,))}
        if not data.get("use_peft"):
            for key in ("use_peft", "lora_r", "lora_alpha"):
                hyper.pop(key, None)
        return hyper


class RegisterModelForm(forms.Form):
    name = forms.CharField(max_length=200)
    path = forms.CharField(max_length=1000, required=False, help_text="A model directory under the models directory.")
    hub_id = forms.CharField(max_length=200, required=False, help_text="Or a hub id; a worker downloads it.")

    def clean_path(self) -> str:
        # The service checks again (and for config.json); this names the field on the form.
        value = self.cleaned_data.get("path", "")
        if value:
            try:
                paths.resolve_model_path(value, "path", relative_to=Path(settings.MODELS_DIR))
            except paths.PathNotAllowed as exc:
                raise forms.ValidationError(str(exc)) from None
        return value

    def register(self, *, owner: Any, project: Any) -> RegisteredModel | None:
        """Register the (valid) form's model (a hub id queues its download); None with the refusal on its field."""
        try:
            return services.register_base_model(owner=owner, project=project, **self.cleaned_data)
        except services.TrainingError as exc:
            add_service_error(self, exc)
            return None


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=200)
    base_model = _ModelChoice(queryset=RegisteredModel.objects.none())
    snapshot_humans = forms.ChoiceField(choices=[], label="Snapshot: humans")
    snapshot_synthetic = forms.ChoiceField(choices=[], label="Snapshot: synthetic raters")
    snapshot_both = forms.ChoiceField(choices=[], label="Snapshot: both")
    objective = forms.ChoiceField(choices=DPO_OBJECTIVE_CHOICES, initial="trl")
    extra_objectives = forms.MultipleChoiceField(choices=DPO_OBJECTIVE_CHOICES, required=False,
                                                 widget=forms.CheckboxSelectMultiple,
                                                 help_text="One more condition per objective, on the 'both' snapshot.")
    learning_rate = forms.FloatField(initial=5e-7)
    max_steps = forms.IntegerField(initial=100, min_value=1)
    per_device_train_batch_size = forms.IntegerField(initial=4, min_value=1)
    max_length = forms.IntegerField(initial=1024, min_value=8)
    beta = forms.FloatField(initial=0.1)
    seed = forms.IntegerField(initial=42, min_value=0, max_value=MAX_SEED)

    def __init__(self, *args: Any, models: QuerySet[RegisteredModel], project: Any, model_key: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_model"].queryset = models.filter(status=RegisteredModel.Status.READY)
        for name in ("snapshot_humans", "snapshot_synthetic", "snapshot_both"):
            self.fields[name].choices = _snapshot_choices(project)
        _choose_models_by(self, model_key)

    def create(self, *, owner: Any, project: Any) -> Experiment | None:
        """Create the experiment and queue its conditions' runs; None with the refusal on its field."""
        data = self.cleaned_data
        try:
            return services.create_experiment(
                owner=owner, project=project, name=data["name"], base_model=data["base_model"],
                snapshots={"humans": data["snapshot_humans"], "synthetic": data["snapshot_synthetic"],
                           "both": data["snapshot_both"]},
                hyperparameters=self.hyperparameters(), seed=data["seed"], objective=data["objective"],
                extra_objectives=[o for o in data["extra_objectives"] if o != data["objective"]],
            )
        except services.TrainingError as exc:
            add_service_error(self, exc)
            return None

    def hyperparameters(self) -> dict[str, Any]:
        keys = ("learning_rate", "max_steps", "per_device_train_batch_size", "max_length", "beta")
        return {k: self.cleaned_data[k] for k in keys}
