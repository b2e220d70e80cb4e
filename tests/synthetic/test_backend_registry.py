from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from synthetic.backends import (
    BackendConfig,
    BackendConfigError,
    available_engines,
    config_problems,
    load_backend,
    validate_config,
)
from synthetic.backends.base import missing_packages


def test_importing_backends_does_not_import_heavy_engines() -> None:
    code = (
        "import sys, synthetic.backends, synthetic.judging, synthetic.personas; "
        "heavy = [m for m in ('torch', 'transformers', 'vllm') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_registry_lists_every_engine() -> None:
    assert {"transformers", "vllm", "openai", "fake"} <= set(available_engines())


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(BackendConfigError, match="Unknown inference engine 'llamacpp'"):
        validate_config(BackendConfig(engine="llamacpp", model="x"))


def test_missing_model_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendConfigError, match="does not exist"):
        load_backend(BackendConfig(engine="transformers", model=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendConfigError, match="no config.json"):
        validate_config(BackendConfig(engine="transformers", model=str(tmp_path / "empty")))
    with pytest.raises(BackendConfigError, match="No model given"):
        validate_config(BackendConfig(engine="transformers", model=""))


@pytest.mark.skipif(not missing_packages("vllm"), reason="vLLM is installed on this machine")
def test_vllm_missing_is_reported_before_the_run(tmp_path: Path) -> None:
    problems = config_problems(BackendConfig(engine="vllm", model=str(tmp_path)))
    assert problems == [
        "The 'vllm' engine needs vllm, which is not installed on this machine: vLLM is an optional extra for "
        "GPU machines (pip install vllm); use the 'transformers' engine here, or the 'openai' engine against a "
        "`vllm serve` server."
    ]


def test_openai_needs_an_endpoint() -> None:
    with pytest.raises(BackendConfigError, match="inference endpoint"):
        validate_config(BackendConfig(engine="openai", model="m"))


def test_model_label() -> None:
    config = BackendConfig(engine="transformers", model="/srv/models/smollm2-135m/")
    assert config.label == "transformers:smollm2-135m"
    assert (
        BackendConfig(engine="openai", model="org/m", base_urls=("http://h",)).label == "openai:org/m"
    )
