"""Snakemake script: prepare splits from a folder of face photographs (thin; logic in ganrestore.data.folder)."""

from ganrestore.data.folder import build_folder
from ganrestore.logs import script_logging
from ganrestore.pipeline import write_manifest, write_split

sm = snakemake  # noqa: F821  (injected by Snakemake)

with script_logging(sm.log[0], sm.threads):
    cfg, size = dict(sm.params.cfg), int(sm.params.image_size)
    data = build_folder(cfg, image_size=size)
    write_manifest(sm.output.manifest, data["manifest"])
    for split in ("test", "val"):
        write_split(sm.output[split], data[split]["images"], data[split]["ids"],
                    {"stage": "data", "source": "folder", "split": split, "config": cfg,
                     "image_size": size, "skipped": data["skipped"]})
