"""Model-written persona descriptions: one batched engine call, attributes kept, unusable
outputs fall back to the template description with the reason recorded."""

from __future__ import annotations

import logging

from synthetic.backends import BackendConfig, GenerationOutput, GenerationParams
from synthetic.backends.fake_backend import FakeBackend
from synthetic.judging.describe import description_prompt, enrich_descriptions
from synthetic.personas import PanelSpec, generate_panel

PARAMS = GenerationParams(max_new_tokens=24, temperature=0.7)


class CountingFake(FakeBackend):
    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        self.batches: list[int] = []

    def generate(self, conversations, params):  # type: ignore[no-untyped-def]
        self.batches.append(len(conversations))
        return super().generate(conversations, params)


class ScriptedBackend(FakeBackend):
    """Answers with the given outputs, in order."""

    def __init__(self, outputs: list[GenerationOutput]) -> None:
        super().__init__(BackendConfig(engine="fake", model="scripted"))
        self.outputs = outputs

    def generate(self, conversations, params):  # type: ignore[no-untyped-def]
        return self.outputs[: len(conversations)]


def test_descriptions_come_from_the_engine_in_one_call_and_attributes_are_kept() -> None:
    panel = generate_panel(PanelSpec(size=6, seed=2))
    backend = CountingFake(BackendConfig(engine="fake", model="m"))
    enriched = enrich_descriptions(backend, panel, PARAMS, seed=5)
    assert backend.batches == [6]
    assert [p.id for p in enriched] == [p.id for p in panel]
    for before, after in zip(panel, enriched, strict=True):
        assert after.description.startswith("Fake answer") and after.description != before.description
        assert after.attributes == {**before.attributes, "description_source": "fake:m"}
    assert len({p.description for p in enriched}) > 1  # each persona has its own prompt
    again = enrich_descriptions(backend, panel, PARAMS, seed=5)
    assert [p.description for p in again] == [p.description for p in enriched]


def test_the_prompt_lists_every_attribute_but_not_the_bookkeeping() -> None:
    (persona,) = generate_panel(PanelSpec(size=1, seed=0))
    prompt = description_prompt(persona)
    assert f"- country: {persona.attributes['country']}" in prompt
    assert f"- political leaning: {persona.attributes['political_leaning']}" in prompt
    described = enrich_descriptions(FakeBackend(BackendConfig("fake", "m")), [persona], PARAMS, 0)[0]
    assert "description" not in description_prompt(described).split("[Attributes]")[1]


def test_unusable_outputs_keep_the_template_and_say_why(caplog) -> None:
    panel = generate_panel(PanelSpec(size=5, seed=1))
    backend = ScriptedBackend([
        GenerationOutput(text="  "),
        GenerationOutput(text="!!! 42 ..."),
        GenerationOutput(text='"Yes."'),
        GenerationOutput(text="", error="CUDA out of memory"),
        GenerationOutput(text='Description: "You are a nurse who loves gardening."'),
    ])
    with caplog.at_level(logging.WARNING, logger="synthetic.judging.describe"):
        enriched = enrich_descriptions(backend, panel, PARAMS, seed=0)
    reasons = [p.attributes.get("description_fallback") for p in enriched]
    assert reasons == [
        "empty output", "output has no words", "output too short (1 word)",
        "engine error: CUDA out of memory", None,
    ]
    for before, after in zip(panel[:4], enriched[:4], strict=True):
        assert after.description == before.description
        assert after.attributes["description_source"] == "template"
    assert enriched[4].description == "You are a nurse who loves gardening."
    assert enriched[4].attributes["description_source"] == "fake:scripted"
    assert "4 of 5 personas kept their template description" in caplog.text


def test_the_tiny_transformers_model_writes_strings(tiny_backend) -> None:
    panel = generate_panel(PanelSpec(size=3, seed=0))
    enriched = enrich_descriptions(tiny_backend, panel, PARAMS, seed=0)
    assert [p.id for p in enriched] == [p.id for p in panel]
    sources = [p.attributes["description_source"] for p in enriched]
    assert tiny_backend.model_label in sources  # random weights, but sampled text has words
    for before, after in zip(panel, enriched, strict=True):
        source = after.attributes["description_source"]
        assert isinstance(after.description, str) and after.description.strip()
        assert {k: after.attributes[k] for k in before.attributes} == before.attributes
        if source == tiny_backend.model_label:
            assert after.description != before.description
        else:
            assert source == "template" and after.attributes["description_fallback"]
