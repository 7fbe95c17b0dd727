# Real datasets: CelebA, CelebA-HQ and any folder of face photographs.
#
# Each writes the same artifacts as the demo rule (rules/data.smk):
# results/<name>/data/{test,val}.npz (uint8 images + ids) and manifest.csv, so
# everything downstream is unchanged.  Only the rule of the configured
# data.source is defined; `ruleorder` lets it win over prepare_demo, which can
# produce the same paths.


include: "common_data_celeba.smk"


_DATA_SOURCE = config["data"]["source"]

N_IMAGES["celeba"] = lambda split: {
    "test": config["data"]["celeba"]["n_test"],
    "val": config["data"]["celeba"]["n_val"],
}.get(split)
N_IMAGES["celebahq"] = lambda split: {
    "test": config["data"]["celebahq"]["n_test"],
    "val": config["data"]["celebahq"]["n_val"],
}.get(split)
N_IMAGES["folder"] = lambda split: {
    "test": config["data"]["folder"]["n_test"],
    "val": config["data"]["folder"]["n_val"],
}.get(split)


if _DATA_SOURCE == "celeba":
    try:
        from ganrestore.data.celeba import get_protocol as _celeba_protocol

        _celeba_protocol(config["data"]["celeba"]["protocol"], config["image_size"])
    except ValueError as e:
        _config_error(f"data.celeba.protocol: {e}")

    ruleorder: prepare_celeba > prepare_demo

    rule prepare_celeba:
        """CelebA aligned & cropped: fetch (or take the user's copy), md5-verify,
        crop with the configured protocol; first n_test images of the official
        test partition."""
        output:
            **_data_outputs(config["data"]["celeba"]["n_train"] != 0),
        log:
            f"{results_dir()}/logs/prepare_celeba.log",
        benchmark:
            f"{results_dir()}/benchmarks/prepare_celeba.tsv"
        conda:
            "../envs/eval.yaml"
        threads: 1
        params:
            source="celeba",
            cfg=config["data"]["celeba"],
            image_size=config["image_size"],
        script:
            "../scripts/prepare_celeba.py"


if _DATA_SOURCE == "celebahq":

    ruleorder: prepare_celebahq > prepare_demo

    rule prepare_celebahq:
        """CelebA-HQ from the user's 1024x1024 images, downscaled to image_size."""
        output:
            **_data_outputs(),
        log:
            f"{results_dir()}/logs/prepare_celebahq.log",
        benchmark:
            f"{results_dir()}/benchmarks/prepare_celebahq.tsv"
        conda:
            "../envs/eval.yaml"
        threads: 1
        params:
            source="celebahq",
            cfg=config["data"]["celebahq"],
            image_size=config["image_size"],
        script:
            "../scripts/prepare_celeba.py"


if _DATA_SOURCE == "folder":

    ruleorder: prepare_folder > prepare_demo

    rule prepare_folder:
        """Any folder of face photographs: detect, align, crop (same code as the demo)."""
        output:
            **_data_outputs(),
        log:
            f"{results_dir()}/logs/prepare_folder.log",
        benchmark:
            f"{results_dir()}/benchmarks/prepare_folder.tsv"
        conda:
            "../envs/eval.yaml"
        threads: 1
        params:
            cfg=config["data"]["folder"],
            image_size=config["image_size"],
        script:
            "../scripts/prepare_folder.py"
