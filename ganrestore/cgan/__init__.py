"""The direct approach of the seeds: a conditional GAN trained per corruption.

Seed 004 (Chen, Ji, Zhang, "Conditional Deep Convolutional GANs for Image
Restoration") trains a generator on (corrupted, clean) face pairs against a
fused global + local discriminator; the Yeh et al. slides (seed 001,
"Background II") name its cost: "a new model needs to be trained for each new
corruption".  This package holds the networks (:mod:`.models`), their
checkpoints (:mod:`.checkpoint`), training (:mod:`.train`) and the
cross-corruption evaluation (:mod:`.cross`: every task's cGAN applied to every
task's observation).  The restoration method ``cgan`` is
:mod:`ganrestore.methods.cgan`.
"""

from .checkpoint import CGANCheckpoint, load_cgan, read_meta, save_cgan
from .models import CGANGenerator, FusedDiscriminator, condition_map, generator_input, local_crop_boxes

__all__ = ["CGANGenerator", "FusedDiscriminator", "condition_map", "generator_input", "local_crop_boxes",
           "CGANCheckpoint", "load_cgan", "read_meta", "save_cgan"]
