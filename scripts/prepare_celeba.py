"""Snakemake script: prepare CelebA or CelebA-HQ splits (thin; logic in ganrestore.data.celeba / .celebahq)."""

from ganrestore.logs import script_logging
from ganrestore.pipeline import write_manifest, write_split

sm = snakemake  # noqa: F821  (injected by Snakemake)

with script_logging(sm.log[0], sm.threads):
    source, cfg, size = sm.params.source, dict(sm.params.cfg), int(sm.params.image_size)
    if source == "celeba":
        from ganrestore.data.celeba import build_celeba

        data = build_celeba(cfg, image_size=size)
    elif source == "celebahq":
        from ganrestore.data.celebahq import build_celebahq

        data = build_celebahq(cfg, image_size=size)
    else:
        raise ValueError(f"prepare_celeba.py cannot prepare source {source!r}")
    write_manifest(sm.output.manifest, data["manifest"])
    for split in ("test", "val", "train"):
        if split not in sm.output.keys():
            continue
        part = data[split]
        meta = {"stage": "data", "source": source, "split": split, "config": cfg, "image_size": size}
        for key in ("protocol", "files"):
            if key in part:
                meta[key] = part[key]
        write_split(sm.output[split], part["images"], part["ids"], meta)
