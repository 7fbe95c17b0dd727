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

* The config is bounded before anything reads it (:func:`check_bounds`): at
  most :data:`MAX_CONFIG_VALUES` values once YAML anchors are expanded (a
  "billion laughs" file of a few hundred bytes is refused in linear work,
  counting shared nodes once), strings and keys of at most :data:`MAX_STRING`
  characters, :data:`MAX_CONFIG_DEPTH` levels; every number finite (``.inf``
  and ``.nan`` pass JSON Schema's ``minimum`` / ``maximum``).
* Schema errors name the key the user wrote (``data.celeba.md5.x.zip``), not
  the schema's path (:func:`schema_error_message`).

Every error is a :class:`ConfigError` whose message starts with the dotted key;
the workflow prints it as one block (:func:`config_error_text`) and stops before
Snakemake formats a traceback.

A config is trusted input: it names the plugin modules the workflow imports
(their code runs on every Snakemake invocation, dry runs included) and the
files it reads and writes, like the Snakefile itself.  These checks catch
mistakes and keep planning bounded; they are not a sandbox.
"""

from __future__ import annotations

import copy
import math

RESERVED_NAMES = {"cache", "downloads"}
#: Longest experiment name: it names results/<name>/ (NAME_MAX is 255 bytes; the
#: name also goes into file names of the report).
MAX_NAME = 100
#: Most values (mapping entries, list items, scalars) a config may hold once its
#: YAML anchors / aliases are expanded (the demo config holds about 500).
MAX_CONFIG_VALUES = 100_000
#: Longest string (value or key) in a config.
MAX_STRING = 4096
#: Deepest nesting of a config.
MAX_CONFIG_DEPTH = 32
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

    if isinstance(name, str) and len(name) > MAX_NAME:
        raise ConfigError(f"name: {len(name)} characters, at most {MAX_NAME} (it names results/<name>/ "
                          f"and files under it): {name[:40]!r}...")
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

    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    celeba = data.get("celeba") if isinstance(data.get("celeba"), dict) else {}
    md5 = celeba.get("md5") if isinstance(celeba.get("md5"), dict) else {}
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


#: Images per partition of CelebA's list_eval_partition.txt (0 train, 1 val, 2 test).
CELEBA_PARTITION = {"n_train": 162_770, "n_val": 19_867, "n_test": 19_962}
#: Images of CelebA-HQ (Karras et al. 2018: 30,000; no official partition).
CELEBAHQ_IMAGES = 30_000
#: Most images per split of any source whose size is not known before it is read
#: (folder; every split is one artifact and a job per shard, planned up front).
MAX_SPLIT_IMAGES = 100_000


def check_counts(config: dict) -> None:
    """Image counts within what the configured source can deliver, naming the key
    and the limit (a count of 10^9 would otherwise be planned as that many
    shards).  The demo source's counts are checked by ganrestore.data.demo."""
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    source = data.get("source")
    block = data.get(source) if isinstance(data.get(source), dict) else {}

    def n(key):
        v = block.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    if source == "celeba":
        for key in ("n_test", "n_val", "n_train"):
            extra = n("offset") if key == "n_test" else 0
            if n(key) + extra > CELEBA_PARTITION[key]:
                raise ConfigError(
                    f"data.celeba.{key}: {n(key)}" + (f" after offset {extra}" if extra else "")
                    + f" is more than the {CELEBA_PARTITION[key]} images of CelebA's "
                    f"{key[2:]} partition")
    elif source == "celebahq":
        if n("offset") + n("n_test") + n("n_val") > CELEBAHQ_IMAGES:
            raise ConfigError(f"data.celebahq.n_test: offset {n('offset')} + n_test {n('n_test')} + n_val "
                              f"{n('n_val')} is more than the {CELEBAHQ_IMAGES} images of CelebA-HQ")
    elif source == "folder":
        for key in ("n_test", "n_val"):
            if n(key) > MAX_SPLIT_IMAGES:
                raise ConfigError(f"data.folder.{key}: {n(key)} is more than {MAX_SPLIT_IMAGES} images, "
                                  "the most a split may hold")


def check_config(config: dict, schema: dict) -> list[str]:
    """Everything above but the per-pair checks; returns notes (not errors)."""
    check_name(config.get("name"))
    check_integers(config, schema)
    check_counts(config)
    notes = check_per_task(config, schema)
    check_md5_names(config)
    check_blocks(config)
    return notes + check_method_tasks(config)


def _key(path: str, k) -> str:
    return f"{path}.{k}" if path else str(k)


def check_bounds(config) -> None:
    """Refuse a config too large to plan, or holding a non-finite number, naming the
    key.  Works on the loaded YAML as it is (anchors are shared objects): each
    distinct mapping / list is visited once, its expanded size computed from its
    children's, so the work is linear in the file however the aliases nest."""
    if not isinstance(config, dict):
        raise ConfigError(f"<config>: must be a mapping of keys, got a {type(config).__name__}")
    sizes: dict[int, int] = {}
    where: dict[int, str] = {}
    # iterative post-order over distinct containers (children first)
    stack = [(config, "", 0, False)]
    while stack:
        node, path, depth, done = stack.pop()
        if isinstance(node, (dict, list)):
            if done:
                items = node.values() if isinstance(node, dict) else node
                sizes[id(node)] = 1 + sum(sizes.get(id(v), 1) if isinstance(v, (dict, list)) else 1
                                          for v in items)
                continue
            if id(node) in where:
                continue
            where[id(node)] = path
            if depth > MAX_CONFIG_DEPTH:
                raise ConfigError(f"{path}: nested deeper than {MAX_CONFIG_DEPTH} levels")
            stack.append((node, path, depth, True))
            if isinstance(node, dict):
                for k, v in node.items():
                    if isinstance(k, str) and len(k) > MAX_STRING:
                        raise ConfigError(f"{_key(path, k[:40])}...: a key of {len(k)} characters, at most "
                                          f"{MAX_STRING}")
                    stack.append((v, _key(path, k), depth + 1, False))
            else:
                stack.extend((v, f"{path}[{i}]", depth + 1, False) for i, v in enumerate(node))
        elif isinstance(node, str):
            if len(node) > MAX_STRING:
                raise ConfigError(f"{path}: a string of {len(node)} characters, at most {MAX_STRING}: "
                                  f"{node[:40]!r}...")
        elif isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(f"{path}: {node!r} is not a finite number (inf and nan are refused)")
    if sizes[id(config)] > MAX_CONFIG_VALUES:
        big = max(config, key=lambda k: sizes.get(id(config[k]), 1))
        n = sizes.get(id(config[big]), 1)
        raise ConfigError(f"{big}: expands to {n} values (YAML anchors / aliases repeated inside each other?); "
                          f"a config holds at most {MAX_CONFIG_VALUES}")


def schema_error_message(error) -> str:
    """One line for a JSON Schema validation error (a ``jsonschema.ValidationError``,
    or Snakemake's ``WorkflowError`` wrapping one): the dotted key the user wrote,
    what is wrong, and for an unknown key the keys allowed there."""
    import jsonschema

    err = error
    if not isinstance(err, jsonschema.ValidationError):
        cands = list(getattr(error, "args", ())) + [error.__cause__, error.__context__]
        err = next((a for a in cands if isinstance(a, jsonschema.ValidationError)), None)
        if err is None:
            text = str(error).strip().splitlines()
            return text[0] if text else type(error).__name__
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted((err.schema.get("properties") or {}))
        extra = [k for k in err.instance if k not in allowed]
        key = _key(path, extra[0]) if extra else path or "<config>"
        if err.schema.get("additionalProperties") is False:
            return (f"{key}: unknown key; allowed under {path or 'the top level'}: "
                    f"{', '.join(allowed) or 'none'}")
    message = err.message if len(err.message) <= 300 else err.message[:300] + "..."
    return f"{path or '<config>'}: {message}"


def config_error_text(message: str, source: str | None = None) -> str:
    """The block the workflow prints for a refused config: the key and what is
    wrong (``message``), then where the config came from.  No traceback."""
    lines = [f"ganrestore: config error: {message}"]
    lines.append("  (in " + (source or "the config") + "; checked before any job: nothing was run; "
                 "config/schema.yaml describes every key)")
    return "\n".join(lines)


__all__ = ["ConfigError", "check_blocks", "check_bounds", "check_config", "check_counts", "check_integers", "check_name", "check_per_task",
           "check_pairs", "config_error_text", "per_task_schema", "schema_error_message", "RESERVED_NAMES"]


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
