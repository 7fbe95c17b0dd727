# GAN priors: the committed demo checkpoint (default), one trained here
# (prior.train: true: a DCGAN or a BEGAN, rule train_gan) or a public checkpoint
# fetched and converted (prior.fetch: rule fetch_prior), and sample grids of the
# prior and of the teacher generator.
#
# Methods that need a prior depend on prior_checkpoint() (a checkpoint stem:
# <stem>.safetensors + <stem>.json, see ganrestore/priors/checkpoint.py).


include: "common_priors.smk"


check_prior_plan()
CONFIG_PATHS.append(("prior.fetch.file", _prior_fetch_file, "file"))


rule train_gan:
    """Train a GAN prior (G + D): a DCGAN (non-saturating, WGAN-GP or RSGAN loss;
    or D alone against the frozen teacher G) or a BEGAN (auto-encoder D, k_t
    equilibrium control), Adam.  Only requested when prior.train is true."""
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


if prior_fetch_enabled():

    rule fetch_prior:
        """A public checkpoint (prior.fetch: URL + sha256, resumable download into
        prior.fetch.root, or a local file), verified, read with a restricted
        unpickler and converted once to safetensors + provenance JSON."""
        output:
            weights=f"{prior_fetched_stem()}.safetensors",
            meta=f"{prior_fetched_stem()}.json",
        log:
            f"results/cache/priors/logs/fetch_prior_{Path(prior_fetched_stem()).name}.log",
        benchmark:
            f"results/cache/priors/logs/fetch_prior_{Path(prior_fetched_stem()).name}.tsv"
        conda:
            "../envs/torch.yaml"
        threads: 2
        params:
            fetch=config["prior"]["fetch"],
            stem=lambda wildcards, output: output.weights[: -len(".safetensors")],
            image_size=config["image_size"],
        script:
            "../scripts/fetch_prior.py"


rule prior_samples:
    """Sample grids of the prior and of the teacher generator (same seed), and
    the discriminator check: mean D score and ROC AUC of held-out teacher faces
    and of the real photographs of the test and validation splits vs G's samples.
    """
    input:
        prior=f"{prior_checkpoint()}.json",
        weights=f"{prior_checkpoint()}.safetensors",
        test=f"{results_dir()}/data/test.npz",
        val=f"{results_dir()}/data/val.npz",
        manifest=f"{results_dir()}/data/manifest.csv",
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
