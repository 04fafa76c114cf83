"""A tiny OAuth token endpoint and protected resource on 127.0.0.1, counting refreshes.

It behaves like providers that rotate refresh tokens and revoke the whole token
family when an old refresh token is redeemed again: the second redemption gets
``400 invalid_grant`` and every token issued so far stops working.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs


class TokenServer:
    """``POST /token`` (grant_type=refresh_token) and ``GET /resource`` (Bearer)."""

    def __init__(self, *, refresh_token: str, refresh_delay: float = 0.3) -> None:
        self.refresh_requests = 0
        self.family_revoked = False
        self.refresh_delay = refresh_delay
        self._refresh_token = refresh_token
        self._valid_access: set[str] = set()
        self._generation = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _refresh(self, presented: str | None) -> tuple[int, dict[str, object]]:
        time.sleep(self.refresh_delay)  # a slow provider widens the race window
        with self._lock:
            self.refresh_requests += 1
            if presented != self._refresh_token or self.family_revoked:
                self.family_revoked = True  # reuse detected: revoke everything
                self._valid_access.clear()
                return 400, {"error": "invalid_grant"}
            self._generation += 1
            access = f"access-{self._generation}"
            self._refresh_token = f"refresh-{self._generation}"
            self._valid_access.add(access)
            return 200, {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": self._refresh_token,
            }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(
                self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                if self.path != "/token" or form.get("grant_type") != ["refresh_token"]:
                    self._send(400, {"error": "unsupported_grant_type"})
                    return
                status, body = server._refresh(form.get("refresh_token", [None])[0])
                self._send(status, body)

            def do_GET(self) -> None:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                with server._lock:
                    ok = token in server._valid_access
                if self.path == "/resource" and ok:
                    self._send(200, {"token": token})
                else:
                    self._send(
                        401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                    )

        return Handler
