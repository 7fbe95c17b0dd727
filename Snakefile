# ganrestore: GAN-prior image restoration, from data to the papers' tables.
#
#   data -> corrupt -> restore -> evaluate -> tables / report
#
# Default config: the offline embedded demo (config/config.yaml).
# Other experiments: snakemake --configfile config/<paper>.yaml --cores N
#
# There is deliberately no `configfile:` directive: Snakemake would merge any
# --configfile key by key into it, so a paper config would inherit the demo's
# settings.  rules/common.smk loads the demo only when no --configfile is given.


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/data_celeba.smk"
include: "rules/data_plugin.smk"
include: "rules/corrupt.smk"
include: "rules/priors.smk"
include: "rules/classical.smk"
include: "rules/restore.smk"
include: "rules/lpips.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/cgan.smk"
include: "rules/claims.smk"


rule all:
    default_target: True
    input:
        get_final_output(),


onstart:
    print(f"ganrestore: experiment '{config['name']}', results in {results_dir()}/")
    check_results_writable()
    start_job_server()


onsuccess:
    stop_job_server()
    print(f"ganrestore: done, total wall time {time.time() - START_TIME:.1f} s")


onerror:
    stop_job_server()
    print(
        f"ganrestore: FAILED after {time.time() - START_TIME:.1f} s (see the logs above)"
    )
