# Functions of the GAN prior rules (rules/priors.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.


def prior_name():
    """Short name of the prior (the checkpoint stem's file name, e.g. demo_dcgan32)."""
    return Path(config["prior"]["checkpoint"]).name


def prior_trained_stem():
    """Where rule train_gan writes a retrained prior."""
    return f"{results_dir()}/priors/{prior_name()}"


def prior_checkpoint():
    """The checkpoint stem restore rules use: retrained under results/ when
    prior.train is true, else the committed (or user-supplied) checkpoint."""
    if config["prior"].get("train", False):
        return prior_trained_stem()
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
