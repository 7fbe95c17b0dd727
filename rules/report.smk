# Reporting: the papers' tables beside ours, the figures, and what
# `snakemake --report results/report.html` shows (captions in report/*.rst).


include: "common_report.smk"


report: "../report/workflow.rst"


# IAGAN reports CelebA and CelebA-HQ columns; our results fill the columns of
# the dataset they come from (the offline demo is compared with CelebA).
PAPER_DATASET = "celebahq" if config["data"]["source"] == "celebahq" else "celeba"
# Test images shown in the qualitative grid (spread over the split).
QUALITATIVE_IMAGES = 3


PAPER_TABLE_TITLES = {
    "yeh2018": "Yeh et al. 2018",
    "iagan1": "IAGAN Table 1 (compressed sensing, Fourier)",
    "iagan2": "IAGAN Table 2 (super-resolution)",
    "iagan3": "IAGAN Table 3 (noisy super-resolution)",
    "iagan4": "IAGAN Table 4 (deblurring)",
    "iagantext": "IAGAN text (misaligned super-resolution)",
}
# The figures (one job each): the qualitative grid (one panel per task x method,
# the slowest to draw) and the others.
ALL_FIGURES = ["qualitative", "perception_distortion", "psnr_distributions", "traces"]
# IAGAN Fig. 2 (MSE vs m/n) when the run has noiseless Gaussian CS at >= 2 ratios
if len(cs_ratio_tasks(config["tasks"])) >= 2:
    ALL_FIGURES.append("cs_mse")


rule effective_config:
    """The experiment's effective configuration: its file plus the schema's
    defaults (rewritten whenever the configuration changes)."""
    output:
        yaml=f"{results_dir()}/config.yaml",
        html=report(
            f"{results_dir()}/config.html",
            caption="../report/effective_config.rst",
            category="Configuration",
            labels={"file": "effective configuration"},
        ),
    log:
        f"{results_dir()}/logs/report/effective_config.log",
    benchmark:
        f"{results_dir()}/benchmarks/report/effective_config.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        config=plain_config(),
        source=CONFIG_SOURCE,
    script:
        "../scripts/effective_config.py"


rule tables:
    """The papers' tables (Yeh et al.; IAGAN Tables 1-4) with our numbers beside
    them (HTML, Markdown, CSV, LaTeX), and the table of all our results."""
    input:
        aggs=[metrics_json(t, m) for t, m in evaluated_pairs()],
        yeh=f"{PAPER_TABLES_DIR}/yeh2018_table.csv",
        iagan=f"{PAPER_TABLES_DIR}/iagan_tables.csv",
    output:
        **_table_outputs(),
    log:
        f"{results_dir()}/logs/report/tables.log",
    benchmark:
        f"{results_dir()}/benchmarks/report/tables.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        info=report_params(),
        pairs=pairs(),
        dataset=PAPER_DATASET,
        task_sigma={t: TASKS[t].sigma for t in TASKS},
        tables=list(PAPER_TABLE_TITLES),
        colorize=colorize_modes(),
        evaluation=config["evaluation"],
        yeh_profiles={
            t: official_profile_of(mcfg("yeh", t), TASKS[t].family)
            for t in TASKS
            if t.endswith("_official") and "yeh" in config["methods"]
        },
    script:
        "../scripts/paper_tables.py"


# One job per figure (rule figure_<name>), so that the figures are drawn side by
# side at the end of a run instead of one after another.
for _fig in ALL_FIGURES:

    rule:
        name:
            f"figure_{_fig}"
        input:
            data=f"{results_dir()}/data/test.npz",
            corrupt=[f"{results_dir()}/corrupt/{t}/test.npz" for t in config["tasks"]],
            shards=[p for t, m in evaluated_pairs() for p in shard_outputs(t, m)],
            csvs=[metrics_csv(t, m) for t, m in evaluated_pairs()],
            aggs=[metrics_json(t, m) for t, m in evaluated_pairs()],
        output:
            **{
                _fig: report(
                    f"{results_dir()}/figures/{_fig}.png",
                    caption=f"../report/figure_{_fig}.rst",
                    category="Figures",
                    labels={"figure": _fig.replace("_", " ")},
                ),
                f"{_fig}_pdf": f"{results_dir()}/figures/{_fig}.pdf",
            },
        log:
            f"{results_dir()}/logs/report/figure_{_fig}.log",
        benchmark:
            f"{results_dir()}/benchmarks/report/figure_{_fig}.tsv"
        conda:
            "../envs/eval.yaml"
        threads: 1
        params:
            info=report_params(),
            figures=figure_params(),
            pairs=pairs(),
            evaluated=evaluated_pairs(),
            k=QUALITATIVE_IMAGES,
        script:
            "../scripts/figures.py"


EXTRA_FINAL_OUTPUTS += (
    list(rules.effective_config.output)
    + list(rules.tables.output)
    + [f for _f in ALL_FIGURES for f in getattr(rules, f"figure_{_f}").output]
)
