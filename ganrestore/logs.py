"""Logging for workflow scripts: everything (logging, warnings, tqdm) goes to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path


def set_threads(n: int) -> None:
    """Cap the job's compute threads at ``n``: torch's intra-op pool when torch is
    imported, else the variables torch and BLAS read when they start (a job that
    never imports torch does not pay ~2 s to import it here)."""
    import os

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def terminate_as_exit():
    """For the duration, SIGTERM (Snakemake cancelling a job, a cluster's time
    limit, ``timeout``) raises ``SystemExit`` instead of killing the process on
    the spot, so ``finally`` blocks run: :func:`ganrestore.io.atomic_path`
    removes its hidden temporary file and nothing half-written stays behind.
    Only where the default handler is in place, and only in the main thread."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def script_logging(log_path=None, threads: int | None = None):
    """Send logging, warnings and stderr (tqdm) to ``log_path`` for the duration.

    Also caps torch's intra-op threads to the rule's ``threads``.  Exceptions are
    logged with their traceback and re-raised so the job fails; SIGTERM is one
    of them (:func:`terminate_as_exit`).
    """
    with terminate_as_exit():
        with _script_logging(log_path, threads):
            yield


@contextlib.contextmanager
def _script_logging(log_path=None, threads: int | None = None):
    if threads:
        set_threads(int(threads))
    if not log_path:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as fh:
        old_err = sys.stderr
        sys.stderr = fh
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            yield
        except BaseException:
            logging.getLogger("ganrestore").exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
            sys.stderr = old_err
