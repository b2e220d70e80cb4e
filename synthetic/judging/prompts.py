"""Versioned prompt templates (files in synthetic/prompts/) and conversation building (pure).

A template file holds sections, each starting with a line `=== name ===`; lines before the first
section starting with `#` are comments. Placeholders are `$name` (string.Template), so responses
may contain braces or dollar signs freely: values are never re-interpreted.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from synthetic.backends.base import Conversation

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
_VERSION = re.compile(r"^[a-z0-9_]+$")
_SECTION = re.compile(r"^=== (\w+) ===$")


class PromptTemplateError(ValueError):
    """A missing or malformed prompt template."""


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    sections: dict[str, str]

    def has(self, section: str) -> bool:
        return section in self.sections

    def answer_prefix(self, reasoning: bool) -> Conversation:
        """The assistant turn an answer continues (`answer_prefix` section), if the template has
        one and the judge answers at once (with reasoning, the engine writes first)."""
        if reasoning or not self.has("answer_prefix"):
            return []
        return [{"role": "assistant", "content": self.render("answer_prefix")}]

    def render(self, section: str, **values: object) -> str:
        if section not in self.sections:
            raise PromptTemplateError(f"template {self.version!r} has no section {section!r}")
        try:
            return string.Template(self.sections[section]).substitute(values)
        except KeyError as exc:
            raise PromptTemplateError(
                f"template {self.version!r} section {section!r} needs ${exc.args[0]}"
            ) from exc


def parse_template(version: str, text: str) -> PromptTemplate:
    """Split a template file into its sections (text between markers, outer newlines trimmed)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            current = sections.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
        elif line.strip() and not line.startswith("#"):
            raise PromptTemplateError(f"template {version!r}: text before the first section")
    return PromptTemplate(version, {k: "\n".join(v).strip("\n") for k, v in sections.items()})


@lru_cache(maxsize=32)
def load_template(version: str, directory: Path = PROMPTS_DIR) -> PromptTemplate:
    """The template `<directory>/<version>.txt`."""
    if not _VERSION.match(version):
        raise PromptTemplateError(f"invalid prompt version {version!r}")
    path = directory / f"{version}.txt"
    if not path.exists():
        raise PromptTemplateError(f"no prompt template {version!r} in {directory}")
    return parse_template(version, path.read_text(encoding="utf-8"))


def available_versions(directory: Path = PROMPTS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.txt"))
