"""Snakemake script: build the embedded demo dataset (thin; logic in ganrestore.data.demo)."""

from ganrestore.data.demo import build_demo
from ganrestore.logs import script_logging
from ganrestore.pipeline import write_manifest, write_split

sm = snakemake  # noqa: F821  (injected by Snakemake)

with script_logging(sm.log[0], sm.threads):
    demo = build_demo(dict(sm.params.demo), image_size=sm.params.image_size)
    for split in ("test", "val"):
        part = demo[split]
        extra = {"z": part["z"]} if "z" in part else None
        write_split(sm.output[split], part["images"], part["ids"],
                    {"stage": "data", "source": "demo", "split": split, "config": dict(sm.params.demo)},
                    extra)
    write_manifest(sm.output.manifest, demo["manifest"])
