"""Plugins: restoration methods, GAN prior architectures and data sources from
another package, without forking ganrestore.

A plugin is a Python module that registers things **when it is imported**:

* a method with :func:`ganrestore.methods.register` (optionally with
  ``schema=``: the JSON Schema of its ``method_params.<name>`` block);
* a GAN prior architecture with :func:`register_prior`;
* a data source with :func:`register_source`.

It reaches the workflow in one of two ways:

* **entry points** of an installed distribution, in the groups
  ``ganrestore.methods``, ``ganrestore.priors`` and ``ganrestore.sources``
  (:data:`GROUPS`), e.g. in its ``pyproject.toml``::

      [project.entry-points."ganrestore.methods"]
      lowpass = "ganrestore_lowpass"

  Every installed entry point is imported the first time a registry is
  consulted (:func:`ganrestore.methods.get_method`, :func:`load`, ...);
* the config key ``plugins``: a list of module names importable from the
  environment (``my_package.methods``) or paths to ``.py`` files (the
  workflow resolves a relative path against the folder of the config file
  that names it, and prints every resolved path; :func:`load`'s ``base_dir``),
  imported by the workflow before it validates the config (:func:`load`; the
  workflow exports the list in ``$GANRESTORE_PLUGINS`` so that its jobs import
  the same modules, see :func:`ensure_loaded`).

**A config is trusted input.**  A module it names runs on every Snakemake
invocation (dry runs, ``--unlock`` and ``--list-rules`` included), with the
user's rights, like the Snakefile itself.  What is refused is what cannot be a
plugin: a standard-library module (refused before it is imported: ``plugins:
[this]`` would print the Zen of Python), and an installed (site-packages)
module that registers no method, prior or source.

Nothing else is imported: plugin code runs only when a config names it or its
entry point is installed.  A plugin that fails to import raises
:class:`PluginError` naming the plugin, where it came from and the exception; a
plugin that registers a name that is taken (a built-in method such as ``tv``,
or another plugin's) is refused the same way, so a run stops before any job.

A registered method is a method like the built-in ones: a config that lists it
under ``methods`` gets its restore jobs, its rows in ``tables/summary.*``, its
curves in the figures and its entries in the report.  Its parameters live under
``method_params.<name>`` and are validated against the schema it registered
(:func:`method_schema`: unknown keys are errors unless the schema says
otherwise; a method registered without a schema takes no parameters), with its
defaults filled in and ``per_task`` overrides checked like a built-in's.

Prior architectures and data sources are registered and loaded the same way,
but the workflow does not build on them yet: see :func:`register_prior` and
:func:`register_source` for what is and is not wired.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

#: entry-point group per kind of plugin
GROUPS = {"methods": "ganrestore.methods", "priors": "ganrestore.priors", "sources": "ganrestore.sources"}
#: environment variable through which the workflow hands config-named plugins to its jobs
ENV = "GANRESTORE_PLUGINS"

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class PluginError(RuntimeError):
    """A plugin could not be loaded (import error, or a name it registers is taken).
    The message names the plugin, where it came from, and the cause."""


class DuplicateNameError(ValueError):
    """A registration under a name that is already registered by other code."""


# -- registries of priors and sources --------------------------------------------

@dataclass(frozen=True)
class PriorArchitecture:
    """A GAN prior architecture a plugin provides.

    ``cls(**sizes)`` builds the network (a ``torch.nn.Module``) from the sizes
    named in ``keys``; an instance's ``arch()`` returns ``{"name": name, **sizes}``
    (what :func:`ganrestore.priors.checkpoint.save_prior` records in the
    checkpoint's sidecar).  A generator also has ``nz`` (latent size) and maps
    ``(B, nz)`` latents to ``(B, 3, H, W)`` images in ``[-1, 1]``, like
    :class:`ganrestore.priors.dcgan.Generator`."""

    name: str
    cls: Callable
    keys: tuple = ()
    description: str = ""


@dataclass(frozen=True)
class DataSource:
    """A data set a plugin provides.

    ``build(cfg, image_size)`` returns ``{"test": {"images", "ids"}, "val":
    {"images", "ids"}, "manifest": [row dicts]}`` with ``images`` uint8 of shape
    ``(N, image_size, image_size, 3)`` and ``ids`` N unique strings (what
    :func:`ganrestore.data.folder.build_folder` returns; check it with
    :func:`build_source`).  ``n_images(cfg, split)`` is the number of images of
    ``split`` ("test" / "val") known before building (the workflow needs it to
    plan its shards).  ``schema``: the JSON Schema of ``cfg`` (the config block
    ``data.<name>``)."""

    name: str
    build: Callable
    n_images: Callable
    schema: dict | None = field(default=None, compare=False)
    description: str = ""


PRIORS: dict[str, PriorArchitecture] = {}
SOURCES: dict[str, DataSource] = {}
#: data sources the workflow has rules for (config/schema.yaml: data.source)
BUILTIN_SOURCES = ("demo", "celeba", "celebahq", "folder")


def where(obj) -> str:
    """``module.qualname`` of a function or class (for messages)."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def same_definition(a, b) -> bool:
    """Whether ``a`` and ``b`` are the same definition: the same object, or the
    same module and qualified name (a module imported again by
    ``importlib.reload`` or a test runner redefines its functions)."""
    if a is b:
        return True
    key = (lambda o: (getattr(o, "__module__", None), getattr(o, "__qualname__", None)))
    return key(a) == key(b) and key(a)[1] is not None


def check_free(kind: str, name: str, old, new) -> None:
    """Refuse to register ``new`` as ``kind`` ``name`` when ``old`` (already
    registered, or None) is another definition."""
    if old is not None and not same_definition(old, new):
        raise DuplicateNameError(f"{kind} {name!r} is already registered by {where(old)}; "
                                 f"{where(new)} cannot register it again (choose another name)")


def _builtin_prior_names() -> set[str]:
    from .priors import checkpoint  # noqa: PLC0415  (torch; only when a plugin registers a prior)

    return set(getattr(checkpoint, "_ARCHS", {}))


def register_prior(name: str, cls=None, keys=(), description: str = ""):
    """Register a GAN prior architecture (:class:`PriorArchitecture`) under
    ``name``; use directly (``register_prior("stylegan_tiny", Gen, ("nz",))``)
    or as a class decorator.  A name that is taken is refused.
    :func:`ganrestore.priors.checkpoint.build_network` (so ``load_prior``)
    builds a checkpoint whose sidecar names it, with the same shape checks
    against the weights file as for the built-in architectures."""
    def deco(c):
        if not isinstance(name, str) or not name:
            raise ValueError(f"prior architecture name must be a non-empty string, got {name!r}")
        if name in _builtin_prior_names():
            raise DuplicateNameError(f"prior architecture {name!r} is built in; {where(c)} cannot register it "
                                     "(choose another name)")
        old = PRIORS.get(name)
        check_free("prior architecture", name, old.cls if old else None, c)
        PRIORS[name] = PriorArchitecture(name, c, tuple(keys),
                                         description or (c.__doc__ or "").strip().split("\n")[0])
        return c

    return deco(cls) if cls is not None else deco


def prior_architecture(name: str) -> PriorArchitecture | None:
    """The plugin prior architecture ``name`` (loading installed plugins first), or None."""
    ensure_loaded()
    return PRIORS.get(name)


def register_source(name: str, n_images: Callable, schema: dict | None = None, description: str = ""):
    """Decorator: register ``build(cfg, image_size)`` as the data source ``name``
    (:class:`DataSource`).  A name that is taken (``demo``, ``celeba``, ...) is
    refused; ``schema`` must be a valid JSON Schema.

    A config selects it with ``data.source: <name>`` and configures it under
    ``data.<name>`` (validated by ``schema``): the workflow's ``prepare_plugin``
    rule (rules/data_plugin.smk) calls :func:`prepare_source`, and the number
    of test images comes from ``n_images``."""
    def deco(build):
        if not isinstance(name, str) or not _MODULE_NAME.fullmatch(name) or "." in name:
            raise ValueError(f"data source name must be an identifier, got {name!r}")
        if name in BUILTIN_SOURCES:
            raise DuplicateNameError(f"data source {name!r} is built in; {where(build)} cannot register it "
                                     "(choose another name)")
        old = SOURCES.get(name)
        check_free("data source", name, old.build if old else None, build)
        if schema is not None:
            check_schema(schema, f"data source {name!r}")
        SOURCES[name] = DataSource(name, build, n_images, copy.deepcopy(schema),
                                   description or (build.__doc__ or "").strip().split("\n")[0])
        return build

    return deco


def get_source(name: str) -> DataSource:
    ensure_loaded()
    if name not in SOURCES:
        raise KeyError(f"unknown plugin data source {name!r}; registered: {sorted(SOURCES)}")
    return SOURCES[name]


def build_source(name: str, cfg: dict, image_size: int) -> dict:
    """Build the data source ``name`` and check what it returns against the contract."""
    import numpy as np  # noqa: PLC0415

    src = get_source(name)
    if src.schema is not None:
        import jsonschema  # noqa: PLC0415

        jsonschema.validate(cfg, src.schema)
    out = src.build(dict(cfg), int(image_size))
    for split in ("test", "val"):
        part = out.get(split)
        if part is None:
            raise ValueError(f"data source {name!r}: no {split!r} split")
        images, ids = np.asarray(part["images"]), [str(i) for i in part["ids"]]
        want = (image_size, image_size, 3)
        if images.dtype != np.uint8 or images.ndim != 4 or (len(images) and images.shape[1:] != want):
            raise ValueError(f"data source {name!r}: {split} images must be uint8 (N, {image_size}, "
                             f"{image_size}, 3), got {images.dtype} {images.shape}")
        if len(ids) != len(images) or len(set(ids)) != len(ids):
            raise ValueError(f"data source {name!r}: {split} needs one unique id per image "
                             f"({len(ids)} ids, {len(set(ids))} unique, {len(images)} images)")
        expected = src.n_images(dict(cfg), split)
        if expected is not None and expected != len(images):
            raise ValueError(f"data source {name!r}: n_images says {expected} {split} images, build gave "
                             f"{len(images)}")
    out.setdefault("manifest", [])
    return out


# -- method parameter schemas -------------------------------------------------------

def check_schema(schema, what: str) -> None:
    """``schema`` is a valid JSON Schema (draft 2020-12) of an object."""
    import jsonschema  # noqa: PLC0415

    if not isinstance(schema, dict):
        raise ValueError(f"{what}: schema must be a dict (a JSON Schema), got {type(schema).__name__}")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ValueError(f"{what}: invalid schema: {e.message}") from None
    if schema.get("type", "object") != "object":
        raise ValueError(f"{what}: schema must describe an object (type: object), got type {schema['type']!r}")


def method_schema(info) -> dict:
    """The ``method_params.<name>`` schema node of a method registered with
    ``schema=`` (a JSON Schema of an object: its ``properties`` are the method's
    keys, each ideally with a ``default`` and a ``description``): the plugin's
    schema, with ``type: object``, ``default: {}``, ``additionalProperties:
    false`` (unknown keys are errors, as for built-in methods) and a ``per_task``
    key added unless it sets them.  Without a schema the method takes no
    parameters."""
    node = copy.deepcopy(info.schema) if info.schema is not None else {}
    node.setdefault("type", "object")
    node.setdefault("additionalProperties", False)
    node.setdefault("default", {})
    node.setdefault("description", f"{info.description} (plugin method, {where(info.fn)})".lstrip())
    props = node.setdefault("properties", {})
    props.setdefault("per_task", {"type": "object", "default": {}, "description": "Overrides per task name."})
    return node


def config_schema(schema: dict, config: dict) -> dict:
    """The config schema of ``config``: ``schema`` (config/schema.yaml) plus, under
    ``method_params``, the schema of every registered method the config names
    (in ``methods`` or ``method_params``) that the file does not describe.
    Only named plugin methods join, so an installed plugin changes the effective
    config of no experiment that does not use it."""
    from .methods import REGISTRY, available  # noqa: PLC0415

    known = set(available())
    params = schema.get("properties", {}).get("method_params", {}).get("properties", {})
    named = list(config.get("methods") or []) if isinstance(config.get("methods"), list) else []
    if isinstance(config.get("method_params"), dict):
        named += list(config["method_params"])
    extra = [m for m in dict.fromkeys(named) if isinstance(m, str) and m in known and m not in params]
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    source = data.get("source")
    plugin_source = isinstance(source, str) and source not in BUILTIN_SOURCES and source in SOURCES
    if not extra and not plugin_source:
        return schema
    out = copy.deepcopy(schema)
    node = out["properties"]["method_params"].setdefault("properties", {})
    for m in extra:
        node[m] = method_schema(REGISTRY[m])
    if plugin_source:
        # the named plugin source joins data.source's choices, its block data.<name> its schema
        dnode = out["properties"]["data"]["properties"]
        dnode["source"]["enum"] = list(dnode["source"]["enum"]) + [source]
        sub = copy.deepcopy(SOURCES[source].schema) if SOURCES[source].schema else {"type": "object"}
        sub.setdefault("default", {})
        dnode[source] = sub
    return out


def prepare_source(name: str, cfg: dict, image_size: int, out_test, out_val, out_manifest) -> dict:
    """The workflow's prepare step for a plugin data source: :func:`build_source`,
    then the same artifacts as every built-in source (``{test,val}.npz`` and the
    manifest, written atomically)."""
    from .pipeline import write_manifest, write_split  # noqa: PLC0415

    out = build_source(name, cfg, image_size)
    meta = {"stage": "prepare", "source": name, "plugin": where(SOURCES[name].build), "config": cfg,
            "image_size": int(image_size)}
    for split, path in (("test", out_test), ("val", out_val)):
        write_split(path, out[split]["images"], out[split]["ids"], {**meta, "split": split})
    write_manifest(out_manifest, out["manifest"] or [{"source": name, "split": sp, "id": i}
                                                    for sp in ("test", "val") for i in out[sp]["ids"]])
    return {sp: len(out[sp]["ids"]) for sp in ("test", "val")}


@contextlib.contextmanager
def schema_file(schema: dict, path: str, base: dict | None = None):
    """Yield ``path`` when ``schema`` is ``base`` (the file's own content), else
    the path of a temporary YAML file holding ``schema`` (removed afterwards):
    for :func:`snakemake.utils.validate`, which takes a path."""
    if base is not None and schema is base:
        yield path
        return
    import yaml  # noqa: PLC0415

    fd, tmp = tempfile.mkstemp(prefix="ganrestore-schema-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(schema, f, sort_keys=False)
        yield tmp
    finally:
        os.unlink(tmp)


# -- loading ---------------------------------------------------------------------------

_LOADED: dict[str, str] = {}        # plugin spec -> module name
_EP_STATE: dict = {"done": False, "error": None, "names": []}


def _innermost(tb, prefer: str | None) -> str:
    """`` (file, line N)`` of the deepest traceback frame in ``prefer`` (the
    plugin's file or folder); empty when none is."""
    if not prefer:
        return ""
    inside = [f for f in traceback.extract_tb(tb) if f.filename.startswith(prefer)]
    return f" ({inside[-1].filename}, line {inside[-1].lineno})" if inside else ""


def _fail(label: str, e: BaseException, prefer: str | None = None, module: str | None = None) -> PluginError:
    hint = ""
    if isinstance(e, ModuleNotFoundError) and module and e.name and module.startswith(e.name):
        hint = "; install it, put its folder on PYTHONPATH, or name its .py file instead"
    return PluginError(f"plugin {label} failed to load: {type(e).__name__}: {e}"
                       f"{_innermost(e.__traceback__, prefer)}{hint}")


def _entry_points():
    eps = []
    for kind, group in GROUPS.items():
        seen = set()
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda ep: (ep.name, ep.value)):
            if (ep.name, ep.value) not in seen:
                seen.add((ep.name, ep.value))
                eps.append((kind, group, ep))
    return eps


def load_entry_points() -> list[str]:
    """Import every installed plugin entry point (once per process; a failure is
    raised again on every later call).  Returns ``group:name`` of each."""
    if _EP_STATE["error"] is not None:
        raise _EP_STATE["error"]
    if _EP_STATE["done"]:
        return list(_EP_STATE["names"])
    _EP_STATE["done"] = True          # a plugin that consults the registry while importing must not recurse
    names = _EP_STATE["names"] = []
    for kind, group, ep in _entry_points():
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
        label = f"{ep.name!r} (entry point {ep.name} = {ep.value} in group {group}, from {origin})"
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001  (every failure names the plugin)
            err = _fail(label, e, _module_dir(ep.value.split(":")[0]))
            _EP_STATE["error"] = err
            raise err from e
        names.append(f"{group}:{ep.name}")
    return names


def _module_dir(module: str) -> str | None:
    """Where a plugin's code lives: its top-level package's folder, or its one
    file (so that error locations never point into other installed code)."""
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.has_location:
        return None
    return str(Path(spec.origin).parent) + os.sep if spec.submodule_search_locations else spec.origin


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec


def _import_file(path: Path) -> str:
    name = path.stem
    if name == "__init__":
        raise ValueError(f"{path}: name the package (its module name, on PYTHONPATH) instead of its __init__.py")
    if not _MODULE_NAME.fullmatch(name):
        raise ValueError(f"{path.name}: the file name must be a Python identifier (it names the module)")
    mod = sys.modules.get(name)
    if mod is not None:
        if Path(getattr(mod, "__file__", "") or "").resolve() == path:
            return name
        raise ValueError(f"a module named {name!r} is already imported from {getattr(mod, '__file__', '?')}; "
                         "rename the file")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return name


def _normalise(modules, base_dir=None) -> list[str]:
    """Module names as given; ``.py`` paths made absolute (a relative one against
    ``base_dir``, default the working directory)."""
    if modules is None:
        return []
    if isinstance(modules, str) or not isinstance(modules, (list, tuple)):
        raise PluginError(f"plugins: must be a list of module names or .py paths, got {modules!r}")
    out = []
    for m in modules:
        if not isinstance(m, str) or not m.strip():
            raise PluginError(f"plugins: {m!r} is not a module name or a .py path")
        m = m.strip()
        if _is_path(m):
            p = Path(m).expanduser()
            if not p.is_absolute() and base_dir is not None:
                p = Path(base_dir) / p
            m = str(p.resolve())
        elif not _MODULE_NAME.fullmatch(m):
            raise PluginError(f"plugins: {m!r} is not a module name (e.g. my_package.methods) or a .py path")
        out.append(m)
    return out


def _registered() -> set:
    """Every (kind, name, definition) registered now."""
    from .methods import REGISTRY  # noqa: PLC0415

    return ({("method", k, id(v.fn)) for k, v in REGISTRY.items()}
            | {("prior", k, id(v.cls)) for k, v in PRIORS.items()}
            | {("source", k, id(v.build)) for k, v in SOURCES.items()})


def _defined_in(module: str) -> bool:
    """Whether a registered method, prior or source is defined in ``module`` (or below it)."""
    from .methods import REGISTRY  # noqa: PLC0415

    objs = [v.fn for v in REGISTRY.values()] + [v.cls for v in PRIORS.values()] + \
        [v.build for v in SOURCES.values()]
    mods = {getattr(o, "__module__", "") or "" for o in objs}
    return any(m == module or m.startswith(module + ".") for m in mods)


def _site_module(module: str) -> str | None:
    """The file of an installed (site-packages / dist-packages) module, else None."""
    mod = sys.modules.get(module)
    f = getattr(mod, "__file__", None) or ""
    parts = Path(f).parts
    return f if ("site-packages" in parts or "dist-packages" in parts) else None


def _stdlib(module: str) -> bool:
    return module.split(".")[0] in getattr(sys, "stdlib_module_names", ())


def load_modules(modules, base_dir=None, announce=None) -> list[str]:
    """Import the plugin modules ``modules`` (module names or ``.py`` paths, a
    relative path against ``base_dir``), each once per process.  Returns their
    module names.  A standard-library module is refused before it is imported;
    an installed (site-packages) module that registers nothing is refused after.
    ``announce(text)`` is told where each plugin was loaded from."""
    names = []
    for m in _normalise(modules, base_dir):
        if m in _LOADED:
            names.append(_LOADED[m])
            continue
        label = f"{m!r} (named in the config's plugins)"
        if not _is_path(m) and _stdlib(m):
            raise PluginError(f"plugins: {m!r} is a standard-library module, not a plugin (it would be "
                              "imported, and run, on every Snakemake call): name your plugin's module or "
                              ".py file")
        before = _registered()
        try:
            if _is_path(m):
                if not Path(m).is_file():
                    raise FileNotFoundError(f"no such file {m}")
                name = _import_file(Path(m))
            else:
                importlib.import_module(m)
                name = m
        except Exception as e:  # noqa: BLE001  (every failure names the plugin)
            raise _fail(label, e, prefer=str(Path(m)) if _is_path(m) else _module_dir(m),
                        module=None if _is_path(m) else m) from e
        registers = _registered() != before or _defined_in(name)
        site = None if _is_path(m) else _site_module(name)
        if not registers and site:
            raise PluginError(f"plugins: {m!r} is the installed module {site}, which registers no method, "
                              "prior or data source: not a plugin (a plugin registers what it provides when "
                              "imported, see ganrestore.plugins)")
        _LOADED[m] = name
        names.append(name)
        if announce is not None:
            where = m if _is_path(m) else (getattr(sys.modules.get(name), "__file__", None) or "?")
            announce(f"plugin {name} loaded from {where}" + ("" if registers else " (it registers nothing)"))
    return names


def load(modules=None, export: bool = False, base_dir=None, announce=None) -> list[str]:
    """Load every plugin: the built-in methods first (so that a plugin cannot take
    their names), then the installed entry points, then ``modules`` (the config's
    ``plugins``; a relative ``.py`` path against ``base_dir``, the config file's
    folder in the workflow).  With ``export``, set ``$GANRESTORE_PLUGINS`` to
    ``modules`` (paths made absolute) so that processes started from here (the
    workflow's jobs) load the same ones.  ``announce``: see :func:`load_modules`.
    Raises :class:`PluginError` naming the plugin that failed."""
    from .methods import load_builtins  # noqa: PLC0415

    load_builtins()
    specs = _normalise(modules, base_dir)
    loaded = load_entry_points() + load_modules(specs, announce=announce)
    if export:
        os.environ[ENV] = os.pathsep.join(specs)
    return loaded


def ensure_loaded() -> None:
    """Load the installed entry points and the modules of ``$GANRESTORE_PLUGINS``
    (what a workflow job needs to find the methods its config names); cheap
    after the first call.  Called by every registry lookup."""
    load_entry_points()
    env = os.environ.get(ENV, "")
    if env:
        load_modules([m for m in env.split(os.pathsep) if m])


def loaded() -> dict:
    """What is loaded: entry points per group and config-named modules."""
    return {"entry_points": list(_EP_STATE["names"]), "modules": dict(_LOADED), "priors": sorted(PRIORS),
            "sources": sorted(SOURCES)}


__all__ = ["GROUPS", "ENV", "PluginError", "DuplicateNameError", "PriorArchitecture", "DataSource", "PRIORS",
           "SOURCES", "register_prior", "prior_architecture", "register_source", "get_source", "build_source",
           "method_schema", "config_schema", "schema_file", "load", "load_modules", "load_entry_points",
           "ensure_loaded", "loaded", "check_free", "same_definition"]
