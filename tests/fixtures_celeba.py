"""Test helpers: a synthetic CelebA-shaped dataset and a local HTTP server that misbehaves on demand.

The server runs on 127.0.0.1 (random free port, a thread) and serves

* plain files at ``/files/<name>`` with HTTP ``Range`` support, and, per path,
  scripted faults: ``fail[path] = k`` answers HTTP 500 k times (-1: always),
  ``drop_once[path] = n`` announces the whole length but closes the connection
  after ``n`` bytes (once), ``ignore_range`` answers 200 with the whole body;
* a Google-Drive look-alike at ``/uc?export=download&id=<id>``: per id a mode
  ``direct`` (the file, as an attachment), ``cookie`` (HTML warning page +
  ``download_warning_*`` cookie), ``href`` (warning page with a ``confirm=``
  link), ``form`` (the current Drive page: a ``<form>`` posting ``id``,
  ``export``, ``confirm``, ``uuid`` to ``/download`` on another path), ``virus``
  (only the "Virus scan warning" title; Drive accepts ``confirm=t``), or
  ``quota`` (the "Quota exceeded" page).

Every request is logged as ``(path_with_query, range_header)``.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np

MEAN_LANDMARKS = np.array([[69, 111], [108, 111], [88, 135], [72, 152], [105, 152]], float)
TOKEN = "Xk3_tokEN"
UUID = "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def synthetic_face(rng: np.random.Generator, landmarks: np.ndarray) -> np.ndarray:
    """A smooth 178x218 RGB picture with a face-like blob and dark eyes/mouth at ``landmarks``."""
    yy, xx = np.mgrid[0:218, 0:178].astype(float)
    base = rng.uniform(40, 200, size=3)
    img = np.empty((218, 178, 3))
    for c in range(3):
        img[..., c] = base[c] + 30 * np.sin(xx / rng.uniform(15, 40) + c) + 0.2 * (yy - 109)
    cx, cy = landmarks[2]
    face = ((xx - cx) / 45) ** 2 + ((yy - cy + 10) / 60) ** 2 < 1
    img[face] = img[face] * 0.5 + np.array([220, 180, 150]) * 0.5
    for (x, y) in landmarks[[0, 1, 3, 4]]:
        img[((xx - x) ** 2 + (yy - y) ** 2) < 16] = 30
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def build_synthetic_celeba(root, n_train=3, n_val=2, n_test=6, seed=0, fmt="JPEG") -> dict:
    """Write a CelebA-shaped release under ``root/src``: the zip, partition and landmark files.

    Returns paths, ``md5`` per file name, the test/val file names in order, the
    decoded images by file name, and the landmarks.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    src = Path(root) / "src"
    img_dir = src / "img_align_celeba"
    img_dir.mkdir(parents=True)
    parts = [0] * n_train + [1] * n_val + [2] * n_test
    names = [f"{i + 1:06d}.jpg" for i in range(len(parts))]
    images, lms = {}, {}
    for name in names:
        lm = MEAN_LANDMARKS + rng.integers(-2, 3, size=(5, 2))
        arr = synthetic_face(rng, lm)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt, quality=95)
        (img_dir / name).write_bytes(buf.getvalue())
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            images[name] = np.asarray(im.convert("RGB"))
        lms[name] = lm
    zpath = src / "img_align_celeba.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as z:
        z.writestr("img_align_celeba/", b"")
        for name in names:
            z.write(img_dir / name, f"img_align_celeba/{name}")
    (src / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, parts)))
    header = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    rows = "".join(f"{n} " + " ".join(f"{int(v):4d}" for v in lms[n].ravel()) + "\n" for n in names)
    (src / "list_landmarks_align_celeba.txt").write_text(f"{len(names)}\n{header}\n{rows}")
    files = {p.name: p for p in [zpath, src / "list_eval_partition.txt",
                                  src / "list_landmarks_align_celeba.txt"]}
    return {"src": src, "img_dir": img_dir, "files": files,
            "md5": {k: md5(p.read_bytes()) for k, p in files.items()},
            "test": [n for n, p in zip(names, parts) if p == 2],
            "val": [n for n, p in zip(names, parts) if p == 1],
            "images": images, "landmarks": lms}


class FakeServer:
    """Threaded HTTP server on 127.0.0.1 with scripted faults (see the module docstring)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.gdrive: dict[str, tuple[bytes, str]] = {}
        self.fail: dict[str, int] = {}
        self.drop_once: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        self.log: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                server._handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- request handling --------------------------------------------------------------
    def requests_for(self, fragment: str) -> list[tuple[str, str | None]]:
        return [r for r in self.log if fragment in r[0]]

    def _handle(self, h):
        with self._lock:
            self.log.append((h.path, h.headers.get("Range")))
        url = urllib.parse.urlsplit(h.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        key = url.path
        with self._lock:
            left = self.fail.get(key, 0)
            if left:
                self.fail[key] = left - 1 if left > 0 else left
        if left:
            return self._send(h, 500, b"<html>boom</html>", "text/html")
        if url.path.startswith("/files/"):
            data = self.files.get(url.path[len("/files/"):])
            if data is None:
                return self._send(h, 404, b"not found", "text/plain")
            return self._send_file(h, key, data)
        if url.path == "/uc":
            return self._gdrive_uc(h, q)
        if url.path == "/download":
            data, mode = self.gdrive.get(q.get("id"), (None, None))
            if data is None or q.get("confirm") != "t" or q.get("uuid") != UUID:
                return self._send(h, 400, b"bad confirmation", "text/plain")
            return self._send_file(h, key, data, attachment=True)
        return self._send(h, 404, b"not found", "text/plain")

    def _gdrive_uc(self, h, q):
        fid = q.get("id")
        if fid not in self.gdrive:
            return self._send(h, 404, b"<html><title>Google Drive - 404</title></html>", "text/html")
        data, mode = self.gdrive[fid]
        if mode == "quota":
            return self._send(h, 200, b"<html><head><title>Google Drive - Quota exceeded</title></head>"
                                      b"<body>Too many users have viewed or downloaded this file recently."
                                      b"</body></html>", "text/html; charset=utf-8")
        confirm = q.get("confirm")
        if mode == "direct" or (mode in ("cookie", "href") and confirm == TOKEN) or (
                mode == "virus" and confirm == "t"):
            if mode == "cookie" and TOKEN not in (h.headers.get("Cookie") or ""):
                return self._send(h, 403, b"cookie missing", "text/plain")
            return self._send_file(h, "/uc", data, attachment=True)
        title = b"<title>Google Drive - Virus scan warning</title>"
        if mode == "cookie":
            page = b"<html><head>" + title + b"</head><body>Google Drive can't scan this file.</body></html>"
            return self._send(h, 200, page, "text/html; charset=utf-8",
                              {"Set-Cookie": f"download_warning_13058876669334088843_{fid}={TOKEN}; Path=/"})
        if mode == "href":
            page = (b"<html><head>" + title + b"</head><body><a id=\"uc-download-link\" "
                    b"href=\"/uc?export=download&amp;confirm=" + TOKEN.encode() + b"&amp;id="
                    + fid.encode() + b"\">Download anyway</a></body></html>")
            return self._send(h, 200, page, "text/html; charset=utf-8")
        if mode == "form":
            page = (b"<!DOCTYPE html><html><head>" + title + b"</head><body>"
                    b"<form id=\"download-form\" action=\"" + self.base.encode() + b"/download\" method=\"get\">"
                    b"<input type=\"submit\" id=\"uc-download-link\" value=\"Download anyway\"/>"
                    b"<input type=\"hidden\" name=\"id\" value=\"" + fid.encode() + b"\">"
                    b"<input type=\"hidden\" name=\"export\" value=\"download\">"
                    b"<input type=\"hidden\" name=\"confirm\" value=\"t\">"
                    b"<input type=\"hidden\" name=\"uuid\" value=\"" + UUID.encode() + b"\"></form>"
                    b"</body></html>")
            return self._send(h, 200, page, "text/html; charset=utf-8")
        if mode == "virus":
            return self._send(h, 200, b"<html><head>" + title + b"</head><body>scan?</body></html>",
                              "text/html; charset=utf-8")
        return self._send(h, 200, b"<html><head><title>Google Drive</title></head><body>?</body></html>",
                          "text/html")

    def _send(self, h, status, body, ctype, headers=None):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def _send_file(self, h, key, data, attachment=False):
        total = len(data)
        start = 0
        rng = h.headers.get("Range")
        status = 200
        if rng and key not in self.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= total:
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{total}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        body = data[start:]
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        if attachment:
            h.send_header("Content-Disposition", 'attachment; filename="file.bin"')
        h.end_headers()
        with self._lock:  # the first response on this path long enough to be cut
            cut = self.drop_once.get(key)
            if cut is not None and cut < len(body):
                del self.drop_once[key]
            else:
                cut = None
        if cut is not None:
            h.wfile.write(body[:cut])
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        h.wfile.write(body)
