"""The inference-backend interface, its data shapes and the engine registry.

An engine is chosen per run by name (`BackendConfig.engine`) and imported lazily: importing this
module never imports torch, transformers, httpx-heavy clients or vLLM.

Conversation convention (all engines): a conversation is a list of chat messages
`{"role": ..., "content": ...}`. When the last message has role "assistant", the engine continues
that message (no new assistant turn is opened): this is how reasoning-then-answer works.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Message = dict[str, str]
Conversation = list[Message]


class BackendConfigError(ValueError):
    """A backend configuration that cannot run; the message says what to fix."""


class BackendError(RuntimeError):
    """An engine failed at run time (server unreachable after retries, CUDA error, ...)."""


@dataclass(frozen=True)
class BackendConfig:
    """What a run needs to build its engine. Validated by `validate_config` before a run starts.

    `model` is a local HF directory or a `.gguf` file (transformers, vllm) or the served model
    name (openai). The openai engine's addresses and key come from an operator-defined inference
    endpoint (`synthetic.endpoints.resolve`): `endpoint` is its name, `base_urls` its replicas and
    `api_key` the key read from the operator's variable. The key lives only in memory: it is never
    stored, logged or shown (`repr=False`), and a run never names where it comes from.
    """

    engine: str
    model: str
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 8
    endpoint: str | None = None
    base_urls: tuple[str, ...] = ()
    api_key: str | None = field(default=None, repr=False)
    max_concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 3
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        """A short model name: the directory or file name for local models."""
        if self.engine == "openai":
            return self.model
        return Path(self.model).name or self.model

    @property
    def label(self) -> str:
        """`engine:model-name`, the rater's `model` field in exports."""
        return f"{self.engine}:{self.model_name}"


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters shared by all engines. `temperature == 0` means greedy."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class RankingSpec:
    """A constrained listwise ranking request: the answer must rank every label exactly once.

    The answer text grammar is `ranking_grammar.RANKING_GRAMMAR` (e.g. `B > A = C > D`); `=` is
    allowed only with `allow_ties`. With `reasoning`, the engine first writes free text of at most
    `max_reasoning_tokens`, then the constrained answer.
    """

    labels: tuple[str, ...]
    allow_ties: bool = False
    reasoning: bool = False
    max_reasoning_tokens: int = 256


@dataclass
class GenerationOutput:
    """One engine answer. `text` is the answer (for rankings: the ranking text); `raw` is
    everything the engine returned, kept for the judgment record."""

    text: str
    raw: str = ""
    reasoning: str | None = None
    finish_reason: str = "stop"
    num_tokens: int = 0
    attempts: int = 1
    error: str | None = None
    # Constrained rankings: the share of the first answer token's unconstrained probability on
    # tokens the constraint allows (how much the model wanted to answer in the format at all);
    # None where the engine cannot report it.
    label_mass: float | None = None


class Backend(ABC):
    """One small interface over several engines."""

    engine: str = ""
    # True where `config.model` is a local path the engine opens: the web side then accepts it
    # only under the operator's model roots (synthetic.services.backend_config, jobs.paths).
    loads_local_model: bool = False

    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    @property
    def model_label(self) -> str:
        return self.config.label

    @classmethod
    def config_problems(cls, config: BackendConfig) -> list[str]:
        """Reasons `config` cannot run with this engine; checked without loading anything heavy."""
        return []

    @classmethod
    def readiness_problems(cls, config: BackendConfig) -> list[str]:
        """Reasons `config` cannot run right now (a server that does not answer); may use the
        network, so it is asked once before a run is queued, not on every form render."""
        return []

    @abstractmethod
    def generate(
        self, conversations: list[Conversation], params: GenerationParams
    ) -> list[GenerationOutput]:
        """Free-text answers, one per conversation, in input order."""

    @abstractmethod
    def score(
        self, conversations: list[Conversation], options: list[str]
    ) -> list[dict[str, float]]:
        """Log-probability of each option string as the continuation of each conversation
        (next-token log-probability for single-token options), one dict per conversation."""

    @abstractmethod
    def rank(
        self, conversations: list[Conversation], spec: RankingSpec, params: GenerationParams
    ) -> list[GenerationOutput]:
        """Constrained listwise rankings: `text` is a ranking over `spec.labels` that parses
        with `ranking_grammar.parse_ranking`, or `error` says why the engine could not make one."""

    def close(self) -> None:
        """Release engine resources (GPU memory, HTTP connections)."""
        return None


# Engines by name -> "module:Class". Imported only when a run asks for them.
_REGISTRY: dict[str, str] = {
    "transformers": "synthetic.backends.transformers_backend:TransformersBackend",
    "vllm": "synthetic.backends.vllm_backend:VLLMBackend",
    "openai": "synthetic.backends.openai_backend:OpenAIBackend",
    "fake": "synthetic.backends.fake_backend:FakeBackend",
}

# Python packages each engine needs at run time.
ENGINE_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "transformers": ("torch", "transformers"),
    "vllm": ("vllm",),
    "openai": ("httpx",),
    "fake": (),
}
# What to do instead, said where an engine's packages are missing.
ENGINE_INSTALL_HINTS: dict[str, str] = {
    "vllm": (
        "vLLM is an optional extra for GPU machines (pip install vllm); use the 'transformers' "
        "engine here, or the 'openai' engine against a `vllm serve` server"
    ),
}


def register_backend(name: str, target: str, requires: tuple[str, ...] = ()) -> None:
    """Register an engine as `"package.module:ClassName"` under `name`."""
    _REGISTRY[name] = target
    ENGINE_REQUIREMENTS[name] = requires


def available_engines() -> list[str]:
    """Registered engine names, installed or not."""
    return sorted(_REGISTRY)


def missing_packages(engine: str) -> list[str]:
    """The packages `engine` needs that are not importable here."""
    return [p for p in ENGINE_REQUIREMENTS.get(engine, ()) if importlib.util.find_spec(p) is None]


def backend_class(engine: str) -> type[Backend]:
    """Import and return the class registered under `engine`."""
    if engine not in _REGISTRY:
        raise BackendConfigError(
            f"Unknown inference engine {engine!r}; choose one of: {', '.join(available_engines())}."
        )
    module_name, class_name = _REGISTRY[engine].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def config_problems(config: BackendConfig) -> list[str]:
    """Every reason `config` cannot run here, as user-facing sentences (empty when it can)."""
    if config.engine not in _REGISTRY:
        return [
            f"Unknown inference engine {config.engine!r}; "
            f"choose one of: {', '.join(available_engines())}."
        ]
    missing = missing_packages(config.engine)
    if missing:
        hint = ENGINE_INSTALL_HINTS.get(config.engine)
        return [
            f"The {config.engine!r} engine needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed on this machine"
            + (f": {hint}." if hint else ".")
        ]
    problems = [] if config.batch_size >= 1 else ["batch_size must be at least 1."]
    if config.max_retries < 0 or config.timeout_s <= 0 or config.max_concurrency < 1:
        problems.append("max_retries must be >= 0, timeout_s > 0 and max_concurrency >= 1.")
    return problems + backend_class(config.engine).config_problems(config)


def readiness_problems(config: BackendConfig) -> list[str]:
    """Every reason a valid `config` cannot run now (its server unreachable), as sentences."""
    return backend_class(config.engine).readiness_problems(config)


def validate_config(config: BackendConfig) -> None:
    """Raise `BackendConfigError` with every problem of `config`, or return quietly."""
    problems = config_problems(config)
    if problems:
        raise BackendConfigError(" ".join(problems))


def load_backend(config: BackendConfig) -> Backend:
    """Validate `config`, then build its engine (this is where heavy imports happen)."""
    validate_config(config)
    return backend_class(config.engine)(config)


def loads_local_model(engine: str) -> bool:
    """Whether `engine`'s model is a local path (False for an unknown engine: config_problems names it)."""
    if engine not in _REGISTRY:
        return False
    return bool(getattr(backend_class(engine), "loads_local_model", False))


def local_model_problems(model: str) -> list[str]:
    """Problems with a local model path: an HF directory with config.json, or a .gguf file."""
    if not model:
        return ["No model given: set the path of a local model directory or .gguf file."]
    path = Path(model)
    if not path.exists():
        return [f"Model path {model!r} does not exist (prepare the default model first?)."]
    if path.is_file() and path.suffix != ".gguf":
        return [f"Model file {model!r} is not a .gguf file; give a model directory instead."]
    if path.is_dir() and not (path / "config.json").exists():
        return [f"Model directory {model!r} has no config.json; it is not a Hugging Face model."]
    return []
