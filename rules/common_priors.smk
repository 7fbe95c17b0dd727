# Functions of the GAN prior rules (rules/priors.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.


def prior_name():
    """Short name of the prior (the checkpoint stem's file name, e.g. demo_dcgan32)."""
    return Path(config["prior"]["checkpoint"]).name


def prior_trained_stem():
    """Where rule train_gan writes a retrained prior."""
    return f"{results_dir()}/priors/{prior_name()}"


def prior_fetched_stem():
    """Where rule fetch_prior writes a public checkpoint converted to the project's
    format: shared by every experiment (results/cache/priors/), keyed by the source
    file's name and the generator kept."""
    from ganrestore.priors.fetch import fetched_stem_name

    return f"results/cache/priors/{fetched_stem_name(config['prior']['fetch'])}"


def prior_fetch_enabled():
    """prior.fetch.url or .file is set (and prior.train is false); a missing sha256 stops the run."""
    from ganrestore.priors.fetch import fetch_enabled

    try:
        return fetch_enabled(config["prior"])
    except ValueError as e:
        _config_error(str(e))


def prior_checkpoint():
    """The checkpoint stem restore rules use: retrained under results/ when
    prior.train is true, fetched and converted when prior.fetch is set, else the
    committed (or user-supplied) checkpoint."""
    if config["prior"].get("train", False):
        return prior_trained_stem()
    if prior_fetch_enabled():
        return prior_fetched_stem()
    return resolve_checkpoint_stem(config["prior"]["checkpoint"])


def _training_data_input(wildcards):
    """The prepared split train_gan reads ('split:<name>' or a .npz path); none for 'teacher'."""
    data = str(config["prior"]["training"].get("data", "teacher"))
    if data.startswith("split:"):
        return {"data": f"{results_dir()}/data/{data.split(':', 1)[1]}.npz"}
    if data.endswith(".npz"):
        return {"data": data}
    return {}


def _training_params():
    tr = dict(config["prior"]["training"])
    data = str(tr.get("data", "teacher"))
    if data.startswith("split:"):
        tr["data"] = f"{results_dir()}/data/{data.split(':', 1)[1]}.npz"
    return tr


def _prior_plan_facts():
    """(image size, discriminator kind) of the configured prior as far as they are
    known before any job: from prior.training when the workflow trains it, from
    the sidecar when the checkpoint exists; None where unknown (a checkpoint still
    to be fetched is checked by rule fetch_prior)."""
    from ganrestore.priors.checkpoint import sidecar_facts

    prior = config["prior"]
    if prior.get("train", False):
        from ganrestore.priors.objectives import LOSSES

        tr = prior["training"]
        arch = tr.get("arch", "dcgan")
        return int(tr.get("image_size", 64)), (
            "autoencoder" if arch == "began" else LOSSES.get(tr.get("loss", "ns"))
        )
    if prior_fetch_enabled():
        return None, None
    jp = Path(f"{resolve_checkpoint_stem(prior['checkpoint'])}.json")
    if not jp.is_file():
        return None, None
    from ganrestore.io import ArtifactError, read_json

    try:
        meta = read_json(jp, "prior checkpoint sidecar")
    except ArtifactError as e:
        _config_error(f"prior.checkpoint: {e}")
    try:
        return sidecar_facts(meta)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, None  # load_prior will name what is wrong with it


def check_prior_training():
    """With prior.train: true, refuse contradictory training settings before any job
    (ganrestore.priors.train.TrainConfig names the key)."""
    if not config["prior"].get("train", False):
        return
    from ganrestore.priors.train import TrainConfig

    tr = {k: v for k, v in _training_params().items() if v is not None}
    try:
        TrainConfig.from_dict(tr)
    except ValueError as e:
        _config_error(f"prior.training: {e}")


def check_prior_plan():
    """Stop before any job when the prior cannot serve the configured methods: its
    images are not image_size, or yeh / yeh_blend would get BEGAN's auto-encoder D."""
    check_prior_training()
    if not any(get_method(m).needs_prior for m in config["methods"]):
        return
    size, d_kind = _prior_plan_facts()
    where = (
        "prior.training.image_size"
        if config["prior"].get("train", False)
        else "prior.checkpoint"
    )
    if size is not None and size != config["image_size"]:
        _config_error(
            f"{where}: the prior makes {size}x{size} images but image_size is {config['image_size']}"
        )
    yeh = [
        m
        for m in config["methods"]
        if m in ("yeh", "yeh_blend") and any(applies(t, m) for t in config["tasks"])
    ]
    if yeh and d_kind == "autoencoder":
        _config_error(
            f"methods: {', '.join(yeh)} need a discriminator giving a probability that its input is "
            "real (the prior term log(1 - D) - log D); this prior is a BEGAN, whose D is an "
            "auto-encoder (a reconstruction, not a probability): leave yeh / yeh_blend out "
            "(methods or method_tasks) or use a prior with a classifier D (DCGAN, PGAN)"
        )


def _prior_fetch_file():
    """prior.fetch.file, which must exist when set (checked before any job)."""
    if not prior_fetch_enabled():
        return None
    return config["prior"]["fetch"].get("file")
