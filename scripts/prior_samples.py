"""Snakemake script (rule ``prior_samples``): sample grids of the prior and the teacher,
plus the discriminator check (mean D and ROC AUC of held-out teacher faces and of the
experiment's real photographs against G's samples). Thin: logic in
``ganrestore.priors.train.write_prior_samples`` and ``ganrestore.priors.separation``."""

import json
import logging

from ganrestore.logs import script_logging
from ganrestore.priors.separation import real_photos
from ganrestore.priors.train import write_prior_samples

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    photos, ids, note = real_photos(sm.input.manifest, {"test": sm.input.test, "val": sm.input.val})
    out = write_prior_samples(sm.input.prior, sm.output.prior_png, sm.output.teacher_png,
                              sm.output.check, n=sm.params.n, seed=sm.params.seed,
                              photos=photos, photos_note=f"{len(ids)} photographs: {note}")
    logging.getLogger("ganrestore").info("prior check: %s", json.dumps(out))
