"""Snakemake script (rule ``cgan_cross_table``): PSNR / SSIM / LPIPS of every trained
cGAN on every task, beside the one-prior methods, as Markdown / CSV / HTML.  Thin:
logic in ganrestore.cgan.cross.cross_table (run in the job server when there is one)."""

from ganrestore import jobserver

sm = snakemake  # noqa: F821

info = sm.params.info
where = (f"Experiment `{info['name']}` ({info['source']} data, {info['n_test']} test images, "
         f"{info['image_size']}px, seed {info['seed']}).")
jobserver.run("ganrestore.cgan.cross:cross_table", dict(
    split_path=str(sm.input.data),
    restored={t: str(p) for t, p in zip(sm.params.tasks, sm.input.restored)},
    baseline_jsons=dict(sm.params.baseline_pairs), tasks=list(sm.params.tasks),
    baselines=list(sm.params.baselines), out_md=str(sm.output.md), out_csv=str(sm.output.csv),
    out_html=str(sm.output.html), where=where,
    lpips_weights=str(sm.input.lpips) if "lpips" in sm.input.keys() else None), sm.log[0], sm.threads)
