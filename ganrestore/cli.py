"""The ``ganrestore`` command: one entry point with subcommands (``ganrestore <command> ...``).

Installed as a console script (``pyproject.toml``: ``[project.scripts]``); also
``python -m ganrestore <command>``.  Commands:

``verify PATH...``
    Check results trees for artifacts damaged at rest (:mod:`ganrestore.verify`):
    every ``.npz`` against the sha256 its sidecar records, checkpoints against
    their sidecars, JSON and CSV files for being readable.  Lists each damaged
    file with the rule that makes it and how to remake it; exit status 1 when
    any is damaged, 2 when a path is not a folder.

A new command is one more ``sub.add_parser(...)`` in :func:`build_parser` with a
``func`` default taking the parsed arguments and returning the exit status.
"""

from __future__ import annotations

import argparse
import sys


def _verify(args) -> int:
    from .verify import main

    return main(args.paths, as_json=args.json, quiet=args.quiet)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ganrestore", description="ganrestore: GAN-prior image restoration tools")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    v = sub.add_parser("verify", help="check results/<name> for damaged artifacts",
                       description="Check results trees for artifacts damaged at rest (truncated or "
                                   "modified in place): each .npz against its sidecar's sha256, checkpoints "
                                   "against theirs, JSON / CSV files for being readable.")
    v.add_argument("paths", nargs="+", metavar="PATH", help="a results folder, e.g. results/demo")
    v.add_argument("--json", action="store_true", help="print the findings as JSON")
    v.add_argument("-q", "--quiet", action="store_true", help="list damaged files only")
    v.set_defaults(func=_verify)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
