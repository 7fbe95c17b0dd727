# Classical baselines (tv, lowrank, sparse): the sparse method's learned patch
# dictionary.  K-SVD on clean patches of the *validation* split only -- never on
# test images -- cached as results/<name>/classical/dictionary.npz (+ .json
# sidecar with the training source, its checksum and the K-SVD error history).


include: "common_classical.smk"


DICTIONARY_DEFAULTS = {
    "patch": 6,  # patch side (colour patches: 3*patch^2 rows)
    "n_atoms": 256,  # dictionary size
    "sparsity": 6,  # atoms per patch during K-SVD
    "n_iter": 8,  # K-SVD iterations
    "max_patches": 12000,
    "seed": 0,
}


for _m in ("sparse",):
    METHOD_EXTRA_INPUTS[_m] = lambda wildcards, _m=_m: method_inputs(_m, wildcards.task)

# a dictionary the config names must exist (checked before any job)
if "sparse" in config["methods"]:
    for _key, _path in _sparse_dictionary_paths():
        CONFIG_PATHS.append((_key, lambda _path=_path: _path, "file"))


rule learn_dictionary:
    """K-SVD patch dictionary of the sparse baseline, learned on the validation split."""
    input:
        val=f"{results_dir()}/data/val.npz",
    output:
        classical_dictionary_path(),
    log:
        f"{results_dir()}/logs/classical/learn_dictionary.log",
    benchmark:
        f"{results_dir()}/benchmarks/classical/learn_dictionary.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        dictionary=lambda wc: dictionary_params(),
    script:
        "../scripts/learn_dictionary.py"
