# Data: prepared test / validation splits as uint8 arrays with ids and a manifest.


rule prepare_demo:
    """The offline embedded demo: package face photos (detected, aligned, cropped)
    and in-range faces sampled from the gan-face-generate generator."""
    output:
        test=f"{results_dir()}/data/test.npz",
        val=f"{results_dir()}/data/val.npz",
        manifest=f"{results_dir()}/data/manifest.csv",
    log:
        f"{results_dir()}/logs/prepare_demo.log",
    benchmark:
        f"{results_dir()}/benchmarks/prepare_demo.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        demo=config["data"]["demo"],
        image_size=config["image_size"],
    script:
        "../scripts/prepare_demo.py"
