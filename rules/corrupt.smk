# Corruptions: one cached artifact per (task, split), seeded per image id.


rule corrupt:
    input:
        f"{results_dir()}/data/{{split}}.npz",
    output:
        f"{results_dir()}/corrupt/{{task}}/{{split}}.npz",
    log:
        f"{results_dir()}/logs/corrupt/{{task}}_{{split}}.log",
    benchmark:
        f"{results_dir()}/benchmarks/corrupt/{{task}}_{{split}}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        seed=config["seed"],
        image_size=config["image_size"],
        task_options=config["task_options"],
    script:
        "../scripts/corrupt.py"
