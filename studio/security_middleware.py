"""The studio's guard in front of Gradio (issue 13, docs/security.md), a plain ASGI middleware:

* **Host** (DNS rebinding): the Host header must name an allowed host (``host_names()``:
  the loopback names and the host of ``public_url`` unless ``allowed_hosts`` is set), in every
  mode; anything else gets 421 before Gradio sees it.
* **Origin** (cross-site request forgery): a request that is not GET/HEAD/OPTIONS and carries
  an Origin (or, without one, a Referer) must come from the studio's own origin (the Host it
  addressed) or a configured one (``public_url``, ``allowed_origins``); else 403. Browsers
  always send Origin on cross-site POSTs; clients that send neither are not browsers and so
  carry no victim's cookie. A GET with a foreign Origin (another site's page reading, which
  Gradio's CORS would allow) is refused too.
* **Sessions end when the account changes**: Gradio's token table is replaced by one that
  remembers the account's session key at sign-in; every request (reads included) whose
  account is gone, disabled, or has a new key (password, role, disable, remove) loses its
  token, so Gradio treats it as signed out.
* **Cookies**: Gradio's session cookies are rewritten to ``SameSite=Strict``.
* **Uploads**: only roles that may import (author, operator, admin) may upload, each upload
  at most ``max_upload_bytes`` with a declared length.
* **Exports**: a file served from an evidence export is served only to a user whose role may
  export and who made that export (``ExportRegistry``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote, urlsplit

from backend.access import Action, Principal, local_admin
from backend.services.users import UserService
from backend.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UPLOAD_ROLES = frozenset({Action.EDIT_CONSTITUTION, Action.RUN_EVALUATION, Action.LAUNCH_JOB})
EXPORT_PREFIX = "evidence-"  # archive names of evidence exports (EvidenceExportService)
_SAMESITE = re.compile(rb"(?i);\s*samesite=\w+")


class SessionTokens(dict[str, str]):
    """Gradio's ``app.tokens`` (token -> user name) that also keeps, per token, the account's
    session key at sign-in."""

    def __init__(self, users: UserService, existing: dict[str, str]) -> None:
        super().__init__(existing)
        self._users = users
        self.session_keys: dict[str, str | None] = {t: None for t in existing}

    def __setitem__(self, token: str, name: str) -> None:
        self.session_keys[token] = self._users.session_key(name)
        super().__setitem__(token, name)

    def __delitem__(self, token: str) -> None:
        self.session_keys.pop(token, None)
        super().__delitem__(token)

    def still_valid(self, token: str) -> bool:
        name = self.get(token)
        if name is None:
            return True
        key = self._users.session_key(name)
        return key is not None and key == self.session_keys.get(token)


class ExportRegistry:
    """Which user made which export archive (by file name): downloads are served to them only."""

    def __init__(self) -> None:
        self._owners: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def register(self, file_name: str, owner: str) -> None:
        with self._lock:
            self._owners.setdefault(file_name, set()).add(owner)

    def may_download(self, file_name: str, who: Principal) -> bool:
        with self._lock:
            owners = self._owners.get(file_name, set())
        return who.can(Action.EXPORT) and who.name in owners


EXPORTS = ExportRegistry()


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _origin_of(value: str) -> str | None:
    parts = urlsplit(value.strip())
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class StudioGuard:
    def __init__(self, app: ASGIApp, *, settings: Settings, users: UserService,
                 exports: ExportRegistry = EXPORTS) -> None:
        self.app = app
        self.hosts = settings.host_names()
        self.origins = settings.origins()
        self.max_upload = settings.max_upload_bytes
        self.local_user = settings.user
        self.users = users
        self.exports = exports

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get(b"host", b"").decode("latin-1")
        if _host_name(host) not in self.hosts:
            await _refuse(scope, send, 421, f"Host {host[:100]!r} is not served here; add it "
                          "to CSTUDIO_ALLOWED_HOSTS if this is really the studio's address.")
            return
        method = scope.get("method", "GET")
        if method not in SAFE_METHODS or scope["type"] == "websocket":
            problem = self._origin_problem(headers, host)
        elif b"origin" in headers and method != "OPTIONS":
            # a cross-origin read (fetch from another site's page); same-origin GETs and
            # navigations carry no Origin
            problem = self._origin_problem(headers, host)
        else:
            problem = None
        if problem:
            await _refuse(scope, send, 403, problem)
            return
        gradio_app = scope.get("app")
        who = self._principal(scope, headers, gradio_app)
        path = scope.get("path", "")
        if method == "POST" and path.rstrip("/").endswith("/gradio_api/upload"):
            problem = self._upload_problem(headers, who)
            if problem:
                await _refuse(scope, send, 413 if "larger" in problem else 403, problem)
                return
        if "/file=" in path:
            name = unquote(path.rsplit("/", 1)[-1])
            if name.startswith(EXPORT_PREFIX) and (who is None
                                                   or not self.exports.may_download(name, who)):
                await _refuse(scope, send, 403, "This export is served only to the user who "
                              "made it (an auditor or admin).")
                return
        await self.app(scope, receive, _strict_cookies(send))

    def _origin_problem(self, headers: dict[bytes, bytes], host: str) -> str | None:
        raw = headers.get(b"origin")
        source = "Origin"
        if raw is None:
            raw = headers.get(b"referer")
            source = "Referer"
        if raw is None:
            return None  # not a browser: no ambient cookie to abuse
        origin = _origin_of(raw.decode("latin-1"))
        if origin is not None and (origin in self.origins
                                   or urlsplit(origin).netloc == host.lower()):
            return None
        return (f"Refused: this request came from another site ({source} "
                f"{raw.decode('latin-1')[:100]!r}). Open the studio at its own address, or add "
                "that origin to CSTUDIO_ALLOWED_ORIGINS.")

    def _principal(self, scope: Scope, headers: dict[bytes, bytes],
                   gradio_app: Any) -> Principal | None:
        """The signed-in user (ending a session whose account changed), or the local admin."""
        tokens = getattr(gradio_app, "tokens", None)
        if tokens is None:
            return None
        if not isinstance(tokens, SessionTokens):
            tokens = SessionTokens(self.users, tokens)
            gradio_app.tokens = tokens
        cookie_id = getattr(gradio_app, "cookie_id", "")
        cookies = _cookies(headers.get(b"cookie", b"").decode("latin-1"))
        name: str | None = None
        for cookie in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
            token = cookies.get(cookie)
            if token is None or token not in tokens:
                continue
            if not tokens.still_valid(token):
                del tokens[token]
                continue
            name = tokens[token]
        if name is not None:
            return self.users.active_principal(name)
        if getattr(gradio_app, "auth", None) is None and not self.users.any_users():
            return local_admin(self.local_user)
        return None

    def _upload_problem(self, headers: dict[bytes, bytes], who: Principal | None) -> str | None:
        if who is None or not any(who.can(a) for a in UPLOAD_ROLES):
            role = who.role.value if who else "not signed in"
            return f"Uploads are refused for this account ({role}): its role imports nothing."
        length = headers.get(b"content-length")
        if length is None or not length.isdigit():
            return "Uploads must declare their length (Content-Length)."
        if int(length) > self.max_upload:
            return (f"The upload is larger than {self.max_upload:,} bytes "
                    "(CSTUDIO_MAX_UPLOAD_BYTES).")
        return None


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _strict_cookies(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = []
            for k, v in message.get("headers", []):
                if k.lower() == b"set-cookie" and v.startswith(b"access-token"):
                    v = _SAMESITE.sub(b"", v) + b"; SameSite=strict"
                headers.append((k, v))
            message["headers"] = headers
        await send(message)
    return wrapped


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": detail, "error": detail}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def guard_middleware(settings: Settings, users: UserService) -> Any:
    """The Starlette ``Middleware`` entry for ``launch(app_kwargs={"middleware": [...]})``."""
    from starlette.middleware import Middleware

    return Middleware(StudioGuard, settings=settings, users=users)
