"""Builds experiments/REPORT.md from the experiments' result JSON files.

Examples::

    python experiments/report.py
    python experiments/report.py --results experiments/results --out experiments/REPORT.md

Every number in the report is computed here from the per-run JSON files
(``experiments/results/<experiment>/<setting>-seed<k>.json``) written by the
drivers; ``summary.json`` is only read for the figures' names. Statistics
over seeds: mean, sample standard deviation and min-max. Hand-written notes
and discussion, if ``<results>/notes.md`` and ``<results>/discussion.md``
exist, are included verbatim (notes after the title, discussion at the end).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import (band_split, common, model_size, multitask,  # noqa: E402
                         normalisation, records)
from experiments.records import by_setting, stats  # noqa: E402
from bsrnn_tf.fileio import atomic_write_text  # noqa: E402

EXPERIMENTS = ("band_split", "multitask", "model_size", "normalisation")


# ------------------------------------------------------------------ helpers

def values(runs: Sequence[dict], key: str, target: Optional[str] = None) -> List[float]:
    out = []
    for r in runs:
        v = r.get(key)
        if target is not None:
            v = (v or {}).get(target)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            out.append(float(v))
    return out


def cell(vals: Sequence[float]) -> str:
    """``mean ± std [min, max] (n)``; the mean first, 2 decimals."""
    s = stats(vals)
    if not s["n"]:
        return "–"
    if s["n"] == 1:
        return f"{s['mean']:.2f} (n=1)"
    return f"{s['mean']:.2f} ± {s['std']:.2f} [{s['min']:.2f}, {s['max']:.2f}] (n={s['n']})"


def fmt_int(v) -> str:
    return "–" if v is None else f"{int(v):,}"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min ({seconds:.0f} s)"


def compare(a: Sequence[float], b: Sequence[float], name_a: str, name_b: str,
            what: str) -> str:
    """One sentence: the difference of means and whether the seeds separate."""
    if not a or not b:
        return f"- {what}: not measured (missing runs)."
    sa, sb = stats(a), stats(b)
    delta = sa["mean"] - sb["mean"]
    if min(sa["n"], sb["n"]) < 2:
        verdict = ("only one seed on a side: no estimate of the run-to-run spread, so not "
                   "evidence")
    elif sa["min"] > sb["max"]:
        verdict = (f"every seed of {name_a} is above every seed of {name_b} "
                   f"(n={sa['n']} vs {sb['n']}: consistent, but too few seeds for a test)")
    elif sb["min"] > sa["max"]:
        verdict = (f"every seed of {name_b} is above every seed of {name_a} "
                   f"(n={sb['n']} vs {sa['n']}: consistent, but too few seeds for a test)")
    else:
        verdict = ("the seed ranges overlap: the difference is within the run-to-run spread, "
                   "so no evidence either way")
    spread = max(sa["max"] - sa["min"], sb["max"] - sb["min"])
    return (f"- {what}: {name_a} {sa['mean']:.2f} dB vs {name_b} {sb['mean']:.2f} dB "
            f"(difference {delta:+.2f} dB; largest seed range {spread:.2f} dB): {verdict}.")


def link(path: str, report_dir: str) -> str:
    return os.path.relpath(path, report_dir).replace(os.sep, "/")


def figures(folder: str, report_dir: str) -> List[str]:
    try:
        with open(os.path.join(folder, records.SUMMARY_FILE)) as f:
            names = json.load(f).get("figures", [])
    except (OSError, ValueError):
        names = []
    names = names or sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return [f"![{n}]({link(os.path.join(folder, n), report_dir)})" for n in names
            if os.path.exists(os.path.join(folder, n))]


def own_seconds(results: List[dict]) -> float:
    return float(sum(r.get("wall_seconds", 0.0) for r in results if not r.get("reused_from")))


def elapsed(results: List[dict]) -> Optional[float]:
    """Wall clock from the first run's start to the last run's end (runs
    that ran here, not reused ones), from ``finished_at`` and wall times."""
    span = elapsed_span(results)
    return None if span is None else span[1] - span[0]


def union_elapsed(spans: Sequence[Optional[tuple]]) -> Optional[float]:
    """Seconds covered by the experiments' ``(start, end)`` spans together:
    experiments run in parallel count once, days between them not at all."""
    total, end = 0.0, None
    for start, stop in sorted(s for s in spans if s is not None):
        if end is not None and start < end:
            total += max(0.0, stop - end)
        else:
            total += stop - start
        end = stop if end is None else max(end, stop)
    return total if end is not None else None


def elapsed_span(results: List[dict]) -> Optional[tuple]:
    """``(first start, last end)`` of the runs that ran here, or None."""
    spans = []
    for r in results:
        if r.get("reused_from") or not r.get("finished_at"):
            continue
        try:
            end = time.mktime(time.strptime(r["finished_at"], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        spans.append((end - r.get("wall_seconds", 0.0), end))
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


# ----------------------------------------------------------------- sections

def setup_section(all_results: Dict[str, List[dict]]) -> List[str]:
    flat = [r for rs in all_results.values() for r in rs]
    if not flat:
        return ["No results found: run `python experiments/run_all.py` first.", ""]
    scales = sorted({r["scale"] for r in flat})
    datasets = sorted({r.get("dataset") or "?" for r in flat})
    machines = sorted({f"{r['machine']['cpus']} CPU cores, {r['machine']['platform']}"
                       for r in flat if r.get("machine")})
    trained = [r for r in flat if r.get("stage") != "transfer" and r.get("config")]
    cfg = trained[0]["config"] if trained else flat[0]["config"]
    model, data, train = cfg["model"], cfg["data"], cfg["train"]
    seeds = sorted({r["seed"] for r in flat})
    lines = [
        "## Setup",
        "",
        f"- Scale: **{', '.join(scales)}**; seeds {', '.join(map(str, seeds))}.",
        f"- Data: {'; '.join(datasets)}"
        + (" — generated songs (MUSDB18-HQ layout), NOT MUSDB18: the numbers are not "
           "comparable to published ones." if any(r.get("builtin_dataset") for r in flat)
           else "."),
        f"- Machine: {'; '.join(machines)}; no GPU. Another process shared the 2 cores for "
        "part of the time, so wall times are noisy.",
        f"- Model: preset `{cfg.get('preset')}` (STFT n_fft {model['stft']['n_fft']}, hop "
        f"{model['stft']['hop_length']}, mlp_ratio {model['mlp_ratio']}); N = "
        f"{model['feature_dim']}, L = {model['num_layers']} unless a table says otherwise.",
        f"- Training: batch {train['batch_size']}, chunks of {data['segment_seconds']} s, "
        f"Adam lr {train['learning_rate']} (x{train['lr_decay']} every "
        f"{train['lr_decay_epochs']} epochs), clip {train['clip_norm']}, early stopping "
        f"{'off' if not train['patience'] else train['patience']}; augmentation "
        f"{'on' if data['remix'] else 'off'}; source-activity detection "
        f"{'on' if data['source_activity'] else 'off'}.",
        f"- Validation: {data['valid_examples']} fixed chunks from the validation tracks, "
        "the same for every run; uSDR per target = 10 log10 of summed reference energy over "
        "summed error energy (as `fit.py` logs it). \"best\" is the epoch `fit.py` keeps "
        "(highest mean validation uSDR over the model's targets), \"final\" the last epoch.",
        "- Budgets: see the epochs x examples column of each table. One optimizer step per "
        "batch; steps per epoch = examples per epoch / batch.",
        "",
        "Measured wall time: \"wall time\" is the sum of the runs' wall times (each "
        "including TensorFlow start-up and tracing; runs reused from another experiment are "
        "counted once, where they ran); \"elapsed\" is the wall clock from the first run's "
        "start to the last run's end (less than the sum where experiments ran in parallel); "
        "its total counts the time in which any experiment ran (not the days between them).",
        "",
        "| experiment | runs | reused | wall time | elapsed |",
        "|---|---:|---:|---:|---:|",
    ]
    total = 0.0
    for name in EXPERIMENTS:
        rs = all_results.get(name, [])
        secs = own_seconds(rs)
        total += secs
        span = elapsed(rs)
        lines.append(f"| {name} | {len(rs)} | {sum(1 for r in rs if r.get('reused_from'))} "
                     f"| {minutes(secs)} | {'–' if span is None else minutes(span)} |")
    span = union_elapsed([elapsed_span(rs) for rs in all_results.values()])
    lines += [f"| **total** | {sum(len(v) for v in all_results.values())} | | "
              f"**{minutes(total)}** | {'–' if span is None else minutes(span)} |", ""]
    tested = [r for r in flat if r.get("test_usdr")]
    if not tested:
        lines += ["Test-set scores (`evaluate.py`) were not computed at this scale (pass "
                  "`--evaluate`); all numbers are validation uSDR.", ""]
    return lines


def band_split_section(results: List[dict], folder: str, report_dir: str,
                       claims: List[str]) -> List[str]:
    groups = by_setting(results)
    src, dst = band_split.SOURCE, band_split.TARGET
    lines = ["## 1. Band split: v7 vs universal, drums then drums -> bass transfer", "",
             f"Drums models trained from scratch with each band split (same budget, same "
             f"seeds); then each frozen drums backbone gets a new {dst} head "
             f"(`--init-backbone <drums run> --freeze-backbone --targets {dst}`). "
             "Validation uSDR in dB: mean ± std [min, max] over seeds.", "",
             f"| band split | bands | parameters | epochs x examples | {src} best | {src} final "
             f"| {dst} transfer: trainable | epochs x examples | {dst} best | {dst} final |",
             "|---|---:|---:|---:|---|---|---:|---:|---|---|"]
    for split in band_split.SPLITS:
        b = groups.get(band_split.backbone_setting(split), [])
        t = groups.get(band_split.transfer_setting(split), [])
        if not b and not t:
            continue
        first, tfirst = (b or t)[0], (t or [{}])[0]
        lines.append(
            f"| {split} | {first.get('num_bands')} | {fmt_int(first.get('parameters'))} "
            f"| {budget(b)} | {cell(values(b, 'best_valid_usdr', src))} "
            f"| {cell(values(b, 'final_valid_usdr', src))} "
            f"| {fmt_int(tfirst.get('trainable_parameters'))} | {budget(t)} "
            f"| {cell(values(t, 'best_valid_usdr', dst))} "
            f"| {cell(values(t, 'final_valid_usdr', dst))} |")
    if any(r.get("test_usdr") for r in results):
        lines += ["", "Test subset (`evaluate.py`), uSDR dB:", "",
                  f"| band split | {src} | {dst} transfer |", "|---|---|---|"]
        for split in band_split.SPLITS:
            b = groups.get(band_split.backbone_setting(split), [])
            t = groups.get(band_split.transfer_setting(split), [])
            lines.append(f"| {split} | {cell(values(b, 'test_usdr', src))} "
                         f"| {cell(values(t, 'test_usdr', dst))} |")
    lines += ["", *figures(folder, report_dir), ""]
    for split in ("universal", "universal41"):
        u = groups.get(band_split.transfer_setting(split), [])
        v = groups.get(band_split.transfer_setting("v7"), [])
        claims.append(compare(values(u, "best_valid_usdr", dst), values(v, "best_valid_usdr", dst),
                              split, "v7",
                              f"Paper's claim, {src} -> {dst} transfer ({split} vs v7, best "
                              f"validation {dst} uSDR)"))
        claims.append(compare(values(u, "final_valid_usdr", dst),
                              values(v, "final_valid_usdr", dst), split, "v7",
                              f"Same, final epoch ({split} vs v7)"))
        ub = groups.get(band_split.backbone_setting(split), [])
        vb = groups.get(band_split.backbone_setting("v7"), [])
        claims.append(compare(values(ub, "best_valid_usdr", src), values(vb, "best_valid_usdr", src),
                              split, "v7", f"{src} from scratch ({split} vs v7, best)"))
    return lines


def budget(runs: Sequence[dict]) -> str:
    if not runs:
        return "–"
    cfg = runs[0].get("config", {})
    return f"{cfg['train']['epochs']} x {cfg['data']['examples_per_epoch']}"


def multitask_section(results: List[dict], folder: str, report_dir: str,
                      claims: List[str]) -> List[str]:
    groups = by_setting(results)
    mtl = groups.get(multitask.MTL, [])
    lines = ["## 2. Multi-task learning", "",
             "**Same budget** means the same total number of optimizer steps x examples: the "
             "MTL model draws E epochs x X examples (every example carries all four stems); "
             "each of the four single-target models draws E epochs x X/4, so the four together "
             "make as many optimizer steps on as many examples as the one MTL model (each "
             "single model individually gets a quarter). All use the "
             f"`{multitask.SPLIT}` band split. "
             "MTL values are those of its kept epoch (best mean over the four targets).", "",
             "### A. One MTL backbone vs four single-target models", "",
             f"| target | MTL best (epochs x examples {budget(mtl)}) | single-target best "
             "| MTL final | single-target final | single epochs x examples |",
             "|---|---|---|---|---|---:|"]
    mtl_means, single_means = [], []
    for target in multitask.TARGETS:
        single = groups.get(multitask.single_setting(target), [])
        if not mtl and not single:
            continue
        lines.append(f"| {target} | {cell(values(mtl, 'best_valid_usdr', target))} "
                     f"| {cell(values(single, 'best_valid_usdr', target))} "
                     f"| {cell(values(mtl, 'final_valid_usdr', target))} "
                     f"| {cell(values(single, 'final_valid_usdr', target))} | {budget(single)} |")
        claims.append(compare(values(mtl, "best_valid_usdr", target),
                              values(single, "best_valid_usdr", target), "MTL",
                              "single-target", f"MTL vs single-target, {target} (best)"))
    # Mean over the four targets, per seed (MTL seed k vs single-target seed k models).
    for seed in sorted({r["seed"] for r in mtl}):
        run = [r for r in mtl if r["seed"] == seed][0]
        mtl_means.append(run["best_valid_usdr_mean"])
        per_target = [values([r for r in groups.get(multitask.single_setting(t), [])
                              if r["seed"] == seed], "best_valid_usdr", t)
                      for t in multitask.TARGETS]
        if all(per_target):
            single_means.append(sum(v[0] for v in per_target) / len(per_target))
    if mtl_means or single_means:
        lines.append(f"| **mean of the 4** | {cell(mtl_means)} | {cell(single_means)} | | | |")
    full = groups.get(multitask.DRUMS, [])
    if full:
        lines.append(f"| (reference) drums, single-target with the MTL model's full budget "
                     f"(part B's drums backbone) | | {cell(values(full, 'best_valid_usdr', 'drums'))} "
                     f"| | {cell(values(full, 'final_valid_usdr', 'drums'))} | {budget(full)} |")
        claims.append(compare(values(mtl, "best_valid_usdr", "drums"),
                              values(full, "best_valid_usdr", "drums"), "MTL",
                              "single-target (full budget)",
                              "MTL drums head vs a drums-only model with the same number of "
                              "optimizer steps (not the same total budget; best)"))
    claims.append(compare(mtl_means, single_means, "MTL", "single-target",
                          "MTL vs single-target, mean over the four targets (best)"))
    ho = groups.get(multitask.transfer_setting(multitask.MTL_HOLDOUT), [])
    dr = groups.get(multitask.transfer_setting(multitask.DRUMS), [])
    hb = groups.get(multitask.MTL_HOLDOUT, [])
    db = groups.get(multitask.DRUMS, [])
    v = multitask.HOLDOUT
    lines += ["", f"### B. Transfer to the held-out {v}", "",
              f"Frozen backbones, a new {v} head each, same transfer budget. Backbones: MTL "
              f"on drums, bass, other (never {v}) vs single-target drums, both "
              f"{budget(hb or db)} epochs x examples. Reference: the {v} head of the MTL model "
              f"of part A (trained with {v}).", "",
              f"| backbone | backbone best (mean of its targets) | {v} best | {v} final "
              "| transfer epochs x examples |",
              "|---|---|---|---|---:|",
              f"| MTL drums+bass+other | {cell(values(hb, 'best_valid_usdr_mean'))} "
              f"| {cell(values(ho, 'best_valid_usdr', v))} "
              f"| {cell(values(ho, 'final_valid_usdr', v))} | {budget(ho)} |",
              f"| single-target drums | {cell(values(db, 'best_valid_usdr_mean'))} "
              f"| {cell(values(dr, 'best_valid_usdr', v))} "
              f"| {cell(values(dr, 'final_valid_usdr', v))} | {budget(dr)} |",
              f"| (reference) MTL with {v}, part A | | {cell(values(mtl, 'best_valid_usdr', v))} "
              f"| {cell(values(mtl, 'final_valid_usdr', v))} | |"]
    if any(r.get("test_usdr") for r in results):
        lines += ["", "Test subset (`evaluate.py`), uSDR dB:", "", "| setting | " +
                  " | ".join(multitask.TARGETS) + " |", "|---|" + "---|" * len(multitask.TARGETS)]
        for name, runs in groups.items():
            lines.append(f"| {name} | " + " | ".join(cell(values(runs, "test_usdr", t))
                                                     for t in multitask.TARGETS) + " |")
    lines += ["", *figures(folder, report_dir), ""]
    claims.append(compare(values(ho, "best_valid_usdr", v), values(dr, "best_valid_usdr", v),
                          "MTL backbone", "drums backbone",
                          f"Transfer to the held-out {v} (best)"))
    claims.append(compare(values(ho, "final_valid_usdr", v), values(dr, "final_valid_usdr", v),
                          "MTL backbone", "drums backbone",
                          f"Transfer to the held-out {v} (final epoch)"))
    return lines


def model_size_section(results: List[dict], folder: str, report_dir: str,
                       claims: List[str]) -> List[str]:
    t = model_size.TARGET
    lines = ["## 3. Model size", "",
             f"{t.capitalize()} models, each band split at a few (N, L), same budget and seeds. "
             "Validation uSDR in dB: mean ± std [min, max] over seeds.", "",
             f"| band split | N | L | bands | parameters | epochs x examples | {t} best "
             f"| {t} final |", "|---|---:|---:|---:|---:|---:|---|---|"]
    table: Dict[tuple, List[dict]] = {}
    for r in results:
        table.setdefault((r.get("band_split"), r.get("feature_dim"), r.get("num_layers")),
                         []).append(r)
    order = {s: i for i, s in enumerate(model_size.SPLITS)}
    keys = sorted(table, key=lambda k: (order.get(k[0], 99), k[1] or 0, k[2] or 0))
    for key in keys:
        runs = table[key]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {runs[0].get('num_bands')} "
                     f"| {fmt_int(runs[0].get('parameters'))} | {budget(runs)} "
                     f"| {cell(values(runs, 'best_valid_usdr', t))} "
                     f"| {cell(values(runs, 'final_valid_usdr', t))} |")
    lines += ["", *figures(folder, report_dir), ""]
    for split in model_size.SPLITS:
        sizes = sorted((k for k in table if k[0] == split), key=lambda k: (k[1], k[2]))
        if len(sizes) >= 2:
            small, large = table[sizes[0]], table[sizes[-1]]
            claims.append(compare(values(large, "best_valid_usdr", t),
                                  values(small, "best_valid_usdr", t),
                                  f"N{sizes[-1][1]} L{sizes[-1][2]}",
                                  f"N{sizes[0][1]} L{sizes[0][2]}",
                                  f"Largest vs smallest model, {split} (best)"))
    sizes = sorted({(k[1], k[2]) for k in table})
    for split in ("universal", "universal41"):
        for n, layers in sizes:
            u = table.get((split, n, layers), [])
            v7 = table.get(("v7", n, layers), [])
            if u and v7:
                claims.append(compare(values(u, "best_valid_usdr", t),
                                      values(v7, "best_valid_usdr", t), split, "v7",
                                      f"{split} vs v7 at N{n} L{layers} (best)"))
    return lines


def normalisation_section(results: List[dict], folder: str, report_dir: str,
                          claims: List[str]) -> List[str]:
    groups = by_setting(results)
    targets = list(normalisation.TARGETS)
    first = results[0]
    lines = ["## 4. Normalisation: statistics over the chunk vs per frame", "",
             "Multi-target models (`--mtl`), each band split with `--norm chunk` (the BSRNN "
             "authors': statistics per example over the features and the chunk's frames) and "
             "`--norm frame` (a layer norm per frame), same seeds and budget, preset "
             f"`{first['config'].get('preset')}` (scale `{first['scale']}`). Gain over the "
             "best-scaled mixture in dB (the model's uSDR minus that of the mixture times its "
             "least-squares gain; 0 dB = no separation): validation at the best epoch / "
             "held-out test songs (`evaluate.py`; for the built-in dataset a soundfont "
             "training never sees).", "",
             "| norm | band split | bands | epochs x examples | "
             + " | ".join(f"{t} valid / test" for t in targets) + " | mean test |",
             "|---|---|---:|---:|" + "---|" * len(targets) + "---|"]
    for split in normalisation.SPLITS:
        for norm in normalisation.NORMS:
            runs = groups.get(normalisation.setting(norm, split), [])
            if not runs:
                continue
            gains = [f"{cell(values(runs, 'best_valid_gain', t))} / "
                     f"{cell(values(runs, 'test_gain', t))}" for t in targets]
            lines.append(f"| {norm} | {split} | {runs[0].get('num_bands')} | {budget(runs)} | "
                         + " | ".join(gains) + f" | {cell(_mean_test_gain(runs, targets))} |")
    lines += ["", "The same runs' uSDR in dB (validation at the best epoch / test), and the "
              "references of the test songs: the best-scaled mixture (what no separation "
              "reaches) and the oracle ideal ratio mask (the ceiling of a mask model):", "",
              "| norm | band split | " + " | ".join(f"{t} valid / test" for t in targets)
              + " |", "|---|---|" + "---|" * len(targets)]
    for split in normalisation.SPLITS:
        for norm in normalisation.NORMS:
            runs = groups.get(normalisation.setting(norm, split), [])
            if runs:
                lines.append(f"| {norm} | {split} | " + " | ".join(
                    f"{cell(values(runs, 'best_valid_usdr', t))} / "
                    f"{cell(values(runs, 'test_usdr', t))}" for t in targets) + " |")
    for label, key in (("best-scaled mixture", "test_scaled_mixture_usdr"),
                       ("oracle IRM", "test_oracle_irm_usdr")):
        tested = [r for r in results if r.get(key)][:1]  # the same songs for every run
        if tested:
            lines.append(f"| {label} | | " + " | ".join(
                f"– / {cell(values(tested, key, t))}" for t in targets) + " |")
    lines += ["", *figures(folder, report_dir), ""]
    for split in normalisation.SPLITS:
        chunk = groups.get(normalisation.setting("chunk", split), [])
        frame = groups.get(normalisation.setting("frame", split), [])
        claims.append(compare(_mean_test_gain(chunk, targets), _mean_test_gain(frame, targets),
                              "chunk", "frame", f"Mean test gain over the four targets, {split}"))
    return lines


def _mean_test_gain(runs: Sequence[dict], targets: Sequence[str]) -> List[float]:
    """Per run, the test gain averaged over ``targets``."""
    return [sum(r["test_gain"][t] for t in targets) / len(targets)
            for r in runs if all(t in (r.get("test_gain") or {}) for t in targets)]


# --------------------------------------------------------------------- main

def build_report(results_dir: str, out: str) -> str:
    report_dir = os.path.dirname(os.path.abspath(out))
    all_results = {name: records.load_results(os.path.join(results_dir, name))
                   for name in EXPERIMENTS}
    claims: Dict[str, List[str]] = {name: [] for name in EXPERIMENTS}
    lines = ["# Refined BSRNN experiments at small scale", "",
             f"Generated by `python experiments/report.py` on {time.strftime('%Y-%m-%d %H:%M')} "
             f"from {sum(len(v) for v in all_results.values())} run result files under "
             f"`{link(results_dir, report_dir)}/`. Reproduce with "
             "`python experiments/run_all.py` (see experiments/README.md).", ""]
    notes = os.path.join(results_dir, "notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += [f.read().strip(), ""]
    lines += setup_section(all_results)
    sections = {"band_split": band_split_section, "multitask": multitask_section,
                "model_size": model_size_section, "normalisation": normalisation_section}
    for name in EXPERIMENTS:
        if all_results[name]:
            lines += sections[name](all_results[name], os.path.join(results_dir, name),
                                    report_dir, claims[name])
        else:
            lines += [f"## {name}", "", "Not run (no result files).", ""]
    lines += ["## What the numbers support and do not support", "",
              "Computed from the tables above. With two seeds per setting, \"every seed above "
              "every seed\" is the most that can be said; it is not a significance test. "
              "Overlapping seed ranges mean the difference is not evidence.", ""]
    titles = {"band_split": "Band split (experiment 1)", "multitask": "Multi-task (experiment 2)",
              "model_size": "Model size (experiment 3)",
              "normalisation": "Normalisation (experiment 4)"}
    for name in EXPERIMENTS:
        if claims[name]:
            lines += [f"**{titles[name]}**", "", *claims[name], ""]
    discussion = os.path.join(results_dir, "discussion.md")
    if os.path.exists(discussion):
        with open(discussion) as f:
            lines += ["### Discussion", "", f.read().strip(), ""]
    text = "\n".join(lines).rstrip() + "\n"
    atomic_write_text(out, text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--results", default=common.RESULTS)
    p.add_argument("--out", default=os.path.join(common.ROOT, "experiments", "REPORT.md"))
    args = p.parse_args(argv)
    build_report(os.path.abspath(args.results), os.path.abspath(args.out))
    print(f"wrote {common.rel(os.path.abspath(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
