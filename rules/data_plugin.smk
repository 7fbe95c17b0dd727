# Data from a plugin's source (ganrestore.plugins.register_source): selected by
# data.source: <name>, configured under data.<name>.  Writes the same artifacts
# as every built-in source, so everything downstream is unchanged.


include: "common_data_plugin.smk"


if plugin_source_name():

    N_IMAGES[plugin_source_name()] = plugin_source_n_images

    ruleorder: prepare_plugin > prepare_demo

    rule prepare_plugin:
        """A plugin's data source: its build function, checked against the contract."""
        output:
            test=f"{results_dir()}/data/test.npz",
            val=f"{results_dir()}/data/val.npz",
            manifest=f"{results_dir()}/data/manifest.csv",
        log:
            f"{results_dir()}/logs/prepare_plugin.log",
        benchmark:
            f"{results_dir()}/benchmarks/prepare_plugin.tsv"
        conda:
            "../envs/eval.yaml"
        threads: 1
        params:
            name=plugin_source_name(),
            cfg=lambda wc: dict(config["data"].get(plugin_source_name()) or {}),
            image_size=config["image_size"],
        script:
            "../scripts/prepare_plugin.py"
