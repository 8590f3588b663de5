"""`acai demo`: a local page for making pegasi by hand; each slider move is one decode."""

from __future__ import annotations

import http.server
import ipaddress
import json
import logging
import math
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from acai.core.walks import PATHS
from acai.errors import AcaiError
from acai.images import TooManyPixels, decode_image, png_bytes
from acai.pegasi.pegasus import VIEW_SCALE
from acai.pegasi.studio import STRIP_STEPS, Refusal, Studio
from acai.training import data as data_lib
from acai.training.run import SAMPLES

__all__ = [
    "DemoServer",
    "MAX_UPLOAD",
    "is_loopback",
    "local_host",
    "number_t",
    "start",
]

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("demo_page.html")
MAX_UPLOAD = 10 * 2**20  # bytes; larger uploads are refused before their body is read
UPLOADS_AT_ONCE = 4  # uploads read at once; each is decoded alone (images.BYTES_PER_PIXEL)
UPLOAD_WAIT = 10.0  # seconds an upload waits for its turn before the demo answers 503
STRIP_SCALE = 2
DRAIN_SECONDS = 2.0  # how long a refused upload's body is read and dropped, so the client
# can read the refusal (a socket closed on unread data resets the connection)


# --- requests --------------------------------------------------------------------------------


def number_t(text: str) -> float:
    """The query's t as a float in [0, 1], or a 400 that says what t is."""
    try:
        t = float(text)
    except ValueError:
        t = math.nan
    if not 0.0 <= t <= 1.0:
        raise Refusal(400, f"t={text} is not a number from 0 to 1; 0 is the horse, 1 the bird")
    return t


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers the page, the sample photos and the small JSON/PNG API under /api/."""

    server_version = "acai-demo"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may take to send a request

    def do_GET(self):
        self._answer(self._get)

    def do_HEAD(self):
        self._answer(self._get, head=True)

    def do_POST(self):
        self._answer(self._post)

    def _answer(self, route, *, head: bool = False):
        url = urlsplit(self.path)
        try:
            if self.server.local_only and not local_host(self.headers.get("Host", "")):
                # another site's page reaching this server through a name of its own: answer
                # without reading what it sent, and close
                length = self.headers.get("Content-Length", "0").strip()
                self._unread = int(length) if length.isdigit() else 0
                message = "this demo answers only requests addressed to this machine"
                status, kind, body, headers = _error(
                    url.path, 403, message, {"Connection": "close"}
                )
            else:
                status, kind, body, headers = route(url.path, _query(url.query))
        except Refusal as e:
            status, kind, body, headers = _error(url.path, e.status, str(e))
        except Exception as e:  # a bug: say so, and keep serving
            log.exception("demo: %s %s failed", self.command, self.path)
            status, kind, body, headers = _error(url.path, 500, f"{type(e).__name__}: {e}")
        self.send_response(status)
        for name, value in {"Content-Type": kind, **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)
        if headers.get("Connection") == "close":
            self._drain()

    def _get(self, path: str, query: dict):
        studio: Studio = self.server.studio
        static = self.server.files.get(path)  # (type, bytes) read at start: no disk access
        if static is not None:
            return 200, *static, {}
        if path == "/api/info":
            return 200, "application/json", json.dumps(self.server.info).encode(), {}
        if path == "/api/photo.png":
            image, _, _ = studio.photo(_arg(query, "id"))
            return 200, "image/png", png_bytes(image, scale=VIEW_SCALE // 2), {}
        if path == "/api/best":
            horse, bird, walk = _arg(query, "horse"), _arg(query, "bird"), _path(query)
            t, scores = studio.best_t(horse, bird, walk)
            return 200, "application/json", json.dumps({"t": t, "scores": scores}).encode(), {}
        if path == "/api/random":
            pair = studio.random_pair(query.get("horse", ""), query.get("bird", ""))
            return 200, "application/json", json.dumps(pair).encode(), {}
        if path == "/api/strip.png":
            strip = studio.strip(_arg(query, "horse"), _arg(query, "bird"))
            return 200, "image/png", png_bytes(strip, scale=STRIP_SCALE), {}
        if path == "/api/pegasus.png":
            return self._pegasus(studio, query)
        raise Refusal(404, f"nothing at {path}; the demo is at /")

    def _pegasus(self, studio: Studio, query: dict):
        t, path = number_t(_arg(query, "t")), _path(query)
        horse, bird = _arg(query, "horse"), _arg(query, "bird")
        image, scores = studio.pegasus(horse, bird, t, path)
        headers = {f"X-Acai-{k.replace('_', '-').title()}": f"{v:.4f}" for k, v in scores.items()}
        if query.get("download"):
            name = studio.download_name(horse, bird, t, path)
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return 200, "image/png", png_bytes(image, scale=VIEW_SCALE), headers

    def _post(self, path: str, query: dict):
        if path != "/api/encode":
            raise Refusal(404, f"nothing to post to at {path}; photos go to /api/encode")
        size = self.headers.get("Content-Length")
        if size is None or not size.strip().isdigit():
            self.close_connection = True
            raise Refusal(411, "send the photo with a Content-Length header")
        size = int(size)
        if size > MAX_UPLOAD:
            self._unread = size
            return _too_large(size)
        if not self.server.uploads.acquire(timeout=UPLOAD_WAIT):  # bounds the memory uploads hold
            self._unread = size
            message = f"the demo is busy reading {UPLOADS_AT_ONCE} other uploads; try again"
            return _error(path, 503, message, {"Connection": "close", "Retry-After": "2"})
        try:
            image = self._read_photo(size)
        finally:
            self.server.uploads.release()
        name = query.get("name", "photo")[:200]
        reply = self.server.studio.add(image, name=name)
        return 200, "application/json", json.dumps(reply).encode(), {}

    def _read_photo(self, size: int) -> np.ndarray:
        body = self.rfile.read(size)
        if len(body) < size:
            self.close_connection = True
            raise Refusal(400, f"the upload ended after {len(body):,} of {size:,} bytes")
        try:
            with self.server.decoding:  # one decode at a time: images.BYTES_PER_PIXEL each
                return decode_image(body)
        except TooManyPixels as e:
            raise Refusal(400, str(e)) from None
        except ValueError as e:
            raise Refusal(400, f"{e}; upload a JPEG or PNG") from None

    def _drain(self):
        """Reads and drops a refused upload's body for a while, then closes the connection."""
        self.close_connection = True
        left, deadline = getattr(self, "_unread", 0), time.monotonic() + DRAIN_SECONDS
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            while left > 0 and time.monotonic() < deadline:
                self.connection.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.rfile.read1(min(left, 2**20))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass  # the client gave up first

    def log_message(self, format, *args):
        log.debug("demo: %s %s", self.address_string(), format % args)

    def log_request(self, code="-", size="-"):
        if isinstance(code, int) and code >= 400:
            log.info("demo: %s -> %s", self.requestline, code)


def _path(query: dict) -> str:
    path = _arg(query, "path")
    if path not in PATHS:
        raise Refusal(400, f"path={path} is neither lerp nor slerp")
    return path


def _query(text: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _arg(query: dict, name: str) -> str:
    if name not in query:
        raise Refusal(400, f"the request has no '{name}'")
    return query[name]


def _too_large(size: int):
    message = (
        f"the upload is {size / 2**20:.1f} MB; the demo takes photos up to "
        f"{MAX_UPLOAD // 2**20} MB (it shrinks them to 32x32 anyway)"
    )
    return _error("/api/", 413, message, {"Connection": "close"})


def _error(path: str, status: int, message: str, headers: dict | None = None):
    """A JSON {"error": message} for the API, a small page for a browser's address bar."""
    if path.startswith("/api/"):
        return status, "application/json", json.dumps({"error": message}).encode(), headers or {}
    text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    page = f'<!doctype html><title>acai demo</title><p>{text}</p><p><a href="/">The demo</a></p>'
    return status, "text/html; charset=utf-8", page.encode(), headers or {}


# --- the server ------------------------------------------------------------------------------


class DemoServer(http.server.ThreadingHTTPServer):
    """A thread per connection; the studio serialises the model calls."""

    daemon_threads = True
    request_queue_size = 64  # connections waiting to be accepted

    def __init__(self, address, *, studio: Studio, files: dict, info: dict):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)
        self.studio, self.files, self.info = studio, files, info
        self.uploads = threading.BoundedSemaphore(UPLOADS_AT_ONCE)
        self.decoding = threading.Lock()
        self.local_only = is_loopback(address[0])  # then Host must name this machine too

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def start(
    workdir: str | Path | None,
    *,
    classifier: str | Path,
    data: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> DemoServer:
    """Binds the address, loads the model once and encodes the sample photos; then
    `serve_forever()` answers requests.

    Args:
      workdir: a trained run or an export; None for the shipped model.
      classifier: a `classifier.keras`; P(horse), P(bird) and best t are there when it exists.
      data: a data source whose test horses and birds "random" draws from (else the samples).
      host: the address to listen on (127.0.0.1: this machine only).
      port: the port, 0-65535; 0 picks a free one.

    Returns:
      The server, bound and ready.
    """
    from acai.pegasi import pegasus

    if not PAGE.is_file():
        raise AcaiError(f"the demo page is missing from '{PAGE}'; reinstall acai")
    try:
        server = DemoServer((host, port), studio=None, files={}, info={})
    except OSError as e:
        raise AcaiError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); pass another "
            "--port (make demo PORT=...) or --host"
        ) from None
    try:
        run, loaded, judge = pegasus.setup(workdir, classifier, data=data)
        if loaded is not None:
            data_lib.class_indices(loaded, ("horse", "bird"), fix="pass data with both")
        server.studio = Studio(run, judge, data=loaded)
        server.files, samples = _files(server.studio)
    except BaseException:
        server.server_close()
        raise
    server.info = {
        "model": "the shipped model" if workdir is None else str(run.workdir),
        "step": run.step,
        "samples": samples,
        "classifier": judge.classifier is not None,
        "random_from": "the test set" if loaded is not None else "the samples",
        "max_upload": MAX_UPLOAD,
        "strip_steps": STRIP_STEPS,
    }
    return server


def _files(studio: Studio) -> tuple[dict, dict]:
    """The page and the sample photos by URL, read once; and each sample's name, URL and id."""
    files = {"/": ("text/html; charset=utf-8", PAGE.read_bytes())}
    samples = {"horse": [], "bird": []}
    for kind in samples:
        for path in sorted(SAMPLES.glob(f"{kind}_*.jpg")):
            url = f"/samples/{path.name}"
            files[url] = ("image/jpeg", path.read_bytes())
            added = studio.add(decode_image(path), name=path.stem, pin=True)
            samples[kind].append({"name": path.stem, "url": url, "id": added["id"]})
    studio.samples = samples
    return files, samples


def local_host(header: str) -> bool:
    """Whether an HTTP Host header names this machine by a loopback name or address: a page
    of another site that points a name of its own at 127.0.0.1 (DNS rebinding) sends its own
    name, and is refused."""
    host = header if header.endswith("]") else header.rpartition(":")[0] or header
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address
        return False


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(info[4][0].startswith("127.") or info[4][0] == "::1" for info in infos)
