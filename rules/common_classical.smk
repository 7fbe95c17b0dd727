# Functions of the classical-baseline rules (rules/classical.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.


def classical_dictionary_path():
    return f"{results_dir()}/classical/dictionary.npz"


def dictionary_params():
    """K-SVD settings: DICTIONARY_DEFAULTS updated by method_params.sparse.dictionary."""
    sparse = config.get("method_params", {}).get("sparse", {}) or {}
    return {**DICTIONARY_DEFAULTS, **(sparse.get("dictionary", {}) or {})}


def method_inputs(method):
    """Extra input files of a method, {name: path} (passed on as cfg['extra_inputs'])."""
    if method == "sparse":
        return {"dictionary": classical_dictionary_path()}
    return {}
