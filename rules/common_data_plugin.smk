# Functions of rules/data_plugin.smk (snakemake --lint: no functions beside rules).

from ganrestore import plugins as _source_plugins


def plugin_source_name():
    """The configured data source when a plugin provides it, else None."""
    src = config["data"]["source"]
    return src if src not in _source_plugins.BUILTIN_SOURCES else None


def plugin_source_n_images(split):
    name = plugin_source_name()
    cfg = dict(config["data"].get(name) or {})
    return _source_plugins.get_source(name).n_images(cfg, split)
