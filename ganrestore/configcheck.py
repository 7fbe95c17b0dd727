"""Checks of an experiment's configuration that JSON Schema alone does not make,
run by the workflow before any job (``rules/common.smk``), so that a bad key
stops the run at once with a message naming it.

* ``name`` must be one safe path component that cannot collide with the
  workflow's shared folders under ``results/`` (``cache``, ``downloads``).
* Integer keys must hold integers: JSON Schema counts ``2.0`` as an integer,
  Python's ``range`` does not.
* ``method_params.<m>.per_task.<task>`` blocks are validated against the same
  schema as the method's own keys (no defaults filled in: a block holds
  overrides only), and ``<task>`` must be a configured task.
* Each configured (task, method) pair's merged parameters pass the method's own
  check (:attr:`ganrestore.methods.MethodInfo.check`), e.g. ``constrained`` on
  a noisy task.
* ``data.celeba.md5`` overrides name files of the release.
* ``method_tasks`` names configured methods and tasks.

Every error is a :class:`ConfigError` whose message starts with the dotted key.
"""

from __future__ import annotations

import copy

RESERVED_NAMES = {"cache", "downloads"}
# method keys that one setting serves every task with (not overridable per task)
SHARED_KEYS = {"sparse": {"dictionary"}}


class ConfigError(ValueError):
    """A bad configuration value; the message names the key."""


def _type_names(node: dict) -> list[str]:
    t = node.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def check_integers(value, node: dict, path: str = "") -> None:
    """Integer-typed keys hold Python ints (not ``2.0``, not booleans)."""
    if not isinstance(node, dict):
        return
    types = _type_names(node)
    if "integer" in types and "number" not in types:
        if isinstance(value, bool) or (isinstance(value, float)):
            raise ConfigError(f"{path or '<config>'}: {value!r} is not an integer")
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub is not None:
                check_integers(v, sub, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, v in enumerate(value):
            check_integers(v, node["items"], f"{path}[{i}]")


def check_name(name: str) -> None:
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"name: {name!r} must be one path component of letters, digits, '_', '.', '-' "
                          "starting with a letter or digit (it names results/<name>/)")
    if name.lower() in RESERVED_NAMES:
        raise ConfigError(f"name: {name!r} is reserved (results/{name}/ is shared by every experiment); "
                          "choose another name")


def _without_defaults(node):
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def per_task_schema(schema: dict, method: str) -> dict:
    """The schema of one ``method_params.<method>.per_task.<task>`` block: the
    method's own keys, without ``per_task`` and without defaults."""
    node = copy.deepcopy(schema["properties"]["method_params"]["properties"][method])
    for key in {"per_task"} | SHARED_KEYS.get(method, set()):
        node.get("properties", {}).pop(key, None)
    node = _without_defaults(node)
    node["additionalProperties"] = False
    return node


def check_per_task(config: dict, schema: dict) -> list[str]:
    """Raise on a bad block or a task name that is no task at all (a typo such as
    ``sr_4``); return notes for blocks of valid but unconfigured tasks (a config
    may keep settings for tasks it does not run today)."""
    import jsonschema

    from .tasks import make_task

    notes = []
    tasks = list(config.get("tasks") or [])
    for method, params in (config.get("method_params") or {}).items():
        per_task = (params or {}).get("per_task") or {}
        if not isinstance(per_task, dict):
            raise ConfigError(f"method_params.{method}.per_task: must be a mapping task -> keys")
        node = per_task_schema(schema, method)
        for task, block in per_task.items():
            key = f"method_params.{method}.per_task.{task}"
            if task not in tasks:
                try:
                    make_task(task, int(config.get("image_size", 64)))
                except ValueError as e:
                    raise ConfigError(f"{key}: {task!r} is not a task ({e}); configured tasks: "
                                      f"{', '.join(tasks)}") from None
                notes.append(f"{key} is set but {task!r} is not in tasks")
            if block is None:
                continue
            errors = sorted(jsonschema.Draft202012Validator(node).iter_errors(block), key=lambda e: list(e.path))
            if errors:
                e = errors[0]
                where = ".".join([key] + [str(p) for p in e.path])
                known = ", ".join(sorted(node.get("properties", {}))) or "none"
                raise ConfigError(f"{where}: {e.message} (keys of {method}: {known})")
            check_integers(block, node, key)
    return notes


def check_pairs(config: dict, tasks: dict, merged) -> None:
    """Each (task, method)'s merged parameters pass the method's own check.

    ``tasks``: name -> Task; ``merged(method, task) -> dict``."""
    from .methods import get_method

    for m in config["methods"]:
        info = get_method(m)
        if info.check is None:
            continue
        for t, task in tasks.items():
            if not info.applies_to(task):
                continue
            cfg = merged(m, t)
            try:
                info.check(cfg, task, config)
            except (ValueError, TypeError) as e:
                src = "per_task." + t if t in ((config["method_params"].get(m) or {}).get("per_task") or {}) else ""
                raise ConfigError(f"method_params.{m}{'.' + src if src else ''}: {e}") from None


def check_md5_names(config: dict) -> None:
    from .data.celeba import CELEBA_FILES

    md5 = ((config.get("data") or {}).get("celeba") or {}).get("md5") or {}
    for name in md5:
        if name not in CELEBA_FILES:
            raise ConfigError(f"data.celeba.md5.{name}: not a file of the CelebA release "
                              f"(known: {', '.join(sorted(CELEBA_FILES))})")


def check_method_tasks(config: dict) -> list[str]:
    """``method_tasks`` names methods and tasks that exist (errors, e.g. a typo);
    ones that exist but are not configured give notes (a config derived from
    another may keep them)."""
    from .methods import available
    from .tasks import make_task

    methods, tasks = list(config.get("methods") or []), list(config.get("tasks") or [])
    notes = []
    for m, only in (config.get("method_tasks") or {}).items():
        if m not in methods:
            if m not in available():
                raise ConfigError(f"method_tasks.{m}: {m!r} is not a method; available: {', '.join(available())}")
            notes.append(f"method_tasks.{m} is set but {m!r} is not in methods")
        for t in only or []:
            if t not in tasks:
                try:
                    make_task(t, int(config.get("image_size", 64)))
                except ValueError as e:
                    raise ConfigError(f"method_tasks.{m}: {t!r} is not a task ({e})") from None
                notes.append(f"method_tasks.{m} names {t!r}, which is not in tasks")
    return notes


def check_blocks(config: dict) -> None:
    """``shard_size`` is a multiple of the block of every configured method
    (``microbatch``: ``auto`` = each method's own), so that no shard starts in
    the middle of a block (:func:`ganrestore.methods.run_method`)."""
    from .methods import available, block_size, get_method

    shard = config.get("shard_size")
    if not isinstance(shard, int) or isinstance(shard, bool):
        return                                   # check_integers / the schema say why
    mb = config.get("microbatch", "auto")
    for m in config.get("methods") or []:
        if m not in available():
            continue
        try:
            b = block_size(get_method(m), mb)
        except ValueError as e:
            raise ConfigError(f"microbatch: {e}") from None
        if shard % b:
            why = f"microbatch: {mb}" if mb != "auto" else f"microbatch: auto gives {m!r} blocks of {b}"
            raise ConfigError(f"shard_size: {shard} is not a multiple of the block size of method {m!r} "
                              f"({why}); set shard_size to a multiple of {b} or microbatch to a divisor "
                              f"of {shard}")


def check_config(config: dict, schema: dict) -> list[str]:
    """Everything above but the per-pair checks; returns notes (not errors)."""
    check_name(config.get("name"))
    check_integers(config, schema)
    notes = check_per_task(config, schema)
    check_md5_names(config)
    check_blocks(config)
    return notes + check_method_tasks(config)


__all__ = ["ConfigError", "check_config", "check_blocks", "check_integers", "check_name", "check_per_task", "check_pairs",
           "per_task_schema", "RESERVED_NAMES"]


# -- named profiles of method settings -------------------------------------------

def _profiles() -> dict:
    """method -> profile name -> task family -> settings."""
    from .official import YEH_PROFILES

    return {"yeh": {name: table for name, (table, _sources) in YEH_PROFILES.items()}}


def expand_profiles(config: dict) -> list[str]:
    """Replace ``method_params.<m>.profile`` and ``...per_task.<task>.profile`` by
    the settings they name, written into the per-task blocks, so that the
    effective configuration says every value it runs with (a config means what
    it says).  Precedence, strongest first: a per-task key, the per-task
    profile, a method-level key, the method-level profile, the schema's
    defaults.  Works on the raw config, before defaults; returns notes."""
    from .tasks import make_task

    profiles = _profiles()
    notes = []
    mp = config.get("method_params")
    if not isinstance(mp, dict):
        return notes
    tasks = config.get("tasks") if isinstance(config.get("tasks"), list) else []
    size = config.get("image_size", 64)
    for method, params in mp.items():
        if not isinstance(params, dict):
            continue
        per_task = params.get("per_task") if isinstance(params.get("per_task"), dict) else {}
        top = params.pop("profile", None)
        named = {t: b.get("profile") for t, b in per_task.items() if isinstance(b, dict) and "profile" in b}
        if top is None and not named:
            continue
        known = profiles.get(method, {})
        for where, prof in [(f"method_params.{method}.profile", top)] + \
                [(f"method_params.{method}.per_task.{t}.profile", p) for t, p in named.items()]:
            if prof is not None and prof not in known:
                raise ConfigError(f"{where}: unknown profile {prof!r}; known: {', '.join(sorted(known)) or 'none'}")
        for t in tasks:
            block = dict(per_task.get(t) or {})
            prof = block.pop("profile", None)
            if top is None and prof is None:
                continue
            try:
                fam = make_task(t, int(size) if isinstance(size, int) else 64).family
            except ValueError:
                continue                 # the task check reports it
            vals = {}
            if top is not None:
                if fam not in known[top]:
                    raise ConfigError(f"method_params.{method}.profile: {top!r} has no settings for the {fam} "
                                      f"task {t!r}")
                vals.update({k: v for k, v in known[top][fam].items() if k not in params})
            if prof is not None:
                if fam not in known[prof]:
                    raise ConfigError(f"method_params.{method}.per_task.{t}.profile: {prof!r} has no settings "
                                      f"for the {fam} family")
                vals.update(known[prof][fam])
            vals.update(block)
            per_task[t] = vals
        params["per_task"] = per_task
        notes.append(f"method_params.{method}: profile settings written into per_task "
                     f"(see results/<name>/config.yaml)")
    return notes
