"""waitress, with the security headers of every page on the answers it gives itself.

waitress answers some requests before the application sees them (a body over the limit
413, a malformed request 400, headers too large 431): those answers carry the same
Content-Security-Policy, nosniff and no-referrer headers, and are never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server
from waitress.task import ErrorTask

from .http import ERROR_POLICY, security_headers

Application = Callable[..., Iterable[bytes]]  # WSGI


class _HeadedErrorTask(ErrorTask):  # type: ignore[misc]
    def execute(self) -> None:
        self.response_headers.extend([*security_headers(ERROR_POLICY),
                                      ("Cache-Control", "no-store")])
        super().execute()


class _Channel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _HeadedErrorTask


def web_server(app: Application, **adjustments: object) -> BaseWSGIServer | MultiSocketServer:
    """`waitress.create_server`, its own error answers with our headers."""
    sockets: dict[int, object] = {}
    server = create_server(app, map=sockets, **adjustments)
    for listener in sockets.values():
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = _Channel
    return server
