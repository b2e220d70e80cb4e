"""Middleware of the project itself.

`StaticFilesMiddleware` is WhiteNoise's, made async-capable. Under ASGI every sync-only middleware
in the chain costs each request two thread hops (into a worker thread and back to the event loop
for the next middleware); WhiteNoise was the only sync-only one, so with this in its place a
request crosses into a thread once, at the view. Measured with benchmarks/load_annotators.py.
"""
from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(get_response, *args, **kwargs)
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._is_async:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: Any) -> Any:
        # Without autorefresh (production) the lookup is a dict read; with it (DEBUG) it stats files.
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)
