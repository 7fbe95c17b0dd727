# Functions of the LPIPS rules (rules/lpips.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.


def lpips_input(wildcards):
    """``{'lpips': weights}`` when LPIPS can be computed, else nothing."""
    return (
        {"lpips": LPIPS_WEIGHTS}
        if LPIPS_SOURCE or os.path.exists(LPIPS_WEIGHTS)
        else {}
    )
