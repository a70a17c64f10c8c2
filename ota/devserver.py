"""A static file server for a release repository, with HTTP Range support.

Production repositories sit behind any HTTPS server (nginx, S3, ...). This one
is for the bench and the tests: `polewatch ota serve --repo DIR` serves the
repository over loopback or the lab network, and answers Range requests so
resumable downloads can be exercised exactly as against a real server.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus single-range `Range: bytes=N-[M]` answers (206/416)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # quiet by default; the server decides
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def send_head(self):
        path = self.translate_path(self.path)
        m = RANGE.match(self.headers.get("Range", "").strip())
        if not m or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
        if start >= size:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        end = min(end, size - 1)
        f = open(path, "rb")
        f.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._range_left = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:
        left = getattr(self, "_range_left", None)
        if left is None:
            return super().copyfile(source, outputfile)
        self._range_left = None
        while left > 0:
            buf = source.read(min(64 * 1024, left))
            if not buf:
                break
            outputfile.write(buf)
            left -= len(buf)


class RepositoryServer:
    """Serve `root` on host:port (port 0 picks a free one) in a background thread."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0,
                 handler: type[SimpleHTTPRequestHandler] = RangeRequestHandler, verbose: bool = False,
                 ssl_context: ssl.SSLContext | None = None):
        self.httpd = ThreadingHTTPServer((host, port), partial(handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.scheme = "https" if ssl_context else "http"
        if ssl_context:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.verbose = verbose  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{self.scheme}://{host}:{port}/"

    def start(self) -> RepositoryServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="ota-repo-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> RepositoryServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
