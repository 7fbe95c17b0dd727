# Restoration: one job per (task, method, shard).


rule restore:
    input:
        unpack(restore_inputs),
    output:
        f"{results_dir()}/restore/{{task}}/{{method}}/s{config['shard_size']}-{{shard}}.npz",
    log:
        f"{results_dir()}/logs/restore/{{task}}/{{method}}_{{shard}}.log",
    benchmark:
        f"{results_dir()}/benchmarks/restore/{{task}}/{{method}}_{{shard}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        gpu=lambda wc: 1 if get_method(wc.method).gpu else 0,
    params:
        cfg=lambda wc: mcfg(wc.method, wc.task),
        bounds=lambda wc: shard_range(wc.shard),
        seed=config["seed"],
        image_size=config["image_size"],
        microbatch=config["microbatch"],
        task_options=config["task_options"],
    script:
        "../scripts/restore.py"
