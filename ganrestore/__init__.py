"""ganrestore: GAN-prior image restoration replications.

The library holds every algorithm; the Snakemake workflow (Snakefile, rules/,
scripts/) only wires artifacts together.  Images inside the library are
``torch.float32`` tensors of shape ``(B, 3, H, W)`` in ``[0, 1]``.
"""

__version__ = "0.1.0"
