"""Snakemake script (rule ``prior_samples``): sample grids of the prior and the teacher,
plus the discriminator check (mean D on in-range faces vs on G's samples). Thin: logic in
``ganrestore.priors.train.write_prior_samples``."""

import json
import logging

from ganrestore.logs import script_logging
from ganrestore.priors.train import write_prior_samples

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    out = write_prior_samples(sm.input.prior, sm.output.prior_png, sm.output.teacher_png,
                              sm.output.check, n=sm.params.n, seed=sm.params.seed)
    logging.getLogger("ganrestore").info("prior check: %s", json.dumps(out))
