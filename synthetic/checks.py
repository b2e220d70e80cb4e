"""System checks of the synthetic app: a malformed INFERENCE_ENDPOINTS fails `manage.py check`
(and every start-up), naming the endpoint and key at fault."""
from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from synthetic import endpoints


@checks.register(checks.Tags.compatibility)
def check_inference_endpoints(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        endpoints.configured()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="See README.md, Inference endpoints.", id="synthetic.E001")]
    return []
