# Corruptions: one cached artifact per (task, split), seeded per image id.


rule corrupt:
    input:
        f"{results_dir()}/data/{{split}}.npz",
    output:
        f"{results_dir()}/corrupt/{{task}}/{{split}}.npz",
    params:
        seed=config["seed"],
        image_size=config["image_size"],
    log:
        f"{results_dir()}/logs/corrupt/{{task}}_{{split}}.log",
    benchmark:
        f"{results_dir()}/benchmarks/corrupt/{{task}}_{{split}}.tsv"
    threads: 1
    script:
        "../scripts/corrupt.py"
