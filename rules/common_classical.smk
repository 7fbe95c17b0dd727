# Functions of the classical-baseline rules (rules/classical.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.


def classical_dictionary_path():
    return f"{results_dir()}/classical/dictionary.npz"


def dictionary_params():
    """K-SVD settings: DICTIONARY_DEFAULTS updated by method_params.sparse.dictionary."""
    sparse = config.get("method_params", {}).get("sparse", {}) or {}
    return {**DICTIONARY_DEFAULTS, **(sparse.get("dictionary", {}) or {})}


def method_inputs(method, task=None):
    """Extra input files of a method, {name: path} (passed on as cfg['extra_inputs']).
    sparse: method_params.sparse.dictionary_path when set (per task too), else the
    dictionary rule learn_dictionary makes."""
    if method == "sparse":
        own = mcfg("sparse", task).get("dictionary_path") if task else None
        return {"dictionary": own or classical_dictionary_path()}
    return {}


def _sparse_dictionary_paths():
    """(key, path) of every method_params.sparse.dictionary_path the config sets."""
    sp = (config.get("method_params") or {}).get("sparse") or {}
    out = [("method_params.sparse.dictionary_path", sp.get("dictionary_path"))]
    for t, block in (sp.get("per_task") or {}).items():
        out.append(
            (
                f"method_params.sparse.per_task.{t}.dictionary_path",
                (block or {}).get("dictionary_path"),
            )
        )
    return [(k, p) for k, p in out if p]
