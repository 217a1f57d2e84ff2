"""Compressed pages: Starlette's GZipMiddleware for what Gradio leaves uncompressed.

Gradio 6 compresses (Brotli, gzip fallback) only paths ending in a text extension (.js, .css,
.json, ...), so the main page ``/`` (about 770 KB of HTML with the app's config inlined) and
``/config`` went uncompressed even to a browser that accepts gzip. This middleware gzips a
response when the client accepts gzip, unless Gradio's Brotli middleware will already send it
as br. Streams (``text/event-stream``) and responses that already carry a Content-Encoding are
left alone (Starlette's rules).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

# What gradio.brotli_middleware compresses (its whitelist of extensions).
_GRADIO_COMPRESSES = (".html", ".htm", ".js", ".css", ".json", ".md", ".txt", ".csv", ".tsv",
                      ".xml", ".svg")


class PageGZipMiddleware(GZipMiddleware):
    def __init__(self, app: ASGIApp, minimum_size: int = 1000, compresslevel: int = 6) -> None:
        super().__init__(app, minimum_size=minimum_size, compresslevel=compresslevel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = str(scope.get("path", "")).lower()
            accepts = Headers(scope=scope).get("Accept-Encoding", "")
            if "br" in accepts and path.endswith(_GRADIO_COMPRESSES):
                await self.app(scope, receive, send)  # Gradio sends it as br
                return
        await super().__call__(scope, receive, send)


def app_kwargs() -> dict[str, Any]:
    """Keyword arguments for the FastAPI app Gradio builds (``launch(app_kwargs=...)``)."""
    return {"middleware": [Middleware(PageGZipMiddleware)]}
