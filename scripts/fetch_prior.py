"""Fetch a public prior checkpoint (URL + sha256, resumable) or take a local copy, verify it,
and convert it once to safetensors + provenance JSON.  Thin: logic in
``ganrestore.priors.fetch.fetch_prior``.

Snakemake (rule ``fetch_prior``): ``params.fetch`` is the config's ``prior.fetch``,
``params.stem`` the output stem, ``params.image_size`` the experiment's.

Command line::

    python scripts/fetch_prior.py --url https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ_s6_i80000-6196db68.pth \\
        --sha256 6196db68 --out results/cache/priors/celebaHQ_s6_i80000-6196db68_avgG
    python scripts/fetch_prior.py --file celebaHQ_s6_i80000-6196db68.pth --sha256 6196db68 --out my/stem
"""

import argparse
import json
import logging


def main(argv=None) -> None:
    from ganrestore.priors.fetch import DEFAULT_ROOT, fetch_prior, name_hash_prefix

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=None)
    p.add_argument("--file", default=None, help="a local copy instead of downloading")
    p.add_argument("--sha256", default=None, help="full digest or prefix (default: the prefix in the file name)")
    p.add_argument("--out", required=True, help="checkpoint stem to write")
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--generator", default="avgG", choices=["avgG", "netG"])
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--device", default=None)
    a = p.parse_args(argv)
    sha = a.sha256 or name_hash_prefix(a.url or a.file or "")
    fetch = {"url": a.url, "file": a.file, "sha256": sha, "root": a.root, "generator": a.generator,
             "format": "pgan_zoo"}
    logging.basicConfig(level=logging.INFO)
    stem = fetch_prior(fetch, a.out, expect_size=a.image_size, device=a.device)
    print(json.dumps({"stem": str(stem)}))


def snakemake_main(sm) -> None:
    from ganrestore.logs import script_logging
    from ganrestore.priors.fetch import fetch_prior

    with script_logging(sm.log[0] if len(sm.log) else None, sm.threads):
        stem = fetch_prior(dict(sm.params.fetch), sm.params.stem, expect_size=sm.params.image_size,
                           progress=False)
        logging.getLogger("ganrestore").info("fetch_prior: wrote %s", stem)


if "snakemake" in globals():
    snakemake_main(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
