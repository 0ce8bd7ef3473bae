"""The report's three experiment sections (experiments/report.py): band
split, multi-task learning, a new instrument. Each takes the experiment's
result dicts and returns markdown lines; every number is computed here from
those dicts (:mod:`experiments.report_format`).

The headline metric is the held-out gain over the best-scaled mixture
(``test_gain``), with the best-scaled mixture's and the oracle IRM's uSDR of
the same test songs beside it; the validation gain comes second.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

from experiments import band_split, multitask, new_instrument
from experiments.common import result_key, run_key
from experiments.records import by_setting
from experiments.report_format import (SeedValues, budget, cell, common_range, compare, fmt_int,
                                       first, mean, number, paired, ratio, reference, seed_mean,
                                       seed_table, seed_values, slope, time_to_reach,
                                       within_slope)

FLOOR, CEILING = "test_scaled_mixture_usdr", "test_oracle_irm_usdr"


def _reference_header(target: str = "") -> str:
    prefix = f"{target} " if target else ""
    return f"{prefix}best-scaled mixture uSDR | {prefix}oracle IRM uSDR"


def _gain(runs: Sequence[dict], target: str) -> SeedValues:
    return seed_values(runs, "test_gain", target)


def _references(runs: Sequence[dict], target: str) -> str:
    return f"{reference(runs, FLOOR, target)} | {reference(runs, CEILING, target)}"


def _seeds(results: Sequence[dict]) -> List[int]:
    return sorted({int(r["seed"]) for r in results})


# ------------------------------------------------------------ band split

def band_split_section(results: List[dict]) -> List[str]:
    g = by_setting(results)
    src, dst, splits = band_split.SOURCE, band_split.TARGET, band_split.SPLITS

    def runs(setting_of, split):
        return g.get(setting_of(split), [])

    drums = {s: runs(band_split.backbone_setting, s) for s in splits}
    head = {s: runs(band_split.transfer_setting, s) for s in splits}
    scratch = {s: runs(band_split.scratch_setting, s) for s in splits}
    lines = ["## 1. Band split: v7 vs universal, drums then a bass head on the frozen "
             "drums backbone", "",
             f"{src.capitalize()} models from scratch with each band split "
             f"({budget(drums['v7'])}); then each frozen {src} backbone gets a new {dst} head "
             f"(`--init-backbone <{src} run> --freeze-backbone --targets {dst}`), and a {dst} "
             f"model of the same split is trained from scratch with the head's budget "
             f"({budget(head['v7'] or scratch['v7'])}). Held-out test gain over the "
             "best-scaled mixture in dB, mean ± std [min, max] (n seeds); every seed's value "
             "is in the per-seed table below.", "",
             f"| band split | bands | parameters | {src} test gain | {src} validation gain "
             f"(kept epoch) | {_reference_header(src)} |",
             "|---|---:|---:|---|---|---:|---:|"]
    for split in splits:
        b = drums[split]
        lines.append(f"| {split} | {fmt_int(first(b, 'num_bands'))} "
                     f"| {fmt_int(first(b, 'parameters'))} | {cell(_gain(b, src))} "
                     f"| {cell(seed_values(b, 'best_valid_gain', src))} "
                     f"| {_references(b, src)} |")
    lines += ["", f"| band split | head: trainable parameters | {dst} head test gain "
              f"| from scratch: parameters | {dst} from scratch test gain "
              f"| head − from scratch (paired) | {_reference_header(dst)} |",
              "|---|---:|---|---:|---|---|---:|---:|"]
    for split in splits:
        h, s = head[split], scratch[split]
        lines.append(f"| {split} | {fmt_int(first(h, 'trainable_parameters'))} "
                     f"| {cell(_gain(h, dst))} | {fmt_int(first(s, 'parameters'))} "
                     f"| {cell(_gain(s, dst))} | {cell(paired(_gain(h, dst), _gain(s, dst)))} "
                     f"| {_references(h + s, dst)} |")
    lines += ["", *_confound(drums, head, src, dst), ""]
    rows = []
    for split in splits:
        rows += [(f"{src} from scratch, {split}", _gain(drums[split], src)),
                 (f"{dst} head, {split}", _gain(head[split], dst)),
                 (f"{dst} from scratch, {split}", _gain(scratch[split], dst)),
                 (f"{dst} head − from scratch, {split}",
                  paired(_gain(head[split], dst), _gain(scratch[split], dst)))]
    lines += ["Every seed's test gain (dB):", "", *seed_table(rows, _seeds(results)), "",
              "Comparisons (held-out test gain):", ""]
    for split in ("universal", "universal41"):
        lines.append(compare(_gain(drums[split], src), _gain(drums["v7"], src), split, "v7",
                             f"{src} from scratch, {split} vs v7"))
    for split in splits:
        lines.append(compare(_gain(head[split], dst), _gain(scratch[split], dst), "the head",
                             "the model from scratch",
                             f"{dst}, head on the frozen {src} backbone vs from scratch "
                             f"({split}, same budget)"))
    for split in ("universal", "universal41"):
        lines.append(compare(_gain(head[split], dst), _gain(head["v7"], dst), split, "v7",
                             f"{dst} head, {split} vs v7 (the paper's figure 8)"))
    return lines + [""]


def _confound(drums: Dict[str, List[dict]], head: Dict[str, List[dict]], src: str,
              dst: str) -> List[str]:
    """The bass head's test gain against the drums test gain of its own
    backbone run: the overall slope, the slope within splits, and each
    split's head gain at a drums gain every split reached."""
    points = {}
    for split, heads in head.items():
        backbone = {result_key(r): r for r in drums[split]}
        xs, ys = [], []
        for r in heads:
            b = backbone.get(r.get("backbone_run") or
                             run_key(band_split.backbone_setting(split), r['seed']))
            x = (b or {}).get("test_gain", {}).get(src)
            y = (r.get("test_gain") or {}).get(dst)
            if x is not None and y is not None:
                xs.append(float(x))
                ys.append(float(y))
        points[split] = (xs, ys)
    measured = {s: p for s, p in points.items() if p[0]}
    all_x = [x for xs, _ in measured.values() for x in xs]
    all_y = [y for _, ys in measured.values() for y in ys]
    overall, within = slope(all_x, all_y), within_slope(measured)
    span = common_range(points)
    level = None if span is None else (span[0] + span[1]) / 2
    lines = [f"**The confound of a better {src} backbone.** Each {dst} head's test gain "
             f"against the {src} test gain of the backbone it was trained on "
             f"({len(all_x)} runs). Slope over all runs: {number(overall)} dB of {dst} per dB "
             f"of {src}; slope within band splits (each split its own intercept): "
             f"{number(within)}."]
    if not all_x:
        lines.append(f"Not measured: no {dst} head with test scores for it and its backbone.")
    elif span is None:
        ranges = "; ".join(f"{s} [{min(xs):.2f}, {max(xs):.2f}]" if xs else f"{s} none"
                           for s, (xs, _) in points.items())
        lines.append(f"The splits' {src} gains do not overlap ({ranges}), so the splits "
                     "cannot be compared at equal drums quality without extrapolating: no "
                     "adjusted values.")
    else:
        lines.append(f"Every split's {src} gains cover [{span[0]:.2f}, {span[1]:.2f}] dB; the "
                     f"last column moves each split's mean {dst} head gain along the "
                     f"within-split slope to {src} = {level:.2f} dB.")
    lines += ["", f"| band split | runs | {src} test gain of the backbones [min, max] "
              f"| {dst} head test gain (mean) | {dst} head at equal {src} quality |",
              "|---|---:|---|---:|---:|"]
    for split, (xs, ys) in points.items():
        at_level = (None if level is None or within is None or not xs
                    else mean(ys) + within * (level - mean(xs)))
        extent = f"[{min(xs):.2f}, {max(xs):.2f}]" if xs else "–"
        lines.append(f"| {split} | {len(xs)} | {extent} | {number(mean(ys))} "
                     f"| {number(at_level)} |")
    return lines


# -------------------------------------------------------------- multitask

def any_arm(runs_by_target: dict) -> List[dict]:
    """The runs of the first target of an arm that has any (the budget is the
    same for every target of an arm)."""
    return next((runs for runs in runs_by_target.values() if runs), [])


def multitask_section(results: List[dict]) -> List[str]:
    g = by_setting(results)
    targets = multitask.TARGETS
    mtl = g.get(multitask.MTL, [])
    arms = {arm: {t: g.get(multitask.single_setting(t, arm), []) for t in targets}
            for arm in multitask.ARMS}
    singles = {f"single-target runs ({arm} budget)": [r for t in targets for r in arms[arm][t]]
               for arm in multitask.ARMS}
    # A target whose MTL and single-target test figures were scored on
    # different songs stays out of the mean (its difference is the songs').
    left_out = list(mixed_scoring(mtl, singles, targets))
    pooled = [t for t in targets if t not in left_out]
    mean_label = "mean of the four" if not left_out else f"mean of {', '.join(pooled)}"
    lines = ["## 2. Multi-task learning: one MTL model vs single-target models", "",
             f"All with the `{multitask.SPLIT}` band split. The MTL model (one backbone, four "
             f"heads, {budget(mtl)}) against four single-target models each "
             f"given a quarter of its budget ({budget(any_arm(arms['quarter']))}: the four "
             "together make as many optimizer steps on as many examples) and four given its "
             f"full budget each ({budget(any_arm(arms['full']))}: four times the total). "
             "Held-out test gain over the best-scaled mixture in dB; differences are paired "
             f"by seed. The {mean_label} is computed per seed (a seed's mean needs all "
             f"{len(pooled)} of its targets)"
             + (f"; {', '.join(left_out)} is left out of it because its MTL and "
                "single-target test figures were scored on different songs (see the notes "
                "below the comparisons)." if left_out else "."), "",
             "| target | MTL | single, quarter budget | single, full budget | MTL − quarter "
             f"(paired) | MTL − full (paired) | {_reference_header()} |",
             "|---|---|---|---|---|---|---:|---:|"]
    gains = {"mtl": {t: _gain(mtl, t) for t in targets},
             **{arm: {t: _gain(arms[arm][t], t) for t in targets} for arm in multitask.ARMS}}
    for arm in gains:
        gains[arm][mean_label] = seed_mean([gains[arm][t] for t in pooled])
    rows = []
    for target in [*targets, mean_label]:
        v = {arm: gains[arm][target] for arm in gains}
        refs = (_references(mtl + arms["quarter"][target] + arms["full"][target], target)
                if target in targets else " | ")
        dq, df = paired(v["mtl"], v["quarter"]), paired(v["mtl"], v["full"])
        label = target if target in targets else f"**{target}**"
        lines.append(f"| {label} | {cell(v['mtl'])} | {cell(v['quarter'])} "
                     f"| {cell(v['full'])} | {cell(dq)} | {cell(df)} | {refs} |")
        rows += [(f"{target}: MTL", v["mtl"]), (f"{target}: single, quarter", v["quarter"]),
                 (f"{target}: single, full", v["full"]), (f"{target}: MTL − quarter", dq),
                 (f"{target}: MTL − full", df)]
    lines += ["", "Validation gain at the kept epoch (secondary; the MTL model keeps the "
              "epoch with the best mean over its four targets):", "",
              "| target | MTL | single, quarter budget | single, full budget |",
              "|---|---|---|---|"]
    for target in targets:
        lines.append(f"| {target} | {cell(seed_values(mtl, 'best_valid_gain', target))} | "
                     + " | ".join(cell(seed_values(arms[arm][target], "best_valid_gain", target))
                                  for arm in multitask.ARMS) + " |")
    lines += ["", "Every seed's test gain (dB):", "", *seed_table(rows, _seeds(results)), "",
              "Comparisons (held-out test gain):", ""]
    for target in [*targets, mean_label]:
        for arm, what in (("quarter", "the same total budget"),
                          ("full", "four times the total budget")):
            lines.append(compare(gains["mtl"][target], gains[arm][target], "MTL",
                                 f"single-target ({arm})",
                                 f"{target}: MTL vs single-target at {what}"
                                 + (" (scored on different songs: not comparable)"
                                    if target in left_out else "")))
    lines += mixed_scoring_notes(mtl, singles, targets, "MTL runs")
    return lines + [""]


def mixed_scoring(old: List[dict], others: Dict[str, List[dict]],
                  targets: Sequence[str]) -> Dict[str, List[str]]:
    """target -> the test songs whose reference is silent, for each target
    whose test figures differ between ``old`` and ``others`` (label -> runs)
    by those songs, not by the models: some runs of ``others`` left the
    songs out of the test mean while runs of ``old`` were scored before
    evaluate.py did (they kept no per-track scores to rescore)."""
    if not any("test_gain" in r and "test_per_track" not in r for r in old):
        return {}
    mixed = {}
    for target in targets:
        silent = sorted({song for runs in others.values() for r in runs
                         for song in (r.get("test_silent_references") or {}).get(target, [])})
        if silent:
            mixed[target] = silent
    return mixed


def mixed_scoring_notes(old: List[dict], others: Dict[str, List[dict]],
                        targets: Sequence[str], old_name: str) -> List[str]:
    """A warning per target of :func:`mixed_scoring`, with the validation
    gain at the kept epoch of every group, to compare by instead."""
    old = [r for r in old if "test_gain" in r and "test_per_track" not in r]
    notes = []
    for target, silent in mixed_scoring(old, others, targets).items():
        valid = ", ".join(f"{name} {cell(seed_values(runs, 'best_valid_gain', target))}"
                          for name, runs in [(old_name, old), *others.items()])
        notes.append(f"- **{target}: test figures not comparable.** evaluate.py now "
                     f"leaves out the test song(s) whose {target} is silent "
                     f"({', '.join(silent)}), and the runs scored since do; the "
                     f"{old_name} were scored before and include it (their per-track "
                     "scores were not kept). Validation gain at the kept epoch instead: "
                     f"{valid}.")
    return [""] + notes if notes else []


# --------------------------------------------------------- new instrument

def new_instrument_section(results: List[dict]) -> List[str]:
    g = by_setting(results)
    ni = new_instrument
    targets = multitask.TARGETS

    def arm_runs(instrument, arm, split):
        return g.get(ni.setting(instrument, arm, split), [])

    lines = ["## 3. A new instrument: a head on a frozen MTL backbone", "",
             "MTL backbones trained without the new instrument, then frozen: `mtl3_novocals` "
             "(universal41) and `mtl3_novocals_v7` (v7), on drums, bass and other from songs "
             "with the vocals stem silenced and taken out of every mixture, for vocals; "
             "`mtl4` (universal41; drums, bass, other, vocals) on songs without piano and "
             "guitar anywhere in their mixtures, for piano and guitar. "
             "Per case a new head on the frozen backbone against a whole model for the "
             "instrument from scratch with the same budget and a small model from scratch "
             "with about a head's trainable parameters. Test gain over the best-scaled "
             "mixture on the held-out test songs that have the instrument; minutes of "
             "training are the mean over seeds of the epochs' times (2 CPU cores, other runs "
             "sharing them; seeds ran on machines of different speeds), \"time ÷ scratch's\" "
             "the paired ratio of a model's training time to the model from scratch's of "
             "the same seed. \"Head − this model\" is paired by seed.", "",
             "The frozen backbones' own test gain (dB):", "",
             "| backbone | band split | bands | parameters | " + " | ".join(targets)
             + " | mean of its targets |", "|---|---|---:|---:|" + "---|" * (len(targets) + 1)]
    for backbone, (split, b_targets, _) in ni.BACKBONES.items():
        b = g.get(backbone, [])
        per_target = {t: _gain(b, t) for t in b_targets}
        lines.append(f"| {backbone} | {split} "
                     f"| {fmt_int(first(b, 'num_bands'))} | {fmt_int(first(b, 'parameters'))} | "
                     + " | ".join(cell(per_target[t]) if t in per_target else "not a target"
                                  for t in targets)
                     + f" | {cell(seed_mean(list(per_target.values())))} |")
    for backbone, (_, b_targets, data) in ni.BACKBONES.items():
        alike = {f"{name} runs": g.get(name, []) for name, (_, _, d) in ni.BACKBONES.items()
                 if d == data and name != backbone}
        lines += mixed_scoring_notes(g.get(backbone, []), alike, b_targets, f"{backbone} runs")
    lines += ["", "| band split | instrument | model | trainable parameters | minutes of "
              "training | time ÷ scratch's (paired) | test gain | head − this model (paired) "
              f"| validation gain (final) | {_reference_header()} |",
              "|---|---|---|---:|---:|---|---|---|---|---:|---:|"]
    rows, claims = [], []
    for instrument, split, _ in ni.CASES:
        head = _gain(arm_runs(instrument, "head", split), instrument)
        every = [r for arm in ni.ARMS for r in arm_runs(instrument, arm, split)]
        scratch_seconds = seed_values(arm_runs(instrument, "scratch", split), "train_seconds")
        for arm in ni.ARMS:
            runs = arm_runs(instrument, arm, split)
            gain = _gain(runs, instrument)
            diff = "" if arm == "head" else cell(paired(head, gain))
            seconds = seed_values(runs, "train_seconds")
            minutes = mean(seconds)
            lines.append(
                f"| {split} | {instrument} | {ni.ARM_LABELS[arm]} "
                f"| {fmt_int(first(runs, 'trainable_parameters'))} "
                f"| {number(None if minutes is None else minutes / 60, 1)} "
                f"| {cell(ratio(seconds, scratch_seconds))} | {cell(gain)} | {diff} "
                f"| {cell(seed_values(runs, 'final_valid_gain', instrument))} "
                f"| {_references(every, instrument)} |")
            rows.append((f"{instrument}, {split}: {arm}", gain))
            if arm != "head":
                rows.append((f"{instrument}, {split}: head − {arm}", paired(head, gain)))
                claims.append(compare(head, gain, "the head", f"the {arm} model",
                                      f"{instrument}, {split}: head vs "
                                      f"{ni.ARM_LABELS[arm]}"))
    lines += ["", *_minutes_to_reach(arm_runs), "",
              "Every seed's test gain (dB):", "", *seed_table(rows, _seeds(results)), "",
              "Comparisons (held-out test gain):", "", *claims]
    for instrument in ni.INSTRUMENTS:
        splits = [s for i, s, _ in ni.CASES if i == instrument]
        if "universal41" in splits and "v7" in splits:
            lines.append(compare(_gain(arm_runs(instrument, "head", "universal41"), instrument),
                                 _gain(arm_runs(instrument, "head", "v7"), instrument),
                                 "universal41", "v7", f"{instrument} head, universal41 vs v7"))
    return lines + [""]


def _minutes_to_reach(arm_runs) -> List[str]:
    """Per split and instrument: how long each model's mean validation curve
    takes to reach the final validation gain of the model from scratch."""
    ni = new_instrument
    lines = ["Minutes to reach the level of a model from scratch: the first epoch at which "
             "the mean over seeds of a model's validation gain reaches the mean final "
             "validation gain of the whole model from scratch, with the mean training "
             "minutes up to that epoch:", "",
             "| band split | instrument | level (dB) | " + " | ".join(ni.ARM_LABELS[a]
                                                               for a in ni.ARMS) + " |",
             "|---|---|---:|" + "---|" * len(ni.ARMS)]
    for instrument, split, _ in ni.CASES:
        level = mean(seed_values(arm_runs(instrument, "scratch", split), "final_valid_gain",
                                 instrument))
        lines.append(f"| {split} | {instrument} | {number(level)} | " + " | ".join(
            time_to_reach(arm_runs(instrument, arm, split), instrument, level)
            for arm in ni.ARMS) + " |")
    return lines
