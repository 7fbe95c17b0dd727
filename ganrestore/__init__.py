"""ganrestore: GAN-prior image restoration replications.

The library holds every algorithm; the Snakemake workflow (Snakefile, rules/,
scripts/) only wires artifacts together.  Images inside the library are
``torch.float32`` tensors of shape ``(B, 3, H, W)`` in ``[0, 1]``.
"""

__version__ = "0.1.0"

# ``ganrestore.run(configfile, cores=..., targets=...)``: the workflow from a
# notebook (ganrestore.api).  Imported on first use, so that ``import
# ganrestore`` stays cheap for workflow jobs.
_API = ("run", "RunResult", "RunError")


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", *_API]
