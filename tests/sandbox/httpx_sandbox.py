"""The in-process sandbox as an httpx transport, for clients that speak httpx (msgraph-sdk).

Each httpx request becomes a `requests.PreparedRequest` handed to the same
`SandboxAdapter` the product's Session uses: the same URL resolver per host,
request counting and fault injection, no product middleware and no request
signals. The answers it gives are kept in `seen` so a test can read headers the
SDK does not surface.
"""

from __future__ import annotations

import httpx
import requests
from django.db import connections

from sandbox.transport import SandboxAdapter


class SandboxAsyncTransport(httpx.AsyncBaseTransport):
    def __init__(self):
        self.adapter = SandboxAdapter()
        self.seen: list[tuple[httpx.Request, requests.Response]] = []
        # Inside an event loop Django hands out other connections (asgiref keeps them per
        # context); the emulator must answer on the test's own, inside its transaction.
        self._connections = {alias: connections[alias] for alias in connections}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for alias, connection in self._connections.items():
            connections[alias] = connection
        body = await request.aread()
        prepared = requests.Request(
            method=request.method, url=str(request.url), headers=dict(request.headers.items()),
            data=body or None,
        ).prepare()
        answer = self.adapter.send(prepared)
        self.seen.append((request, answer))
        headers = [(k, v) for k, v in answer.headers.items() if k.lower() != "content-length"]
        return httpx.Response(answer.status_code, headers=headers, content=answer.content, request=request)
