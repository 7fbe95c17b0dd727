# The direct approach (seed 004): one conditional GAN per task.
#
#   train_cgan           one generator per task (only when cgan.train is true;
#                        otherwise the committed checkpoints of cgan.checkpoint)
#   restore (method cgan) one forward pass with the task's own checkpoint
#   cgan_cross_restore   every task's cGAN applied to every task's observation
#   cgan_cross_table     PSNR / SSIM / LPIPS of each (trained on, tested on),
#                        beside yeh / csgm / iagan (one prior for all tasks)
#   cgan_training_curves the training logs of the checkpoints used


include: "common_cgan.smk"


METHOD_EXTRA_INPUTS["cgan"] = cgan_method_inputs
# every committed checkpoint the run needs must exist before any job starts
CONFIG_PATHS.extend(
    (key, lambda path=path: path, "file") for key, path in cgan_checkpoint_paths()
)


rule train_cgan:
    """Train task's cGAN: generator of seed 004 against the fused global + local
    discriminator, reconstruction + adversarial loss, clean images corrupted on
    the fly by the task.  Only requested when cgan.train is true."""
    input:
        unpack(cgan_training_inputs),
    output:
        weights=f"{results_dir()}/cgan/{{task}}/cgan_{{task}}.safetensors",
        meta=f"{results_dir()}/cgan/{{task}}/cgan_{{task}}.json",
        losses=f"{results_dir()}/cgan/{{task}}/losses.csv",
        loss_plot=f"{results_dir()}/cgan/{{task}}/loss.png",
        samples=f"{results_dir()}/cgan/{{task}}/samples.png",
    log:
        f"{results_dir()}/logs/cgan/train_cgan_{{task}}.log",
    benchmark:
        f"{results_dir()}/benchmarks/cgan/train_cgan_{{task}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        training=lambda wc: cgan_training_params(wc.task),
        stem=lambda wc, output: output.weights[: -len(".safetensors")],
        out_dir=lambda wc, output: str(Path(output.losses).parent),
    script:
        "../scripts/train_cgan.py"


rule cgan_cross_restore:
    """The cGAN trained on one task applied to the test observations of every task
    the method runs on (one image per call; never reads clean images)."""
    input:
        y=[f"{results_dir()}/corrupt/{t}/test.npz" for t in cgan_tasks()],
        checkpoint=lambda wc: f"{cgan_stem(wc.trained)}.json",
        weights=lambda wc: f"{cgan_stem(wc.trained)}.safetensors",
    output:
        f"{results_dir()}/cgan_cross/{{trained}}.npz",
    log:
        f"{results_dir()}/logs/cgan/cross_restore_{{trained}}.log",
    benchmark:
        f"{results_dir()}/benchmarks/cgan/cross_restore_{{trained}}.tsv"
    wildcard_constraints:
        trained=r"[A-Za-z0-9_.]+",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        tasks=cgan_tasks(),
        seed=config["seed"],
        image_size=config["image_size"],
        microbatch=config["microbatch"],
    script:
        "../scripts/cgan_cross_restore.py"


rule cgan_cross_table:
    """Every (trained on, tested on) pair of cGANs beside the one-prior methods:
    PSNR / SSIM / LPIPS tables (Markdown, CSV, HTML)."""
    input:
        unpack(lpips_input),
        data=f"{results_dir()}/data/test.npz",
        restored=[f"{results_dir()}/cgan_cross/{t}.npz" for t in cgan_tasks()],
        baselines=[
            metrics_json(t, m)
            for m in CGAN_CROSS_BASELINES
            if m in config["methods"]
            for t in cgan_tasks()
            if applies(t, m)
        ],
    output:
        md=f"{results_dir()}/tables/cgan_cross.md",
        csv=f"{results_dir()}/tables/cgan_cross.csv",
        html=report(
            f"{results_dir()}/tables/cgan_cross.html",
            caption="../report/cgan_cross.rst",
            category="Tables",
            subcategory="cGAN: one model per corruption",
            labels={"table": "cross-corruption (cGAN)"},
        ),
    log:
        f"{results_dir()}/logs/cgan/cross_table.log",
    benchmark:
        f"{results_dir()}/benchmarks/cgan/cross_table.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        info=report_params(),
        tasks=cgan_tasks(),
        baselines=CGAN_CROSS_BASELINES,
        baseline_pairs={
            f"{m}|{t}": metrics_json(t, m)
            for m in CGAN_CROSS_BASELINES
            if m in config["methods"]
            for t in cgan_tasks()
            if applies(t, m)
        },
        checkpoints=cgan_checkpoint_info(),
    script:
        "../scripts/cgan_cross_table.py"


rule cgan_training_curves:
    """Training curves (reconstruction, adversarial losses, validation PSNR) of
    the cGAN checkpoints this run uses."""
    input:
        logs=[cgan_losses_csv(t) for t in cgan_tasks()],
        meta=[f"{cgan_stem(t)}.json" for t in cgan_tasks()],
    output:
        png=report(
            f"{results_dir()}/figures/cgan_training.png",
            caption="../report/cgan_training.rst",
            category="Figures",
            labels={"figure": "cGAN training curves"},
        ),
        pdf=f"{results_dir()}/figures/cgan_training.pdf",
    log:
        f"{results_dir()}/logs/cgan/training_curves.log",
    benchmark:
        f"{results_dir()}/benchmarks/cgan/training_curves.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        info=report_params(),
        tasks=cgan_tasks(),
        checkpoints=cgan_checkpoint_info(),
    script:
        "../scripts/cgan_training_curves.py"


if cgan_tasks():

    EXTRA_FINAL_OUTPUTS.extend(
        list(rules.cgan_cross_table.output) + list(rules.cgan_training_curves.output)
    )
