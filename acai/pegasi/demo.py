"""`acai demo`: a local page for making pegasi by hand; each slider move is one decode."""

from __future__ import annotations

import collections
import hashlib
import http.server
import ipaddress
import json
import logging
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from acai.core.model import strips
from acai.core.walks import PATHS
from acai.errors import AcaiError
from acai.images import grid, png_bytes, to_float, to_uint8
from acai.pegasi.judge import horse_or_bird
from acai.pegasi.pegasus import VIEW_SCALE
from acai.pegasi.settings import check_t_steps
from acai.training import data as data_lib
from acai.training import run as run_lib
from acai.training.run import SAMPLES, Run

__all__ = [
    "DemoServer",
    "MAX_UPLOAD",
    "Studio",
    "is_loopback",
    "local_host",
    "number_t",
    "start",
]

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("demo_page.html")
MAX_UPLOAD = 10 * 2**20  # bytes; larger uploads are refused before their body is read
STRIP_STEPS = 11  # decoded points on each row of the strip, both ends included
STRIP_SCALE = 2
CACHE = 256  # uploaded photos whose latents are kept (the samples are always kept)
DRAIN_SECONDS = 2.0  # how long a refused upload's body is read and dropped, so the client
# can read the refusal (a socket closed on unread data resets the connection)


class Refusal(AcaiError):
    """A request the demo cannot answer; `status` is its HTTP status code (4xx)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Studio:
    """The loaded model and the latents of every photo it has seen; one model call at a time."""

    def __init__(self, run: Run, classifier=None, *, cache: int = CACHE):
        self.run = run
        self.classifier = classifier  # an acai.training.classifier.Classifier, or None
        self._photos: collections.OrderedDict[str, tuple] = collections.OrderedDict()
        self._pinned: set[str] = set()
        self._cache = cache
        self._lock = threading.Lock()  # Keras models and the cache are shared by all threads

    def add(self, image: np.ndarray, *, pin: bool = False) -> str:
        """Encodes a uint8 (32, 32, 3) photo once and keeps its latent; returns its id."""
        image = np.ascontiguousarray(image, np.uint8)
        key = hashlib.sha256(image.tobytes()).hexdigest()[:16]
        with self._lock:
            if key not in self._photos:
                latent = np.asarray(self.run.model.encode(to_float(image[None])))  # (1, h, w, c)
                self._photos[key] = (image, latent)
            self._photos.move_to_end(key)
            if pin:
                self._pinned.add(key)
            unpinned = [k for k in self._photos if k not in self._pinned]
            for old in unpinned[: max(0, len(unpinned) - self._cache)]:
                del self._photos[old]
        return key

    def photo(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(image, latent) of a photo `add` returned `key` for."""
        with self._lock:
            if key not in self._photos:
                raise Refusal(404, f"no photo '{key}' here (the demo restarted?); pick it again")
            return self._photos[key]

    def pegasus(self, horse: str, bird: str, t: float, path: str) -> tuple[np.ndarray, dict]:
        """The decoded pegasus (32, 32, 3) uint8 at t on the path, and P(horse), P(bird) when
        there is a classifier."""
        (_, za), (_, zb) = self.photo(horse), self.photo(bird)
        with self._lock:
            decoded = np.asarray(to_uint8(self.run.model.decode_path(za, zb, t, path=path)))
            scores = {}
            if self.classifier is not None:  # (1, H, W, C) uint8
                p_horse, p_bird, _ = horse_or_bird(
                    self.classifier, self.classifier.probabilities(decoded)
                )
                scores = {"p_horse": float(p_horse[0]), "p_bird": float(p_bird[0])}
        return decoded[0], scores

    def strip(self, horse: str, bird: str) -> np.ndarray:
        """Two rows, lerp then slerp: the horse, STRIP_STEPS decoded points, the bird."""
        (x_h, _), (x_b, _) = self.photo(horse), self.photo(bird)
        ts = np.linspace(0, 1, STRIP_STEPS, dtype=np.float32)
        with self._lock:
            rows = strips(self.run.model, to_float(x_h[None]), to_float(x_b[None]), ts)
        return grid([np.asarray(to_uint8(rows[path][0])) for path in PATHS])


# --- requests --------------------------------------------------------------------------------


def number_t(text: str) -> float:
    """The query's t as a float in [0, 1], or a 400 that says what t is."""
    try:
        t = float(text)
    except ValueError:
        raise Refusal(400, f"t='{text}' is not a number; 0 is the horse, 1 the bird") from None
    try:
        check_t_steps(t, 2)
    except AcaiError as e:
        raise Refusal(400, str(e)) from None
    return t


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers the page, the sample photos and the small JSON/PNG API under /api/."""

    server_version = "acai-demo"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may take to send a request

    def do_GET(self):
        self._answer(self._get)

    def do_POST(self):
        self._answer(self._post)

    def _answer(self, route):
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
            image, _ = studio.photo(_arg(query, "id"))
            return 200, "image/png", png_bytes(image, scale=VIEW_SCALE // 2), {}
        if path == "/api/strip.png":
            strip = studio.strip(_arg(query, "horse"), _arg(query, "bird"))
            return 200, "image/png", png_bytes(strip, scale=STRIP_SCALE), {}
        if path == "/api/pegasus.png":
            return self._pegasus(studio, query)
        raise Refusal(404, f"nothing at {path}; the demo is at /")

    def _pegasus(self, studio: Studio, query: dict):
        t, path = number_t(_arg(query, "t")), _arg(query, "path")
        if path not in PATHS:
            raise Refusal(400, f"path='{path}' is neither 'lerp' nor 'slerp'")
        image, scores = studio.pegasus(_arg(query, "horse"), _arg(query, "bird"), t, path)
        headers = {f"X-Acai-{k.replace('_', '-')}": f"{v:.4f}" for k, v in scores.items()}
        if query.get("download"):
            name = f"pegasus_{path}_t{t:.2f}.png"
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
        body = self.rfile.read(size)
        if len(body) < size:
            self.close_connection = True
            raise Refusal(400, f"the upload ended after {len(body):,} of {size:,} bytes")
        try:
            image = data_lib.decode_image(body)
        except ValueError as e:
            raise Refusal(400, f"{e}; upload a JPEG or PNG") from None
        key = self.server.studio.add(image)
        reply = {"id": key, "photo": f"/api/photo.png?id={key}"}
        return 200, "application/json", json.dumps(reply).encode(), {}

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
        self.local_only = is_loopback(address[0])  # then Host must name this machine too

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def start(
    workdir: str | Path | None, *, classifier: str | Path, host: str = "127.0.0.1", port: int = 8000
) -> DemoServer:
    """Binds the address, loads the model once and encodes the sample photos; then
    `serve_forever()` answers requests.

    Args:
      workdir: a trained run or an export; None for the shipped model.
      classifier: a `classifier.keras`; P(horse) and P(bird) are shown when it exists.
      host: the address to listen on (127.0.0.1: this machine only).
      port: the port, 0-65535; 0 picks a free one.

    Returns:
      The server, bound and ready.
    """
    from acai.training import classifier as classifier_lib

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
        run = run_lib.open(workdir)
        judge = classifier_lib.Classifier(classifier) if Path(classifier).is_file() else None
        server.studio = Studio(run, judge)
        server.files, samples = _files(server.studio)
    except BaseException:
        server.server_close()
        raise
    server.info = {
        "model": "the shipped model" if workdir is None else str(run.workdir),
        "step": run.step,
        "samples": samples,
        "classifier": judge is not None,
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
            key = studio.add(data_lib.decode_image(path), pin=True)
            samples[kind].append({"name": path.stem, "url": url, "id": key})
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
