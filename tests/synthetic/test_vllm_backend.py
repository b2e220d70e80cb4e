"""The vLLM adapter's request building, tested without vLLM."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from synthetic.backends import (
    BackendConfig,
    BackendConfigError,
    BackendError,
    GenerationParams,
    RankingSpec,
)
from synthetic.backends.base import missing_packages
from synthetic.backends.ranking_grammar import default_labels, parse_ranking
from synthetic.backends.vllm_backend import (
    VLLMBackend,
    chat_kwargs,
    option_logprobs,
    ranking_plan,
    sampling_kwargs,
    score_kwargs,
    split_by_continuation,
    validate_ranking_answer,
)


def test_sampling_kwargs() -> None:
    params = GenerationParams(max_new_tokens=64, temperature=0.7, top_p=0.9, seed=3, stop=("\n",))
    assert sampling_kwargs(params) == {
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 64,
        "seed": 3,
        "stop": ["\n"],
    }
    assert "seed" not in sampling_kwargs(GenerationParams())


@pytest.mark.parametrize(
    ("k", "ties", "choices"),
    [(2, False, 2), (3, True, 13), (4, False, 24), (4, True, 75), (5, False, 120)],
)
def test_small_k_is_a_choice_over_every_valid_ordering(k: int, ties: bool, choices: int) -> None:
    spec = RankingSpec(default_labels(k), allow_ties=ties)
    plan = ranking_plan(spec, GenerationParams(), max_choices=120)
    assert plan.mode == "choice"
    assert len(plan.structured["choice"]) == choices
    for choice in plan.structured["choice"]:
        parse_ranking(choice, spec.labels, ties)
    assert plan.sampling["max_tokens"] >= len(max(plan.structured["choice"], key=len))


@pytest.mark.parametrize(
    "spec",
    [
        RankingSpec(default_labels(5), allow_ties=True),
        RankingSpec(default_labels(6)),
        RankingSpec(default_labels(2), reasoning=True),
    ],
)
def test_large_k_or_reasoning_is_a_json_schema(spec: RankingSpec) -> None:
    plan = ranking_plan(spec, GenerationParams(seed=1), max_choices=120)
    assert plan.mode == "json"
    schema = plan.structured["json"]
    assert schema["required"] == (["reasoning", "ranking"] if spec.reasoning else ["ranking"])
    assert plan.sampling["seed"] == 1
    if spec.reasoning:
        assert plan.sampling["max_tokens"] > spec.max_reasoning_tokens


def test_answers_are_validated_per_mode() -> None:
    spec = RankingSpec(default_labels(3))
    choice = ranking_plan(spec, GenerationParams(), 120)
    assert validate_ranking_answer(choice, "B > A > C", spec) == ("B > A > C", None)
    json_plan = ranking_plan(
        RankingSpec(default_labels(3), reasoning=True), GenerationParams(), 120
    )
    assert validate_ranking_answer(json_plan, '{"reasoning": "r", "ranking": "C>B>A"}', spec) == (
        "C>B>A",
        "r",
    )
    with pytest.raises(ValueError):
        validate_ranking_answer(json_plan, '{"reasoning": "r", "ranking": "C>C>A"}', spec)


def test_score_and_chat_kwargs() -> None:
    assert score_kwargs(20) == {"temperature": 0.0, "max_tokens": 1, "logprobs": 20}
    assert chat_kwargs(False)["add_generation_prompt"] is True
    assert chat_kwargs(True) == {
        "add_generation_prompt": False,
        "continue_final_message": True,
        "use_tqdm": False,
    }


def test_batches_split_by_whether_they_continue_an_assistant_turn() -> None:
    user = [{"role": "user", "content": "q"}]
    cont = [*user, {"role": "assistant", "content": "Because"}]
    assert split_by_continuation([user, cont, user, cont, cont]) == {False: [0, 2], True: [1, 3, 4]}


def test_option_logprobs_from_vllm_logprob_objects() -> None:
    first = {
        65: SimpleNamespace(logprob=-0.3),
        66: SimpleNamespace(logprob=-1.5),
        7: SimpleNamespace(logprob=-3.0),
    }
    assert option_logprobs(first, {"A": 65, "B": 66, "C": 67}) == {"A": -0.3, "B": -1.5}


@pytest.mark.skipif(not missing_packages("vllm"), reason="vLLM is installed here")
def test_constructing_without_vllm_is_a_clear_config_error(tmp_path) -> None:
    with pytest.raises(BackendConfigError) as excinfo:
        VLLMBackend(BackendConfig(engine="vllm", model=str(tmp_path)))
    assert str(excinfo.value).startswith("vLLM is not installed in this environment")
    assert "'transformers' engine" in str(excinfo.value)


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):  # noqa: ANN201
    """`fake_vllm(source)`: a `vllm` package on the path whose `__init__` is `source` (vLLM itself
    is not needed); the real one (if any) is back in place after the test."""
    real = sys.modules.pop("vllm", None)

    def install(source: str) -> None:
        package = tmp_path / "site" / "vllm"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path / "site"))

    yield install
    sys.modules.pop("vllm", None)
    if real is not None:
        sys.modules["vllm"] = real


def test_an_installed_vllm_that_does_not_import_names_the_import_error(fake_vllm, tmp_path) -> None:
    fake_vllm('raise ImportError("libcudart.so.12: cannot open shared object file\\nmore")')
    with pytest.raises(BackendError) as excinfo:
        VLLMBackend(BackendConfig(engine="vllm", model=str(tmp_path)))
    assert str(excinfo.value) == (
        "vLLM is installed but could not be imported: ImportError: libcudart.so.12: cannot open shared object file"
    )


def test_a_model_vllm_cannot_start_is_one_line_naming_the_model(fake_vllm, tmp_path) -> None:
    fake_vllm(
        "class LLM:\n"
        "    def __init__(self, **kwargs):\n"
        "        raise RuntimeError('Engine core initialization failed. See root cause above.\\n{}')\n"
    )
    with pytest.raises(BackendError) as excinfo:
        VLLMBackend(BackendConfig(engine="vllm", model=str(tmp_path)))
    assert str(excinfo.value) == (
        f"vLLM could not start model {tmp_path}: RuntimeError: Engine core initialization failed. See root cause above."
    )
