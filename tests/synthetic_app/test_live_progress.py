"""The live run page as a browser's websocket sees it, while a real worker runs the engine in its
real child process: progress moves step by step from the one stored state (never a stale copy
from either process), ends at done = total, and the log holds no engine-library noise."""
from __future__ import annotations

import asyncio
import json
import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from config.routing import websocket_urlpatterns
from jobs.models import Run
from jobs.runner import execute
from synthetic.services import start_synthetic_run
from tests import openai_server
from tests.jobs.conftest import _migrated_sqlite_template, shared_db  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)
serve = openai_server.serve  # the fixture
FINAL = re.compile(r'data-status="(succeeded|failed|cancelled)"')


@pytest.fixture
def child_mode(settings, shared_db, monkeypatch):  # noqa: F811
    settings.SYNTHETIC_ENGINE_SUBPROCESS = True
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "jobs.channel_layer.DatabaseChannelLayer"}}
    monkeypatch.setenv("DATABASE_URL", shared_db)  # the child opens the test's database
    monkeypatch.delenv("REDIS_URL", raising=False)  # and publishes through the same layer
    return shared_db


def _project_and_panel(items: int, personas: int):
    from django.contrib.auth import get_user_model

    from annotation.services import create_item, create_project
    from synthetic.services import import_panel

    owner = get_user_model().objects.create_user("res", password="x")
    project = create_project(owner=owner, name="Live", status="active")
    for n in range(items):
        create_item(project=project, external_id=f"i{n}", prompt=f"Q{n}?",
                    responses=[{"id": f"r{k}", "text": f"A{k} to {n}"} for k in range(1, 4)])
    text = "".join(f'{{"persona": "Persona number {n}."}}\n' for n in range(personas))
    return owner, project, import_panel(owner=owner, name="P", text=text)


def frames_of_a_run(run: Run, owner) -> list[str]:
    async def scenario() -> list[str]:
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/runs/{run.public_id}/")
        comm.scope["user"] = owner
        connected, _ = await comm.connect(timeout=30)
        assert connected
        frames = [await comm.receive_from(timeout=30)]
        worker = asyncio.ensure_future(sync_to_async(execute, thread_sensitive=False)(run.pk))
        while not FINAL.search(frames[-1]):
            frames.append(await comm.receive_from(timeout=180))
        await worker
        await comm.disconnect()
        return frames

    return async_to_sync(scenario)()


def progress(frame: str) -> tuple[int, str]:
    done = re.search(r'data-done="(\d+)"', frame)
    status = re.search(r'data-status="(\w+)"', frame)
    assert done and status, frame[:300]
    return int(done.group(1)), status.group(1)


def test_the_live_page_shows_every_step_from_the_stored_state(child_mode):
    owner, project, panel = _project_and_panel(items=3, personas=4)  # 12 judgments: chunks of 2
    srun = start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="fake", model="fake-model")
    frames = frames_of_a_run(srun.run, owner)
    steps = [progress(f) for f in frames]
    dones = [d for d, _ in steps]
    assert dones == sorted(dones), f"progress went backwards (a stale copy was published): {steps}"
    assert {2, 4, 6, 8, 10} <= set(dones), f"not every chunk reached the page: {steps}"
    assert steps[-1] == (12, "succeeded")
    assert "12 / 12 (100%)" in frames[-1]
    assert "12 of 12 judgments stored" in frames[-1] and 'data-failures="0"' in frames[-1]
    running = [f for f, (d, s) in zip(frames, steps, strict=True) if s == "running" and 0 < d < 12]
    assert any("/s" in f and "ETA" in f for f in running), "rate and ETA while running"
    run = Run.objects.get(pk=srun.run.pk)
    assert (run.progress_done, run.progress_total) == (12, 12)


@pytest.mark.slow
def test_a_real_model_run_logs_no_library_noise_and_a_broken_one_names_its_cause(child_mode, tmp_path, settings,
                                                                                 monkeypatch):
    from tests.tiny_models import build_tiny_model

    settings.MODELS_DIR = tmp_path  # model paths must lie under the models directory (jobs.paths)
    monkeypatch.setenv("RLCHF_MODELS_DIR", str(tmp_path))  # for the engine's child process too
    model = build_tiny_model(tmp_path / "tiny")
    owner, project, panel = _project_and_panel(items=2, personas=2)
    srun = start_synthetic_run(owner=owner, project=project, panel=panel, engine="transformers", model=str(model),
                               method="pointwise")
    run = execute(srun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    library_noise = re.compile(r"Warning\b|warnings\.warn|it/s|Loading weights|csrf_token|generation flags", re.I)
    noise = [line for line in run.log.splitlines() if library_noise.search(line) and not line.startswith("WARNING: ")]
    assert noise == [], noise

    (model / "tokenizer.json").write_text("{not json")
    broken = start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="transformers", model=str(model))
    run = execute(broken.run.pk)
    assert run.status == Run.Status.FAILED
    assert run.error_cause.startswith(f"transformers:tiny: tokenizer could not be loaded from {model}: "), run.error
    assert "Traceback" in run.error_details


def test_an_openai_run_in_its_child_process_logs_one_line_per_failure_and_never_the_key(child_mode, serve, settings,
                                                                                        monkeypatch):
    def refuses(body, number):  # noqa: ANN001, ANN202
        return 401, {"error": {"message": "Incorrect API key provided: sk-fleet."}}, 0

    _, url = serve(refuses)
    fleet = {"fleet": {"base_urls": [url], "api_key_env": "RLCHF_TEST_FLEET_KEY"}}
    settings.INFERENCE_ENDPOINTS = fleet
    monkeypatch.setenv("INFERENCE_ENDPOINTS", json.dumps(fleet))  # for the engine's child process
    monkeypatch.setenv("RLCHF_TEST_FLEET_KEY", "sk-fleet")
    owner, project, panel = _project_and_panel(items=2, personas=2)
    srun = start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="openai", model="judge-7b",
                               permutations=1, backend_options={"endpoint": "fleet"})
    run = execute(srun.run.pk)
    assert run.status == Run.Status.FAILED
    cause = f"endpoint 'fleet' ({url}): HTTP 401: the API key was refused (server: Incorrect API key provided: ***.)"
    # The child's own cause line, then what the worker saw of the child ("... exited with code 1").
    assert run.error_cause.startswith(f"every judgment failed (4 of 4); first error (4 time(s)): {cause} ("), run.error
    assert "sk-fleet" not in run.log and "sk-fleet" not in run.error
    assert "HTTP Request:" not in run.log  # httpx's line per request stays out
    refused = [line for line in run.log.splitlines() if "401" in line]
    assert refused and all(cause in line for line in refused), refused
