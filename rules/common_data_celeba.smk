# Functions of the real-dataset rules (rules/data_celeba.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.


def _data_outputs(with_train=False):
    out = {
        "test": f"{results_dir()}/data/test.npz",
        "val": f"{results_dir()}/data/val.npz",
        "manifest": f"{results_dir()}/data/manifest.csv",
    }
    if with_train:
        out["train"] = f"{results_dir()}/data/train.npz"
    return out
