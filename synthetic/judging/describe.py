"""Persona descriptions written by an engine from each persona's attributes (pure: no Django).

`generate_panel` writes descriptions from a fixed template; `enrich_descriptions` asks a model for
richer ones in one batched call. An output that is unusable (engine error, empty, a few stray
tokens) keeps the template description, and the persona's attributes say why: no fallback is
silent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace

from synthetic.backends.base import Backend, GenerationOutput, GenerationParams
from synthetic.judging.prompts import load_template
from synthetic.personas import Persona

logger = logging.getLogger(__name__)

DEFAULT_DESCRIPTION_PROMPT = "persona_description_v1"
# Attributes this module writes; never shown to the model as facts about the person.
SOURCE_KEY = "description_source"
FALLBACK_KEY = "description_fallback"
TEMPLATE_SOURCE = "template"
MIN_WORDS = 3
_LABEL = re.compile(r"^(description|persona)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’"


def description_prompt(persona: Persona, prompt_version: str = DEFAULT_DESCRIPTION_PROMPT) -> str:
    """The user message asking for `persona`'s description, its attributes one per line."""
    template = load_template(prompt_version)
    lines = [
        template.render("attribute", name=name.replace("_", " "), value=value)
        for name, value in persona.attributes.items()
        if name not in (SOURCE_KEY, FALLBACK_KEY)
    ]
    return template.render("user", attributes="\n".join(lines))


def clean_description(output: GenerationOutput) -> tuple[str | None, str]:
    """The usable description in `output` and "", or None and the reason it is unusable."""
    if output.error:
        return None, f"engine error: {output.error}"
    text = " ".join(output.text.split())
    text = _LABEL.sub("", text).strip(_QUOTES + " ")
    if not text:
        return None, "empty output"
    if not any(c.isalpha() for c in text):
        return None, "output has no words"
    words = len(text.split())
    if words < MIN_WORDS:
        return None, f"output too short ({words} word{'s' if words != 1 else ''})"
    return text, ""


def enrich_descriptions(
    backend: Backend,
    personas: Sequence[Persona],
    params: GenerationParams,
    seed: int,
    prompt_version: str = DEFAULT_DESCRIPTION_PROMPT,
) -> list[Persona]:
    """`personas` with model-written descriptions, in order, from one `generate` call.

    Ids and attributes are kept; `attributes["description_source"]` is the engine label
    (`engine:model`) when the model's text is used, or "template" when the template description
    is kept, with `attributes["description_fallback"]` giving the reason.
    """
    conversations = [
        [{"role": "user", "content": description_prompt(p, prompt_version)}] for p in personas
    ]
    outputs = backend.generate(conversations, replace(params, seed=seed)) if personas else []
    enriched = [
        _described(p, out, backend.model_label) for p, out in zip(personas, outputs, strict=True)
    ]
    fallbacks = sum(1 for p in enriched if FALLBACK_KEY in p.attributes)
    if fallbacks:
        logger.warning(
            "%d of %d personas kept their template description (unusable output from %s)",
            fallbacks, len(enriched), backend.model_label,
        )
    return enriched


def _described(persona: Persona, output: GenerationOutput, label: str) -> Persona:
    text, reason = clean_description(output)
    if text is None:
        attributes = {**persona.attributes, SOURCE_KEY: TEMPLATE_SOURCE, FALLBACK_KEY: reason}
        return replace(persona, attributes=attributes)
    return replace(persona, description=text, attributes={**persona.attributes, SOURCE_KEY: label})
