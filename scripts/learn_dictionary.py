"""Snakemake script: learn the sparse baseline's K-SVD dictionary on the validation split (thin)."""

from ganrestore.logs import script_logging
from ganrestore.solvers.sparse import learn_dictionary_artifact

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    learn_dictionary_artifact(sm.input.val, sm.output[0], **dict(sm.params.dictionary))
