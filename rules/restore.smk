# Restoration: one job per (task, method, shard).


def restore_inputs(wildcards):
    info = get_method(wildcards.method)
    inp = {"y": f"{results_dir()}/corrupt/{wildcards.task}/test.npz"}
    if info.upstream:
        inp["upstream"] = restore_path(wildcards.task, info.upstream, wildcards.shard)
    if info.needs_prior:
        stem = prior_checkpoint()
        inp["prior"] = f"{stem}.json"
        inp["prior_weights"] = f"{stem}.safetensors"
    inp.update(method_extra_inputs(wildcards))
    return inp


rule restore:
    input:
        unpack(restore_inputs),
    output:
        f"{results_dir()}/restore/{{task}}/{{method}}/s{config['shard_size']}-{{shard}}.npz",
    params:
        cfg=lambda wc: mcfg(wc.method, wc.task),
        bounds=lambda wc: shard_range(wc.shard),
        seed=config["seed"],
        image_size=config["image_size"],
    resources:
        gpu=lambda wc: 1 if get_method(wc.method).gpu else 0,
    log:
        f"{results_dir()}/logs/restore/{{task}}/{{method}}_{{shard}}.log",
    benchmark:
        f"{results_dir()}/benchmarks/restore/{{task}}/{{method}}_{{shard}}.tsv"
    threads: 1
    script:
        "../scripts/restore.py"
