"""Operator-defined inference endpoints: a run never names an environment variable or an address.

Real OpenAI-compatible servers on 127.0.0.1 (tests/openai_server.py): two replicas of the
operator's endpoint, one killed mid-run, and a third server standing for an address the operator
did not list, which must never receive a request.
"""
from __future__ import annotations

import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from jobs.models import Run
from jobs.runner import execute
from synthetic import endpoints
from synthetic.forms import SyntheticRunForm
from synthetic.models import Judgment, SyntheticRun
from synthetic.services import SyntheticRunError, backend_config, start_synthetic_run
from tests import openai_server
from tests.openai_server import closed_port_url, ranking_reply

serve = openai_server.serve  # the fixture

pytestmark = pytest.mark.django_db(transaction=True)

KEY_VAR = "RLCHF_TEST_FLEET_KEY"


@pytest.fixture
def elsewhere(serve):
    """A server the operator did not list (an attacker's, or an internal service)."""
    return serve(ranking_reply)[0]


@pytest.fixture
def fleet(serve, settings, monkeypatch, elsewhere):
    """Endpoint "fleet": two replicas with a key; "open": one replica, no key."""
    a, b = serve(ranking_reply)[0], serve(ranking_reply)[0]
    monkeypatch.setenv(KEY_VAR, "sk-fleet")
    settings.INFERENCE_ENDPOINTS = {
        "fleet": {"base_urls": [a.url, b.url], "api_key_env": KEY_VAR, "description": "two replicas"},
        "open": {"base_urls": [b.url]},
    }
    return a, b


def _start(owner, project, panel, **options):
    return start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="openai", model="judge-7b",
                               backend_options=options)


# ---------------------------------------------------------------- a run never names a variable


@pytest.mark.parametrize(
    "options",
    [
        {"api_key_env": "SECRET_KEY"},
        {"api_key_env": "DATABASE_URL", "endpoint": "fleet"},
        {"api_key": "sk-mine", "endpoint": "fleet"},
        {"base_urls": ["http://169.254.169.254/latest"]},
    ],
    ids=["secret-key", "beside-an-endpoint", "a-key-itself", "own-address-list"],
)
def test_service_rejects_a_run_that_names_a_secret_or_addresses(owner, project, panel, fleet, elsewhere, options):
    with pytest.raises(SyntheticRunError, match="belong to the operator's inference endpoints"):
        _start(owner, project, panel, **options)
    assert not SyntheticRun.objects.exists() and not Run.objects.exists()
    assert elsewhere.requests == [] and elsewhere.model_requests == []


def test_a_free_url_is_refused_unless_the_operator_allows_it(owner, project, panel, fleet, elsewhere):
    with pytest.raises(SyntheticRunError, match="does not accept free base URLs"):
        _start(owner, project, panel, base_url=elsewhere.url)
    assert not Run.objects.exists()
    assert elsewhere.requests == [] and elsewhere.model_requests == []


def test_an_unknown_endpoint_lists_the_operators_names(owner, project, panel, fleet):
    with pytest.raises(SyntheticRunError, match="unknown inference endpoint 'nope'; choose one of: fleet, open"):
        _start(owner, project, panel, endpoint="nope")


def test_a_missing_key_reads_the_same_whatever_the_variable(settings, monkeypatch, fleet):
    """The message names the endpoint, never the variable, and does not depend on whether it exists."""
    url = fleet[0].url
    monkeypatch.setenv("RLCHF_TEST_EMPTY_KEY", "")
    monkeypatch.delenv("RLCHF_TEST_ABSENT_KEY", raising=False)
    settings.INFERENCE_ENDPOINTS = {
        "x": {"base_urls": [url], "api_key_env": "RLCHF_TEST_EMPTY_KEY"},
        "y": {"base_urls": [url], "api_key_env": "RLCHF_TEST_ABSENT_KEY"},
    }
    messages = []
    for name in ("x", "y"):
        with pytest.raises(SyntheticRunError) as caught:
            backend_config("openai", "judge-7b", {"endpoint": name})
        messages.append(str(caught.value).replace(f"'{name}'", "'?'"))
    assert messages[0] == messages[1] == "backend: endpoint '?' has no API key configured on this server; ask the operator"


def test_the_form_offers_endpoint_names_and_no_variable_or_url_field(fleet, project, panel):
    form = SyntheticRunForm(panels=panel.__class__.objects.all())
    assert "api_key_env" not in form.fields and "base_url" not in form.fields
    assert [name for name, _ in form.fields["endpoint"].choices] == ["", "fleet", "open"]
    assert dict(form.fields["endpoint"].choices)["fleet"] == "fleet (2 replicas): two replicas"


RUN_FORM = {"engine": "openai", "model": "judge-7b", "device": "auto", "batch_size": 8, "method": "listwise",
            "items": "all", "sample_seed": 0, "tie_margin": 0.05, "temperature": 0, "seed": 0}


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"endpoint": "fleet", "api_key_env": "SECRET_KEY"}, "A run cannot set api_key_env"),
        ({"base_url": "http://127.0.0.1:1/v1"}, "does not accept free base URLs"),
        ({"endpoint": "not-listed"}, "Select a valid choice"),
        ({}, "Choose the endpoint that serves this model."),
    ],
    ids=["variable", "free-url", "unknown-endpoint", "no-endpoint"],
)
def test_the_run_form_rejects_variables_and_addresses(client, owner, project, panel, fleet, elsewhere, extra, message):
    client.force_login(owner)
    url = reverse("synthetic-run-create", args=[project.public_id])
    response = client.post(url, {**RUN_FORM, "panel": panel.pk, **extra})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Run.objects.exists() and elsewhere.model_requests == []


def test_the_run_form_starts_a_run_on_a_named_endpoint(client, owner, project, panel, fleet):
    client.force_login(owner)
    response = client.post(reverse("synthetic-run-create", args=[project.public_id]),
                           {**RUN_FORM, "panel": panel.pk, "endpoint": "fleet"})
    assert response.status_code == 302
    assert SyntheticRun.objects.get().backend_options == {"device": "auto", "batch_size": 8, "endpoint": "fleet"}


# ---------------------------------------------------------------- requests go to listed replicas only


def test_a_run_spreads_over_the_replicas_survives_a_killed_one_and_reaches_nothing_else(
    owner, project, panel, fleet, elsewhere
):
    a, b = fleet
    script = a.script

    def dies_after_two(body, number):  # noqa: ANN001, ANN202
        if number == 2:
            a.kill()  # answers this request, then refuses every connection
        return script(body, number)

    a.script = dies_after_two
    # One request at a time, so "after its second answer" is exact: round robin a, b, a, ...
    srun = _start(owner, project, panel, endpoint="fleet", max_concurrency=1, options={"backoff_s": 0.01})
    run = execute(srun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    judgments = Judgment.objects.filter(run=srun)
    assert judgments.count() == 9 and not judgments.filter(parsed_ranking__isnull=True).exists()
    assert len(a.requests) == 2 and len(b.requests) >= 7  # the rest went to the live replica
    assert elsewhere.requests == [] and elsewhere.model_requests == []
    sent = [*a.headers, *b.headers, *a.model_requests, *b.model_requests]
    assert {h["Authorization"] for h in sent} == {"Bearer sk-fleet"}
    assert "sk-fleet" not in str(srun.backend_options) and "sk-fleet" not in run.log


def test_with_free_urls_allowed_no_key_is_ever_sent(settings, owner, project, panel, fleet, elsewhere):
    settings.INFERENCE_ALLOW_FREE_URLS = True
    srun = _start(owner, project, panel, base_url=elsewhere.url)
    assert execute(srun.run.pk).status == Run.Status.SUCCEEDED
    assert elsewhere.requests and all("Authorization" not in h for h in [*elsewhere.headers, *elsewhere.model_requests])
    with pytest.raises(SyntheticRunError, match="not both"):
        _start(owner, project, panel, base_url=elsewhere.url, endpoint="fleet")


# ---------------------------------------------------------------- the models request before the run


def test_an_unreachable_endpoint_is_a_clear_error_and_no_run_starts(settings, owner, project, panel):
    settings.INFERENCE_ENDPOINTS = {"dead": {"base_urls": [closed_port_url()]}}
    with pytest.raises(SyntheticRunError, match=r"endpoint 'dead' is not reachable: no replica answered GET /models"):
        _start(owner, project, panel, endpoint="dead")
    assert not Run.objects.exists()


def test_an_endpoint_that_dies_after_the_start_fails_the_run_at_once_with_the_cause(owner, project, panel, fleet):
    srun = _start(owner, project, panel, endpoint="fleet")
    for replica in fleet:
        replica.kill()
    run = execute(srun.run.pk)
    assert run.status == Run.Status.FAILED
    assert "endpoint 'fleet' is not reachable" in run.error
    assert not Judgment.objects.filter(run=srun).exists()


def _refuses_with_the_key(body, number):  # noqa: ANN001, ANN202
    """A replica that answers /models but refuses every request, echoing the key it got."""
    return 401, {"error": {"message": "Incorrect API key provided: sk-fleet.", "code": "invalid_api_key"}}, 0


@pytest.mark.parametrize("method", ["listwise", "pairwise_logprob"])
def test_a_run_whose_every_request_is_refused_fails_naming_the_endpoint_and_never_the_key(
    owner, project, panel, fleet, method
):
    for replica in fleet:
        replica.script = _refuses_with_the_key
    srun = start_synthetic_run(owner=owner, project=project, panel=panel, engine="openai", model="judge-7b",
                               method=method, backend_options={"endpoint": "fleet", "options": {"backoff_s": 0.01}})
    run = execute(srun.run.pk)
    assert run.status == Run.Status.FAILED
    refused = r"endpoint 'fleet' \(http://127\.0\.0\.1:\d+/v1\): HTTP 401: the API key was refused \(server: " \
              r"Incorrect API key provided: \*\*\*\.\)"
    if method == "listwise":  # every judgment stored as failed: the first error and its count
        assert re.fullmatch(rf"every judgment failed \(9 of 9\); first error \(\d time\(s\)\): {refused}",
                            run.error_cause), run.error_cause
    else:  # a scoring request has no partial answer: the engine's failure ends the run
        assert re.fullmatch(rf"openai:judge-7b: scoring request failed: {refused}", run.error_cause), run.error_cause
    assert "sk-fleet" not in run.error and "sk-fleet" not in run.log


# ---------------------------------------------------------------- the operator's setting


@pytest.mark.parametrize(
    "raw,message",
    [
        ("{not json", "not valid JSON"),
        ({"x": {"base_urls": []}}, "non-empty list"),
        ({"x": {"base_urls": ["ftp://h/v1"]}}, "is not an http(s) URL"),
        ({"x": {"base_urls": ["http://user:pw@h/v1"]}}, "holds credentials"),
        ({"x": {"base_urls": ["http://h/v1"], "api_key_env": "not a name"}}, "environment variable name"),
        ({"x": {"base_urls": ["http://h/v1"], "key": "sk"}}, "unknown key(s) key"),
        ({"bad name!": {"base_urls": ["http://h/v1"]}}, "a name is"),
    ],
)
def test_a_malformed_setting_fails_start_up_naming_the_fault(raw, message):
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(").replace(")", r"\)")):
        endpoints.parse_endpoints(raw)


def test_the_system_check_reports_a_malformed_setting(settings):
    from synthetic.checks import check_inference_endpoints

    settings.INFERENCE_ENDPOINTS = {"x": {"base_urls": "http://h/v1"}}
    (error,) = check_inference_endpoints()
    assert error.id == "synthetic.E001" and "base_urls" in error.msg


def test_generation_runs_and_model_written_panels_take_endpoints_by_name_only(owner, project, fleet, elsewhere):
    from synthetic.services import PanelError, generate_panel, start_generation_run

    prompts = [{"id": "g1", "prompt": "Hello?"}]
    for bad in ({"api_key_env": "SECRET_KEY", "endpoint": "fleet"}, {"base_url": elsewhere.url}):
        with pytest.raises(SyntheticRunError, match="operator"):
            start_generation_run(owner=owner, project=project, prompts=prompts, k=2,
                                 models=[{"engine": "openai", "model": "judge-7b", **bad}])
        with pytest.raises(PanelError, match="operator"):
            generate_panel(owner=owner, name="p", size=2, describe_with={"engine": "openai", "model": "judge-7b", **bad})
    grun = start_generation_run(owner=owner, project=project, prompts=prompts, k=2,
                                models=[{"engine": "openai", "model": "judge-7b", "endpoint": "fleet"}])
    assert grun.models_config == [{"engine": "openai", "model": "judge-7b", "endpoint": "fleet"}]
    assert elsewhere.requests == [] and elsewhere.model_requests == []
