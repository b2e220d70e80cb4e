"""Operator-defined inference endpoints: the only addresses an OpenAI-compatible engine talks to.

The operator names endpoints in the `INFERENCE_ENDPOINTS` setting (JSON in the environment
variable of the same name):

    {"gpu-fleet": {"base_urls": ["http://10.0.0.5:8000/v1", "http://10.0.0.6:8000/v1"],
                   "api_key_env": "VLLM_API_KEY", "description": "Llama 3.1 8B on the A100 nodes"},
     "local-vllm": {"base_urls": ["http://127.0.0.1:8000/v1"]}}

Researchers choose an endpoint by name (the run form, `backend_options={"endpoint": ...}`); a run
never holds an address or a variable name, so no user-supplied value can send a server secret
anywhere or reach an address the operator did not list. The key is read from the operator's
variable in the process that sends the requests and lives only in memory (`BackendConfig.api_key`).

With `INFERENCE_ALLOW_FREE_URLS` (default off) a run may instead give its own `base_url`; no key
is ever sent to such an address. That lets researchers reach anything the server can reach, so
it is meant for single-user installations only.

Error messages never say whether an environment variable exists: a missing key reads the same
whatever its variable is called, and the name is in the operator's settings, not in the message.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KNOWN_KEYS = frozenset({"base_urls", "base_url", "api_key_env", "description"})
# What a run may say about where its requests go: an endpoint name, or (if allowed) a free URL.
RUN_OPTIONS = frozenset({"endpoint", "base_url"})
# Never accepted from a run: a run does not name secrets or lists of addresses.
FORBIDDEN_OPTIONS = frozenset({"api_key_env", "api_key", "base_urls"})


class EndpointError(ValueError):
    """A run's endpoint choice cannot be used; the message is safe to show to the researcher."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    base_urls: tuple[str, ...]
    api_key_env: str | None = None
    description: str = ""

    def api_key(self) -> str | None:
        """The key from the operator's variable; EndpointError (not naming it) when it is unset."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise EndpointError(
                f"endpoint {self.name!r} has no API key configured on this server; ask the operator"
            )
        return key

    def summary(self) -> str:
        """What a researcher sees in the form: name, replicas, description (never the addresses)."""
        replicas = f"{len(self.base_urls)} replica{'s' if len(self.base_urls) != 1 else ''}"
        return f"{self.name} ({replicas})" + (f": {self.description}" if self.description else "")


def _url_problem(url: object) -> str | None:
    if not isinstance(url, str):
        return f"must be a string, got {type(url).__name__}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL"
    if parts.username or parts.password:
        return f"{url!r} holds credentials; put the key in the variable named by api_key_env"
    if parts.query or parts.fragment:
        return f"{url!r} has a query or fragment; give the base URL only, e.g. http://host:8000/v1"
    return None


def parse_endpoints(raw: Any) -> dict[str, Endpoint]:
    """Endpoints from the setting's value (a dict, or its JSON); ImproperlyConfigured naming the fault."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise ImproperlyConfigured(f"INFERENCE_ENDPOINTS is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("INFERENCE_ENDPOINTS must map endpoint names to {base_urls, api_key_env?}")
    return {name: _endpoint(name, spec) for name, spec in raw.items()}


def _endpoint(name: str, spec: Any) -> Endpoint:
    where = f"INFERENCE_ENDPOINTS[{name!r}]"
    if not NAME.match(name):
        raise ImproperlyConfigured(f"{where}: a name is 1-64 letters, digits, '.', '_' or '-'")
    if not isinstance(spec, dict):
        raise ImproperlyConfigured(f"{where} must be an object {{base_urls, api_key_env?, description?}}")
    unknown = sorted(set(spec) - KNOWN_KEYS)
    if unknown:
        raise ImproperlyConfigured(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}")
    urls = spec.get("base_urls", [spec["base_url"]] if "base_url" in spec else [])
    if isinstance(urls, str) or not isinstance(urls, list) or not urls:
        raise ImproperlyConfigured(f"{where}.base_urls must be a non-empty list of URLs")
    for index, url in enumerate(urls):
        problem = _url_problem(url)
        if problem:
            raise ImproperlyConfigured(f"{where}.base_urls[{index}]: {problem}")
    key_env = spec.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str) or not ENV_NAME.match(key_env)):
        raise ImproperlyConfigured(f"{where}.api_key_env must be an environment variable name")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise ImproperlyConfigured(f"{where}.description must be a string")
    base_urls = tuple(dict.fromkeys(u.rstrip("/") for u in urls))
    return Endpoint(name=name, base_urls=base_urls, api_key_env=key_env, description=description)


def configured() -> dict[str, Endpoint]:
    """The operator's endpoints, read from settings each time (tests and reloads change them)."""
    return parse_endpoints(getattr(settings, "INFERENCE_ENDPOINTS", {}) or {})


def free_urls_allowed() -> bool:
    return bool(getattr(settings, "INFERENCE_ALLOW_FREE_URLS", False))


def choices() -> list[tuple[str, str]]:
    """(name, summary) of every endpoint, for the run forms."""
    return [(name, endpoint.summary()) for name, endpoint in sorted(configured().items())]


def check_run_options(options: dict[str, Any]) -> None:
    """EndpointError if a run's options try to name a secret or a list of addresses."""
    forbidden = sorted(set(options) & FORBIDDEN_OPTIONS)
    if forbidden:
        raise EndpointError(
            f"a run cannot set {', '.join(forbidden)}: API keys and addresses belong to the operator's "
            "inference endpoints; choose an endpoint by name"
        )


def resolve(endpoint: str | None, base_url: str | None) -> dict[str, Any]:
    """`BackendConfig` fields (`endpoint`, `base_urls`, `api_key`) for a run's choice.

    Exactly one of an endpoint name (always) or a free `base_url` (only where the operator allows
    it, and then without a key) is needed.
    """
    if endpoint and base_url:
        raise EndpointError("give an endpoint name or a base URL, not both")
    if base_url:
        return _free_url(base_url)
    if not endpoint:
        names = ", ".join(sorted(configured())) or "none is configured; ask the operator to set INFERENCE_ENDPOINTS"
        raise EndpointError(f"the openai engine needs an inference endpoint; choose one of: {names}")
    known = configured()
    if endpoint not in known:
        names = ", ".join(sorted(known)) or "none (the operator has configured no endpoint)"
        raise EndpointError(f"unknown inference endpoint {endpoint!r}; choose one of: {names}")
    chosen = known[endpoint]
    return {"endpoint": chosen.name, "base_urls": chosen.base_urls, "api_key": chosen.api_key()}


def _free_url(base_url: str) -> dict[str, Any]:
    if not free_urls_allowed():
        raise EndpointError(
            "this server does not accept free base URLs; choose one of the operator's inference endpoints by name"
        )
    problem = _url_problem(base_url)
    if problem:
        raise EndpointError(f"base URL: {problem}")
    return {"endpoint": None, "base_urls": (base_url.rstrip("/"),), "api_key": None}
