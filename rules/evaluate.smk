# Evaluation: per-image metrics per (task, method), then the summary table.


rule evaluate:
    input:
        unpack(lpips_input),
        data=f"{results_dir()}/data/test.npz",
        shards=lambda wc: shard_outputs(wc.task, wc.method),
    output:
        csv=f"{results_dir()}/metrics/{{task}}/{{method}}.csv",
        json=f"{results_dir()}/metrics/{{task}}/{{method}}.json",
    log:
        f"{results_dir()}/logs/evaluate/{{task}}_{{method}}.log",
    benchmark:
        f"{results_dir()}/benchmarks/evaluate/{{task}}_{{method}}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        task_options=config["task_options"],
        ssim_window=config["evaluation"]["ssim_window"],
    script:
        "../scripts/evaluate.py"


rule summary:
    input:
        [f"{results_dir()}/metrics/{t}/{m}.json" for t, m, ok in pairs() if ok],
    output:
        md=f"{results_dir()}/tables/summary.md",
        csv=f"{results_dir()}/tables/summary.csv",
    log:
        f"{results_dir()}/logs/summary.log",
    benchmark:
        f"{results_dir()}/benchmarks/summary.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        pairs=pairs(),
        left_out=left_out_pairs(),
        name=config["name"],
        n_test=n_images("test"),
    script:
        "../scripts/summary.py"
