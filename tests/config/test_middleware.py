"""config.middleware.StaticFilesMiddleware: WhiteNoise's files, served in async and in sync mode."""
from __future__ import annotations

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.http import HttpResponse
from django.test import RequestFactory

from config.middleware import StaticFilesMiddleware


def middleware(settings, get_response):
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = False
    return StaticFilesMiddleware(get_response)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_async_chain_serves_a_static_file_and_passes_other_paths_on(settings):
    async def view(request):
        return HttpResponse("from the view")

    mw = middleware(settings, view)
    assert iscoroutinefunction(mw)  # Django keeps the chain async: no thread hop here
    served = async_to_sync(mw)(RequestFactory().get("/static/js/ranking.js"))
    assert served.status_code == 200
    assert b"function" in body(served) or b"=>" in body(served)
    passed = async_to_sync(mw)(RequestFactory().get("/api/v1/projects/"))
    assert passed.content == b"from the view"


def test_sync_chain_still_works(settings):
    mw = middleware(settings, lambda request: HttpResponse("from the view"))
    assert not iscoroutinefunction(mw)
    assert mw(RequestFactory().get("/static/css/app.css")).status_code == 200
    assert mw(RequestFactory().get("/elsewhere/")).content == b"from the view"


def test_autorefresh_looks_files_up_per_request(settings):
    async def view(request):
        return HttpResponse("from the view", status=404)

    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    mw = StaticFilesMiddleware(view)
    assert async_to_sync(mw)(RequestFactory().get("/static/css/ranking.css")).status_code == 200
    assert async_to_sync(mw)(RequestFactory().get("/static/css/missing.css")).status_code == 404


def test_the_project_chain_has_no_sync_only_middleware():
    from django.conf import settings
    from django.utils.module_loading import import_string

    sync_only = [path for path in settings.MIDDLEWARE if not getattr(import_string(path), "async_capable", False)]
    assert sync_only == []
