"""Run the workflow from Python (a notebook, a script) through Snakemake's API.

>>> import ganrestore
>>> res = ganrestore.run("config/yeh2018.yaml", cores=4)      # doctest: +SKIP
>>> res.summary                                                # pandas DataFrame  # doctest: +SKIP
>>> res.figures, res.tables, res.report                        # doctest: +SKIP

:func:`run` is ``snakemake --cores N --configfile FILE [TARGETS]`` run in this
process: the same Snakefile, the same configuration handling (the file plus the
schema's defaults; no file = the demo, config/config.yaml), the same validation
and the same error messages, the settings of ``profiles/default`` (incomplete
outputs are rerun, failed jobs' logs are shown).  Jobs run as they do from the
command line (script jobs in their own processes, short ones forked from the
local job server); results go to ``<workdir>/results/<name>/``.  When the
workflow stops, :class:`RunError` carries what the command line prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: the workflow checkout this package belongs to (an editable install or a checkout on sys.path)
WORKFLOW_DIR = Path(__file__).resolve().parents[1]


class RunError(RuntimeError):
    """The workflow stopped (bad config, a plugin that failed, a failed job).
    ``str()`` is the message the command line prints; ``cause`` the exception."""

    def __init__(self, message: str, cause: BaseException | None = None):
        super().__init__(message)
        self.cause = cause


@dataclass
class RunResult:
    """What a run produced: the summary table and where everything else is."""

    name: str
    results_dir: Path
    summary: object = None               # pandas.DataFrame of tables/summary.csv (None if not built)
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    report: Path | None = None
    config: dict | None = None           # the effective config (results/<name>/config.yaml)


def _workflow_dir(workflow) -> Path:
    d = Path(workflow).resolve() if workflow is not None else WORKFLOW_DIR
    if not (d / "Snakefile").is_file():
        raise RunError(f"no Snakefile in {d}: ganrestore.run needs the workflow's checkout "
                       "(install ganrestore with 'pip install -e <checkout>' or pass workflow=<checkout>)")
    return d


def experiment_name(configfile, overrides: dict | None, workflow_dir: Path) -> str:
    """The experiment's name as the workflow derives it: ``--config name=...``,
    else the file's ``name`` (no file: the demo's), else the schema's default."""
    if overrides and "name" in overrides:
        return str(overrides["name"])
    path = Path(configfile) if configfile is not None else workflow_dir / "config" / "config.yaml"
    try:
        own = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        own = {}                         # the workflow reports an unreadable file itself
    if isinstance(own, dict) and own.get("name") is not None:
        return str(own["name"])
    schema = yaml.safe_load((workflow_dir / "config" / "schema.yaml").read_text())
    return str(schema["properties"]["name"]["default"])


def _message(api, e: BaseException) -> str:
    """What the command line prints for ``e`` (Snakefile line numbers mapped; a
    refused config's SystemExit: its message, as Python prints it)."""
    from snakemake.exceptions import format_exception_to_string

    if isinstance(e, SystemExit):
        return str(e.code) if e.code is not None else "SystemExit"

    linemaps = None
    store = getattr(getattr(api, "_workflow_api", None), "_workflow_store", None)
    if store is not None:
        linemaps = getattr(store, "linemaps", None)
    try:
        return format_exception_to_string(e, linemaps)
    except Exception:  # noqa: BLE001  (never hide the error behind a formatting failure)
        return f"{type(e).__name__}: {e}"


def collect(workdir: Path, name: str, report: Path | None = None) -> RunResult:
    """The :class:`RunResult` of the experiment ``name`` under ``workdir``."""
    rdir = Path(workdir) / "results" / name
    summary = None
    if (rdir / "tables" / "summary.csv").is_file():
        import pandas as pd

        summary = pd.read_csv(rdir / "tables" / "summary.csv")
    cfg = None
    if (rdir / "config.yaml").is_file():
        cfg = yaml.safe_load((rdir / "config.yaml").read_text())
    files = (lambda sub: sorted(p for p in (rdir / sub).glob("*") if p.is_file()) if (rdir / sub).is_dir() else [])
    if report is None and (rdir / "report.html").is_file():
        report = rdir / "report.html"
    return RunResult(name=name, results_dir=rdir, summary=summary, tables=files("tables"),
                     figures=files("figures"), report=report, config=cfg)


def run(configfile=None, *, cores: int = 1, targets=None, config: dict | None = None, workdir=None,
        workflow=None, report: bool = False, forceall: bool = False, keep_going: bool = False,
        quiet: bool = False) -> RunResult:
    """Run the workflow like ``snakemake --cores CORES --configfile CONFIGFILE TARGETS``
    and return the summary table and the paths of the tables, figures and report.

    ``configfile``: the experiment's config (relative to the current directory;
    None = the demo).  ``targets``: files or rule names (default: everything,
    rule ``all``).  ``config``: overrides, as ``--config key=value``.
    ``workdir``: where ``results/`` goes (default: the workflow's checkout, as
    when running ``snakemake`` there).  ``workflow``: the checkout holding the
    Snakefile (default: the one this package is imported from).  ``report``:
    also write Snakemake's HTML report to ``results/<name>/report.html``.
    ``quiet``: no progress output.  Raises :class:`RunError` with the command
    line's message when the config is refused or a job fails."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, DAGSettings, ExecutionSettings, OutputSettings,
                                          Quietness, ResourceSettings, StorageSettings)

    wf_dir = _workflow_dir(workflow)
    cwd = Path.cwd()
    workdir = (cwd / workdir).resolve() if workdir is not None else wf_dir
    configfiles = [(cwd / configfile).resolve()] if configfile is not None else []
    if configfiles and not configfiles[0].is_file():
        raise RunError(f"configfile {configfile} not found")
    name = experiment_name(configfiles[0] if configfiles else None, config, wf_dir)
    report_path = None
    out = OutputSettings(printshellcmds=True, show_failed_logs=True,
                         quiet={Quietness.ALL} if quiet else None)
    try:
        with SnakemakeApi(out) as api:
            try:
                wf = api.workflow(resource_settings=ResourceSettings(cores=int(cores)),
                                  config_settings=ConfigSettings(config=dict(config or {}),
                                                                 configfiles=configfiles),
                                  storage_settings=StorageSettings(), workdir=workdir,
                                  snakefile=wf_dir / "Snakefile")
                dag = wf.dag(DAGSettings(targets=frozenset(targets or ()), force_incomplete=True,
                                         forceall=forceall))
                dag.execute_workflow(executor="local",
                                     execution_settings=ExecutionSettings(keep_going=keep_going))
                if report:
                    report_path = _write_report(dag, workdir / "results" / name)
            except RunError:
                raise
            except BaseException as e:  # noqa: BLE001  (whatever stops the workflow, as the CLI says it)
                if isinstance(e, KeyboardInterrupt):
                    raise
                raise RunError(_message(api, e), e) from e
    finally:
        os.chdir(cwd)
    return collect(workdir, name, report_path)


def _write_report(dag, rdir: Path) -> Path:
    """Snakemake's HTML report, written to a temporary file and renamed."""
    from snakemake.report.html_reporter import ReportSettings

    rdir.mkdir(parents=True, exist_ok=True)
    tmp, final = rdir / ".report.partial.html", rdir / "report.html"
    try:
        dag.create_report(reporter="html", report_settings=ReportSettings(path=tmp))
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


__all__ = ["run", "RunResult", "RunError", "collect", "experiment_name", "WORKFLOW_DIR"]
