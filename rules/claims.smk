# The papers' checkable claims (Yeh et al. 2018; IAGAN), each held / not held /
# inconclusive / not run, tested on this run's per-image metrics with paired
# bootstrap intervals (ganrestore/claims.py).  Uses the report rules' helpers
# (rules/common_report.smk) and PAPER_DATASET (rules/report.smk): include this
# file after report.smk.


rule claims:
    """One row per claim of seeds 000/001 and 003: source, statement, scope,
    this run's estimates with their 95% intervals over the real test photos, and
    held / not held / inconclusive at n / not run (Markdown, CSV, HTML)."""
    input:
        csvs=[metrics_csv(t, m) for t, m in evaluated_pairs()],
        papers=[
            f"{PAPER_TABLES_DIR}/{name}.csv"
            for name in (
                "yeh2018_table",
                "iagan_tables",
                "iagan_runtime",
                "iagan_iterations",
            )
        ],
    output:
        md=f"{results_dir()}/tables/claims.md",
        csv=f"{results_dir()}/tables/claims.csv",
        html=report(
            f"{results_dir()}/tables/claims.html",
            caption="../report/claims.rst",
            category="Tables",
            subcategory="The papers' claims",
            labels={"table": "claims"},
        ),
    log:
        f"{results_dir()}/logs/report/claims.log",
    benchmark:
        f"{results_dir()}/benchmarks/report/claims.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        info=report_params(),
        pairs=pairs(),
        dataset=PAPER_DATASET,
        task_info={t: {"noisy": TASKS[t].noisy, "sigma": TASKS[t].sigma} for t in TASKS},
        profile=run_profile(),
    script:
        "../scripts/claims.py"


EXTRA_FINAL_OUTPUTS += list(rules.claims.output)
