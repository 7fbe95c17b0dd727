# Functions of the cGAN rules (rules/cgan.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.

from ganrestore.io import ArtifactError, read_json

# The methods that use one GAN prior for every task, shown beside the per-task
# cGANs in the cross-corruption table (where the run has them).
CGAN_CROSS_BASELINES = ["yeh", "csgm", "iagan"]


def cgan_tasks():
    """The tasks the cgan method runs on (configured, applicable, method_tasks)."""
    if "cgan" not in config["methods"]:
        return []
    return [t for t in config["tasks"] if applies(t, "cgan")]


def cgan_train_dir(task):
    return f"{results_dir()}/cgan/{task}"


def cgan_stem(task):
    """The checkpoint stem of task's cGAN: trained by rule train_cgan under
    results/<name>/cgan/<task>/ when cgan.train is true, else the configured
    (committed) one."""
    if config["cgan"].get("train", False):
        return f"{cgan_train_dir(task)}/cgan_{task}"
    return resolve_checkpoint_stem(config["cgan"]["checkpoint"].replace("{task}", task))


def cgan_losses_csv(task):
    """The training log of task's cGAN: the run's own, or the one committed beside the checkpoint."""
    if config["cgan"].get("train", False):
        return f"{cgan_train_dir(task)}/losses.csv"
    return f"{cgan_stem(task)}_losses.csv"


def cgan_method_inputs(wildcards):
    """Extra restore inputs of cgan (passed on as cfg['extra_inputs'])."""
    stem = cgan_stem(wildcards.task)
    return {"cgan_checkpoint": f"{stem}.json", "cgan_weights": f"{stem}.safetensors"}


def _cgan_split(value):
    """'split:<name>' -> this experiment's prepared split; anything else unchanged."""
    value = str(value)
    if value.startswith("split:"):
        return f"{results_dir()}/data/{value.split(':', 1)[1]}.npz"
    return value


def cgan_training_inputs(wildcards):
    """The prepared splits train_cgan reads (training data, validation); none for 'teacher'."""
    tr = config["cgan"]["training"]
    out = {}
    for key in ("data", "val_data"):
        v = tr.get(key)
        if v and (str(v).startswith("split:") or str(v).endswith(".npz")):
            out[key] = _cgan_split(v)
    return out


def cgan_training_params(task):
    """CGANTrainConfig settings of task's cGAN: the config's cgan.training with the
    task, the experiment's seed and image size filled in, splits resolved."""
    tr = dict(config["cgan"]["training"])
    for key in ("data", "val_data"):
        if tr.get(key):
            tr[key] = _cgan_split(tr[key])
    tr.update(task=task, task_seed=config["seed"], image_size=config["image_size"])
    return tr


def cgan_checkpoint_paths():
    """(config key, path) of every committed checkpoint the run needs (cgan.train false)."""
    if config["cgan"].get("train", False):
        return []
    return [
        (
            f"cgan.checkpoint for task {t} (train one with cgan.train: true, or leave "
            f"{t} out with method_tasks.cgan)",
            f"{cgan_stem(t)}.safetensors",
        )
        for t in cgan_tasks()
    ]


def cgan_checkpoint_info():
    """What the captions state about each task's cGAN: from the committed
    checkpoint's sidecar (steps, seconds, device, widths, data, validation PSNR),
    or, when the workflow trains them, from the training settings."""
    out = {}
    for t in cgan_tasks():
        if config["cgan"].get("train", False):
            tr = config["cgan"]["training"]
            out[t] = {
                "source": "trained by this run (rule train_cgan)",
                "steps": tr.get("steps"),
                "width": tr.get("width"),
                "dilated_width": tr.get("dilated_width"),
                "data": str(tr.get("data", "teacher")),
                "budget_minutes": tr.get("max_minutes"),
            }
            continue
        sidecar = Path(f"{cgan_stem(t)}.json")
        try:
            m = (
                read_json(sidecar, "cGAN checkpoint sidecar")
                if sidecar.exists()
                else {}
            )
        except ArtifactError as e:
            _config_error(f"cgan.checkpoint: {e}")
        tr = m.get("training") or {}
        out[t] = {
            "source": f"committed checkpoint {cgan_stem(t)}",
            "steps": m.get("steps"),
            "seconds": m.get("train_seconds"),
            "device": m.get("device"),
            "threads": m.get("torch_threads"),
            "width": tr.get("width"),
            "dilated_width": tr.get("dilated_width"),
            "batch_size": tr.get("batch_size"),
            "data": (m.get("data") or {}).get("kind", tr.get("data")),
            "val_psnr": (m.get("validation") or {}).get("val_psnr"),
            "budget_minutes": tr.get("max_minutes"),
            "stopped": m.get("stopped"),
        }
    return out
