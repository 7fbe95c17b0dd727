"""A local job server: run many short workflow jobs without paying Python's
start-up (``import torch``, SciPy, scikit-image: 2-5 s) once per job.

A workflow job is a process that imports the library and then works for a
fraction of a second (an evaluation of 8 images takes 0.1-0.3 s inside a 5 s
job).  On one machine, :func:`start` launches one server process that imports
the heavy modules once and then *forks* a child per job: the child inherits
the imported modules (copy-on-write), runs the job's function and exits.  The
job's own process (the Snakemake script) stays a thin client that imports
nothing heavy, sends ``(function, keyword arguments, log file, threads)`` over
a Unix socket and waits for the answer.  Every job is still one Snakemake job
with its own inputs, outputs, log and benchmark; only where its work runs
changes.

Guarantees:

* **Same result as in-process.**  The child runs exactly :func:`run_local`
  (the same function, the same logging, the same thread count); the server is
  started with the BLAS thread variables a 1-thread job gets, and only jobs
  with ``threads == 1`` are sent to it.  The server never runs a torch or BLAS
  operation itself, so forking it is safe (no thread pool exists yet).
* **Fallback.**  No server configured (``GANRESTORE_JOBSERVER`` unset), not
  reachable, or dead mid-job: the job runs in its own process, as without a
  server.  Cluster jobs and ``--sdm conda`` never use one (the workflow starts
  the server only for local runs without per-rule environments).
* **Nothing orphaned.**  A client that dies (Snakemake killed the job) closes
  its connection; the child notices and kills itself.  The server exits when
  its parent (Snakemake) exits or when asked to; it stays in Snakemake's
  process group, so a kill of the group takes it and its children along.
  Artifacts are written atomically either way.
* **No code from the wire, and only the workflow's jobs.**  Requests are JSON
  naming a job entry point and its keyword arguments.  The server runs only
  the functions of :data:`JOB_TARGETS` (the corrupt / restore / evaluate /
  cGAN jobs the workflow's scripts send; a test may add
  :func:`describe`), so a request for any other function of the package
  (``ganrestore.io:write_text_atomic``, ``ganrestore.plugins:load_modules``,
  ``ganrestore.jobserver:serve``, ...) is refused.  The ``log`` field must
  resolve (symlinks followed) inside one of the server's log folders (the
  run's ``results/<name>/logs``), so it cannot truncate another file.  A
  connection that sends no complete request within :data:`REQUEST_TIMEOUT`
  seconds is dropped, a request is at most :data:`MAX_REQUEST_BYTES`, and at
  most :data:`MAX_CHILDREN` children run at once (further connections wait in
  the socket's backlog).  Only the same user can reach the socket (its folder
  is 0700): this is defence in depth.

Limitation: Snakemake's benchmark files measure the client, so their wall
time is right but memory and CPU columns do not include the forked child.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ENV = "GANRESTORE_JOBSERVER"
#: seconds a child whose client died gets to clean up before SIGKILL
KILL_GRACE = 5.0
#: modules the server imports once, before forking any job
PRELOAD = ("numpy", "torch", "scipy.stats", "scipy.ndimage", "skimage.metrics", "pandas",
           "ganrestore.io", "ganrestore.pipeline", "ganrestore.metrics", "ganrestore.lpips",
           "ganrestore.methods", "ganrestore.methods.gan", "ganrestore.methods.classical",
           "ganrestore.priors.checkpoint", "ganrestore.tables", "ganrestore.claims")
#: The only functions the server runs: the workflow's job entry points (scripts/*.py).
JOB_TARGETS = frozenset({
    "ganrestore.pipeline:run_corrupt", "ganrestore.pipeline:run_restore", "ganrestore.pipeline:evaluate_job",
    "ganrestore.cgan.cross:cross_restore", "ganrestore.cgan.cross:cross_table",
    "ganrestore.cgan.train:training_curves_job",
})
#: The diagnostic job (tests; ``start(allow=(DESCRIBE,))``): writes a file where it is told.
DESCRIBE = "ganrestore.jobserver:describe"
#: Seconds a connection may take to send its whole request before it is dropped.
REQUEST_TIMEOUT = 10.0
#: Largest request accepted (bytes of JSON).
MAX_REQUEST_BYTES = 16 * 1024 ** 2
#: Most children (running jobs) at once; more connections wait in the backlog.
MAX_CHILDREN = max(8, 2 * (os.cpu_count() or 1))
#: Log folder(s) of a server started without any (relative to its working directory).
DEFAULT_LOG_DIRS = ("results",)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# -- framing ------------------------------------------------------------------

def _send(conn: socket.socket, obj) -> None:
    data = json.dumps(obj).encode()
    conn.sendall(struct.pack("!I", len(data)) + data)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def _recv(conn: socket.socket, max_bytes: int | None = None):
    (n,) = struct.unpack("!I", _recv_exact(conn, 4))
    if max_bytes is not None and n > max_bytes:
        raise ValueError(f"request of {n} bytes, over the limit of {max_bytes}")
    return json.loads(_recv_exact(conn, n).decode())


# -- the job itself -------------------------------------------------------------

def _resolve(target: str):
    mod, _, fn = target.partition(":")
    if not (mod == "ganrestore" or mod.startswith("ganrestore.")) or not fn.isidentifier():
        raise ValueError(f"job server: refusing target {target!r} (only ganrestore functions)")
    return getattr(importlib.import_module(mod), fn)


def run_local(target: str, kwargs: dict, log_path=None, threads: int | None = 1):
    """Run ``target`` ('module:function') with ``kwargs`` in this process, its
    logging and warnings in ``log_path`` (:func:`ganrestore.logs.script_logging`)."""
    from .logs import script_logging

    with script_logging(log_path, threads):
        return _resolve(target)(**kwargs)


def run(target: str, kwargs: dict, log_path=None, threads: int | None = 1) -> None:
    """Run a job: in the job server when one is configured, reachable and the job
    has one thread, else in this process (same function, same result)."""
    path = os.environ.get(ENV)
    if path and threads in (None, 1):
        try:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(5)
            conn.connect(path)
            conn.settimeout(None)
        except OSError:
            conn = None
        if conn is not None:
            with conn:
                try:
                    _send(conn, {"target": target, "kwargs": kwargs, "log": str(log_path) if log_path else None,
                                 "threads": 1})
                    reply = _recv(conn)
                except (OSError, ConnectionError, ValueError):
                    reply = None          # the server or its child died: run here instead
            if reply is not None:
                if not reply.get("ok"):
                    raise RuntimeError(f"job failed in the job server (see {log_path}): {reply.get('error')}")
                return
            print(f"ganrestore: job server at {path} did not answer; running {target} in-process",
                  file=sys.stderr)
    run_local(target, kwargs, log_path, threads)


def describe(path, sleep: float = 0.0, partial: str | None = None) -> None:
    """Diagnostic job: write where it ran (pid, parent pid, torch threads) to
    ``path`` as JSON, then sleep ``sleep`` seconds (tests, and a quick check that
    a server answers: ``run('ganrestore.jobserver:describe', {'path': ...})``).
    With ``partial``, sleep while writing that file through ``atomic_path``
    (tests: a killed job must leave no temporary file)."""
    torch = sys.modules.get("torch")
    info = {"pid": os.getpid(), "ppid": os.getppid(),
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "torch_preloaded": torch is not None}
    if partial is None:
        Path(path).write_text(json.dumps(info))
        time.sleep(float(sleep))
        return
    from .io import atomic_path

    with atomic_path(partial) as tmp:
        Path(tmp).write_text("half")
        Path(path).write_text(json.dumps(info))
        time.sleep(float(sleep))


# -- server ---------------------------------------------------------------------

def _child_terminated(signum, frame):
    raise SystemExit(128 + signum)


def _log_allowed(log, log_dirs) -> bool:
    """``log`` resolves (symlinks followed) to a file strictly inside one of ``log_dirs``."""
    if not isinstance(log, str) or not log or "\x00" in log:
        return False
    real = os.path.realpath(log)
    for d in log_dirs:
        root = os.path.realpath(d)
        if real != root and os.path.commonpath([real, root]) == root:
            return True
    return False


def check_request(req, allow=JOB_TARGETS, log_dirs=DEFAULT_LOG_DIRS) -> str | None:
    """Why the server refuses ``req`` (a message), or None when it runs it."""
    if not isinstance(req, dict):
        return "a request is a JSON object"
    target = req.get("target")
    if target not in allow:
        return (f"refusing target {target!r}: the job server runs only the workflow's job entry points "
                f"({', '.join(sorted(allow))})")
    if not isinstance(req.get("kwargs") or {}, dict):
        return "kwargs must be a JSON object"
    log = req.get("log")
    if log is not None and not _log_allowed(log, log_dirs):
        return (f"refusing log path {log!r}: a job's log must lie inside the run's log folder "
                f"({', '.join(str(d) for d in log_dirs)})")
    if req.get("threads", 1) not in (1, None):
        return "the job server runs 1-thread jobs only"
    return None


def _child(conn: socket.socket, allow=JOB_TARGETS, log_dirs=DEFAULT_LOG_DIRS,
           request_timeout: float = REQUEST_TIMEOUT) -> int:
    """In the forked child: read one request (within ``request_timeout`` seconds),
    check it (:func:`check_request`), run it, answer; exit status."""
    try:
        conn.settimeout(request_timeout)
        req = _recv(conn, MAX_REQUEST_BYTES)
        conn.settimeout(None)
    except (OSError, ConnectionError, ValueError):
        return 2
    why = check_request(req, allow, log_dirs)
    if why is not None:
        try:
            _send(conn, {"ok": False, "error": f"job server: {why}"})
        except OSError:
            pass
        return 5

    def watchdog():
        # the client closes the connection only after our answer, or when it was
        # killed: then stop the work at once.  First SIGTERM, an exception in the
        # main thread, so that cleanup runs (atomic_path removes its hidden
        # temporary file); SIGKILL if the work has not stopped KILL_GRACE s later
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        if answering.is_set():
            return                                  # the work is done; the child exits itself
        os.kill(os.getpid(), signal.SIGTERM)       # -> SystemExit in the main thread
        time.sleep(KILL_GRACE)
        os.kill(os.getpid(), signal.SIGKILL)

    answering = threading.Event()
    signal.signal(signal.SIGTERM, _child_terminated)

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        run_local(req["target"], req.get("kwargs") or {}, req.get("log"), req.get("threads", 1))
        reply = {"ok": True}
    except BaseException as e:  # noqa: BLE001  (every failure goes back to the client)
        reply = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    answering.set()
    try:
        _send(conn, reply)
    except OSError:
        return 3
    return 0 if reply["ok"] else 1


def serve(path: str, parent_pid: int | None = None, preload=PRELOAD, idle_exit: float | None = None,
          allow=JOB_TARGETS, log_dirs=DEFAULT_LOG_DIRS, max_children: int = MAX_CHILDREN,
          request_timeout: float = REQUEST_TIMEOUT) -> None:
    """Listen on the Unix socket ``path`` and fork one child per request, until
    the parent process is gone, ``idle_exit`` seconds pass without a request, or
    the process is terminated.  Binds first, then imports ``preload`` (requests
    wait in the backlog meanwhile).  Runs only the targets in ``allow``, with
    logs inside ``log_dirs``; at most ``max_children`` at once (see the module
    docstring)."""
    allow, log_dirs = frozenset(allow), tuple(str(d) for d in log_dirs)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    srv.bind(path)
    srv.listen(64)
    for mod in preload:
        try:
            importlib.import_module(mod)
        except ImportError:
            pass
    children: set[int] = set()
    last = time.monotonic()
    def _terminate(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    try:
        while True:
            if parent_pid is not None and os.getppid() != parent_pid:
                break
            for pid in list(children):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    children.discard(pid)
            if idle_exit is not None and not children and time.monotonic() - last > idle_exit:
                break
            if len(children) >= max_children:      # full: let connections wait in the backlog
                time.sleep(0.05)
                continue
            ready, _, _ = select.select([srv], [], [], 0.5)
            if not ready:
                continue
            conn, _ = srv.accept()
            last = time.monotonic()
            pid = os.fork()
            if pid == 0:                      # child
                srv.close()
                code = 4
                try:
                    code = _child(conn, allow, log_dirs, request_timeout)
                finally:
                    os._exit(code)
            conn.close()
            children.add(pid)
    finally:
        srv.close()
        try:
            os.unlink(path)
        except OSError:
            pass
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def start(env: dict | None = None, log_dirs=None, allow=(), max_children: int | None = None,
          request_timeout: float | None = None) -> tuple[subprocess.Popen, str]:
    """Start a server (``python -m ganrestore.jobserver``) for this process's jobs;
    sets :data:`ENV` in ``os.environ`` so that jobs started from here find it.
    ``log_dirs``: the folders job logs must lie in (the run's ``results/<name>/logs``;
    default :data:`DEFAULT_LOG_DIRS`), made absolute here; ``allow``: targets run
    besides :data:`JOB_TARGETS` (tests: :data:`DESCRIBE`); ``max_children`` and
    ``request_timeout`` override :data:`MAX_CHILDREN` and :data:`REQUEST_TIMEOUT`.
    Returns the process and the socket path."""
    folder = tempfile.mkdtemp(prefix="ganrestore-js-")
    path = os.path.join(folder, "s")
    e = dict(os.environ if env is None else env)
    for var in THREAD_VARS:
        e[var] = "1"                        # what a 1-thread job gets from Snakemake
    e.pop(ENV, None)
    argv = [sys.executable, "-m", "ganrestore.jobserver", "serve", path, str(os.getpid())]
    for d in (DEFAULT_LOG_DIRS if log_dirs is None else log_dirs):
        argv += ["--log-dir", os.path.abspath(d)]
    for t in allow:
        argv += ["--allow", str(t)]
    if max_children is not None:
        argv += ["--max-children", str(int(max_children))]
    if request_timeout is not None:
        argv += ["--request-timeout", str(float(request_timeout))]
    proc = subprocess.Popen(argv, env=e, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not os.path.exists(path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not os.path.exists(path):
        proc.kill()
        raise RuntimeError("job server did not start")
    os.environ[ENV] = path
    return proc, path


def stop(proc: subprocess.Popen | None, path: str | None = None) -> None:
    """Stop a server started by :func:`start` and forget it."""
    if os.environ.get(ENV) == path or path is None:
        os.environ.pop(ENV, None)
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if path:
        for p in (Path(path), Path(path).parent):
            try:
                p.unlink() if p.is_socket() else p.rmdir()
            except OSError:
                pass


def _main(argv) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m ganrestore.jobserver")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve", help="serve jobs on a Unix socket")
    sv.add_argument("socket")
    sv.add_argument("parent_pid", nargs="?", type=int, default=None)
    sv.add_argument("--log-dir", action="append", default=None,
                    help="a folder job logs must lie in (repeatable; default: ./results)")
    sv.add_argument("--allow", action="append", default=[],
                    help=f"a target to run besides the job entry points (e.g. {DESCRIBE})")
    sv.add_argument("--max-children", type=int, default=MAX_CHILDREN)
    sv.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT)
    a = ap.parse_args(argv)
    serve(a.socket, a.parent_pid, allow=JOB_TARGETS | set(a.allow),
          log_dirs=tuple(a.log_dir) if a.log_dir else DEFAULT_LOG_DIRS,
          max_children=max(1, a.max_children), request_timeout=a.request_timeout)


if __name__ == "__main__":
    _main(sys.argv[1:])
