# GAN priors: the committed demo checkpoint (default) or one retrained here
# (prior.train: true), and sample grids of the prior and of the teacher generator.
#
# Methods that need a prior depend on prior_checkpoint() (a checkpoint stem:
# <stem>.safetensors + <stem>.json, see ganrestore/priors/checkpoint.py).


include: "common_priors.smk"


rule train_gan:
    """Train a DCGAN (G + D) prior: BCE-with-logits, non-saturating G loss, Adam.
    Only requested when prior.train is true."""
    input:
        unpack(_training_data_input),
    output:
        weights=f"{prior_trained_stem()}.safetensors",
        meta=f"{prior_trained_stem()}.json",
        samples=f"{results_dir()}/priors/train_{prior_name()}/samples.png",
        losses=f"{results_dir()}/priors/train_{prior_name()}/losses.csv",
        loss_plot=f"{results_dir()}/priors/train_{prior_name()}/loss.png",
    log:
        f"{results_dir()}/logs/priors/train_gan_{prior_name()}.log",
    benchmark:
        f"{results_dir()}/benchmarks/priors/train_gan_{prior_name()}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        training=_training_params(),
        stem=lambda wildcards, output: output.weights[: -len(".safetensors")],
        out_dir=lambda wildcards, output: str(Path(output.samples).parent),
    script:
        "../scripts/train_gan.py"


rule prior_samples:
    """Sample grids of the prior and of the teacher generator (same latents), and
    the discriminator check: mean D on in-range teacher faces vs on G's samples."""
    input:
        prior=f"{prior_checkpoint()}.json",
        weights=f"{prior_checkpoint()}.safetensors",
    output:
        prior_png=f"{results_dir()}/priors/{prior_name()}_samples.png",
        teacher_png=f"{results_dir()}/priors/teacher_samples.png",
        check=f"{results_dir()}/priors/{prior_name()}_discriminator.json",
    log:
        f"{results_dir()}/logs/priors/prior_samples_{prior_name()}.log",
    benchmark:
        f"{results_dir()}/benchmarks/priors/prior_samples_{prior_name()}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    params:
        n=64,
        seed=config["seed"],
    script:
        "../scripts/prior_samples.py"


EXTRA_FINAL_OUTPUTS.extend(rules.prior_samples.output)
