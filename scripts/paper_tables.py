"""Snakemake script: the papers' tables beside ours and the table of all our results.
Thin: the layout lives in ganrestore.tables."""

from pathlib import Path

from ganrestore import tables as T
from ganrestore.io import read_json, write_text_atomic
from ganrestore.logs import script_logging

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    info = sm.params.info
    jsons = [read_json(p, "metrics JSON", "evaluate") for p in sm.input.aggs]
    pairs = [tuple(p) for p in sm.params.pairs]
    # the papers test on real CelebA faces: their tables are compared with our real photos only
    aggs = T.aggregates_frame(T.kind_aggregates(jsons, "real"), pairs)
    in_range = T.kind_aggregates(jsons, "in_range")
    in_frame = T.aggregates_frame(in_range) if in_range else None
    where = (f"Ours: experiment `{info['name']}` ({info['source']} data, {info['n_test']} test images, "
             f"{info['image_size']}px, seed {info['seed']}).")
    legend = ("'not run': no result of ours; 'n/a': the method does not apply to the task; "
              "'not reported': the paper gives no number; 'not computed': the metric was not computed. "
              "†, ‡, ...: our cell's setting (data set, image size, prior, number of test images) differs from "
              "the paper's, as its footnote lists.")
    setting = T.run_setting(info)  # our setting, against which each cell is marked

    yeh, iagan = T.read_paper_csv(sm.input.yeh), T.read_paper_csv(sm.input.iagan)
    for table in sm.params.tables:
        if table == "yeh2018":
            comp = T.yeh_comparison(aggs, yeh, setting=setting, in_range=in_frame)
            metrics, paper = T.YEH_METRICS, yeh
            ev = sm.params.evaluation
            if ev.get("yeh_psnr") == "mean_mse":        # evaluation.yeh_psnr: the slides do not say
                metrics = dict(metrics, psnr=("psnr_of_mean_mse", "PSNR", 2))
            title = "Yeh et al. (ICASSP 2018): SSIM / PSNR"
            psnr_conv = ("the PSNR of the mean MSE" if ev.get("yeh_psnr") == "mean_mse"
                         else "the mean of per-image PSNR")
            conv = (f"PSNR = {psnr_conv} (dB; evaluation.yeh_psnr, unstated in the slides); SSIM window "
                    f"{ev.get('ssim_window', 'gaussian11')} (evaluation.ssim_window). The slides do not state the "
                    "test-set size, so the number of images is not compared. "
                    + T.colorize_note(sm.params.colorize) + " " + T.yeh_profile_note(dict(sm.params.yeh_profiles)))
        else:
            k = table.removeprefix("iagan")
            comp = T.iagan_comparison(aggs, iagan, k, dataset=sm.params.dataset,
                                      task_sigma=dict(sm.params.task_sigma), setting=setting, in_range=in_frame)
            metrics, paper = T.IAGAN_METRICS, iagan
            title = (f"IAGAN (arXiv 1906.05284) Table {k}: PSNR / LPIPS" if k != "text" else
                     "IAGAN (arXiv 1906.05284), text: misaligned super-resolution, PSNR / LPIPS")
            conv = (f"PSNR = PSNR of the mean MSE (IAGAN's convention); ours fill the "
                    f"'{sm.params.dataset}' columns.")
            if k == "1":
                conv += " " + T.fidelity_note(aggs, info["tasks"], info["image_size"], sm.params.dataset)
        note = f"Paper: {paper.attrs.get('note', '')} {where} {T.kinds_note(jsons)} {conv} {legend}"
        stem = Path(sm.output[f"{table}_md"]).with_suffix("")
        written = T.write_comparison(comp, metrics, stem, title, note, f"tab:{table}")
        assert all(str(written[ext]) == str(Path(sm.output[f"{table}_{ext}"])) for ext in written)

    note = (f"{where} {T.kinds_note(jsons, paper=False)} PSNR in dB with data range 1, as the mean of per-image "
            "PSNR and as the PSNR of the mean MSE (IAGAN); SSIM: scikit-image, Gaussian window sigma 1.5; LPIPS: "
            "AlexNet v0.1 (lower is better); ± = half-width of the 95% t interval.")
    write_text_atomic(sm.output.results_html, T.results_html(jsons, pairs, title=f"All results: {info['name']}",
                                                             note=note))
    write_text_atomic(sm.output.results_csv, T.results_table(jsons).to_csv(index=False, float_format="%.6g"))
