"""Train a BSRNN separator.

Examples::

    # multi-task: one backbone, one head per target (refined BSRNN eq. 2)
    python training/fit.py --mtl --preset cpu
    # one target with the universal 24-TET band split
    python training/fit.py --targets drums --bands universal --run-dir saved_models/drums-u
    # transfer: frozen backbone of that run, a new head for bass
    python training/fit.py --init-backbone saved_models/drums-u --freeze-backbone \\
        --targets bass --run-dir saved_models/drums-u-to-bass

Running the same command again resumes from the run's last checkpoint.
Without ``--musdb-root`` (or ``MUSDB_PATH``) the built-in sampled dataset
(songs rendered from soundfonts, made once on first use) is used;
``--dataset synth`` picks the synthesized one. ``bsrnn-tf fit`` is the same
command as ``python training/fit.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bsrnn_tf.commands.fit_checks import (  # noqa: E402
    assert_message, check_run_dir, check_segment_fits, check_segment_length,
    check_target_activity, check_target_names, load_train_valid, one_line_error,
    write_failure)
from bsrnn_tf.console import quiet_tensorflow  # noqa: E402
from bsrnn_tf.config import (CHANNEL_MODES, DEFAULT_TARGETS, LOSSES, NORMS,  # noqa: E402
                             ConfigError, ExperimentConfig)
from bsrnn_tf.fileio import CONFIG_FILE, MODEL_FILE, atomic_write_text  # noqa: E402

PROG = "fit.py"  # the name in messages (``bsrnn-tf fit`` passes its own)


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--config", help="experiment config JSON (e.g. from tune.py); flags override it")
    p.add_argument("--preset", help="paper, small, cpu, cpu-stream (causal, for streaming) or "
                                    "tiny (default cpu: the CPU recipe, see README)")
    p.add_argument("--mtl", action="store_true",
                   help="multi-task: one head per target, loss = sum of per-target losses")
    p.add_argument("--targets", nargs="+",
                   help=f"targets (default with --mtl: {' '.join(DEFAULT_TARGETS)}; else vocals)")
    p.add_argument("--target-weights", nargs="+", metavar="TARGET=W",
                   help="per-target loss weights for --mtl, e.g. vocals=2")
    p.add_argument("--bands", help="v7, v7-authors, bass, drums, universal or FILE.json")
    p.add_argument("--num-edges", type=int, help="universal: number of its edges to use")
    p.add_argument("--feature-dim", type=int, help="N, features per band")
    p.add_argument("--num-layers", type=int, help="L, band-sequence blocks")
    p.add_argument("--norm", choices=NORMS,
                   help="normalisation statistics: chunk (the authors', default; over the "
                        "chunk's frames), frame (per-frame layer norm, bsrnn_tf before 0.2) "
                        "or cumulative (over the frames so far); a causal model (--preset "
                        "cpu-stream, norm cumulative) takes frame or cumulative")
    p.add_argument("--channels", choices=CHANNEL_MODES,
                   help="where stereo goes: features (packed into each band's features, "
                        "default) or batch (each channel a mono example, as the BSRNN "
                        "authors' code)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument("--lr-decay", type=float, help="decay factor (default 0.98)")
    p.add_argument("--lr-decay-epochs", type=int, help="decay every this many epochs (default 2)")
    p.add_argument("--clip-norm", type=float, help="gradient clipping norm (default 5)")
    p.add_argument("--patience", type=int, help="early stopping patience in epochs (0: off)")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="a time budget: stop after the epoch in which the run's epochs "
                        "(validation included, earlier sittings of a resumed run too) reach "
                        "M minutes, even before --epochs (0: none, the default)")
    p.add_argument("--examples-per-epoch", type=int)
    p.add_argument("--valid-examples", type=int, help="fixed validation chunks")
    p.add_argument("--segment-seconds", type=float, help="training chunk length (default: the preset's, 2 s "
                                                          "for cpu, 3 s for the others)")
    p.add_argument("--valid-segment-seconds", type=float,
                   help="validation chunk length (default: --segment-seconds)")
    p.add_argument("--no-augment", action="store_true",
                   help="no remixing, gains, channel swaps or target silencing")
    p.add_argument("--no-activity-detection", action="store_true")
    p.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPUs)")
    p.add_argument("--recompute-blocks", action=argparse.BooleanOptionalAction,
                   help="recompute each block's activations in the backward pass: "
                        "1.6x-4x less training memory (deeper models gain more) for "
                        "1.1x-1.6x the step time; also applies when resuming a run")
    p.add_argument("--checkpoint-every", type=int, help="also checkpoint every N steps")
    p.add_argument("--seed", type=int)
    p.add_argument("--musdb-root", help="MUSDB18 / MUSDB18-HQ root (default $MUSDB_PATH or the "
                                        "built-in sampled dataset)")
    p.add_argument("--loss", choices=LOSSES,
                   help="bsrnn: the authors' L1 loss (default, but the cpu preset's is "
                        "bsrnn+sdr: plus 0.1 x negative uSDR, learns faster in short runs)")
    p.add_argument("--dataset", choices=("sampled", "synth", "produced"),
                   help="built-in dataset without --musdb-root / MUSDB_PATH (default sampled: "
                        "songs rendered from General MIDI soundfonts; synth: synthesized; "
                        "produced: with recorded kits, sung vocals and effects)")
    p.add_argument("--name", help="run name (default from preset, targets and bands)")
    p.add_argument("--run-dir", help="default saved_models/<run name>")
    p.add_argument("--logdir", help="TensorBoard logs (default <run dir>/logs)")
    p.add_argument("--init-backbone", metavar="RUN_DIR",
                   help="start from the backbone of a trained run (transfer learning)")
    p.add_argument("--init-model", metavar="RUN_DIR",
                   help="start from every weight of a trained run, heads included: fine-tune "
                        "it on other songs or train it on in a new run folder (e.g. the "
                        "shipped model on MUSDB18-HQ). Its heads for --targets keep their "
                        "weights, a target it has no head for gets a new one, its other "
                        "heads are dropped; its model settings (bands, size) are used")
    p.add_argument("--freeze-backbone", action="store_true",
                   help="train only the heads (with --init-backbone or --init-model)")
    p.add_argument("--cpu-devices", type=int, default=1,
                   help="MirroredStrategy over this many logical CPU devices (testing)")
    p.add_argument("--threads", type=int,
                   help="TensorFlow intra-op and inter-op threads (default: every core); 1 "
                        "when two runs share a 2-core machine trains 1.19x faster in all "
                        "(benchmarks/parallel_runs.py)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _parse_weights(items) -> dict:
    weights = {}
    for item in items or []:
        name, _, value = item.partition("=")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ConfigError(f"--target-weights: expected TARGET=NUMBER, got {item!r}") from None
    return weights


def config_from_args(args, saved: bool = False) -> ExperimentConfig:
    """Preset (or --config file) plus flag overrides. ``saved``: the config
    file was written with a run (fields it lacks mean their old values)."""
    from bsrnn_tf.models.presets import apply_preset_training, preset

    if args.config:
        config = ExperimentConfig.from_json(args.config, saved=saved)
        if args.preset:
            config.preset = args.preset
            config.model = preset(args.preset)
    else:
        config = ExperimentConfig(preset=args.preset or "cpu")
        config.model = preset(config.preset)
        apply_preset_training(config.preset, config)
    m, d, t = config.model, config.data, config.train
    if args.targets:
        m.targets = list(args.targets)
    elif args.mtl:
        m.targets = list(DEFAULT_TARGETS)
    elif not args.config:
        m.targets = ["vocals"]
    if len(m.targets) > 1 and not args.mtl and not args.config:
        raise ConfigError(f"several targets {m.targets} need --mtl (one backbone, one head each)")
    for flag, obj, field in [("bands", m, "bands"), ("num_edges", m, "num_edges"),
                             ("feature_dim", m, "feature_dim"), ("num_layers", m, "num_layers"),
                             ("norm", m, "norm"), ("channels", m, "channels"),
                             ("epochs", t, "epochs"), ("batch_size", t, "batch_size"),
                             ("lr", t, "learning_rate"), ("lr_decay", t, "lr_decay"),
                             ("lr_decay_epochs", t, "lr_decay_epochs"),
                             ("clip_norm", t, "clip_norm"), ("patience", t, "patience"),
                             ("max_minutes", t, "max_minutes"),
                             ("checkpoint_every", t, "checkpoint_every_steps"),
                             ("seed", t, "seed"), ("examples_per_epoch", d, "examples_per_epoch"),
                             ("valid_examples", d, "valid_examples"),
                             ("segment_seconds", d, "segment_seconds"),
                             ("valid_segment_seconds", d, "valid_segment_seconds"),
                             ("musdb_root", d, "musdb_root"),
                             ("dataset", d, "builtin_dataset"), ("loss", t, "loss")]:
        value = getattr(args, flag)
        if value is not None:
            setattr(obj, field, value)
    if args.bands and args.bands != "universal" and args.num_edges is None:
        m.num_edges = None  # a preset's edge count belongs to its universal split
    if args.target_weights:
        t.target_weights = _parse_weights(args.target_weights)
    unknown = set(t.target_weights) - set(m.targets)
    if unknown:
        raise ConfigError(f"--target-weights names targets that are not trained: {sorted(unknown)}")
    if args.mixed_precision:
        t.mixed_precision = True
    if args.recompute_blocks is not None:
        t.recompute_blocks = args.recompute_blocks
    if args.no_augment:
        d.remix, d.gain_db, d.channel_swap, d.silence_target_prob = False, 0.0, False, 0.0
    if args.no_activity_detection:
        d.source_activity = False
    if args.name:
        config.name = args.name
    elif not args.config:
        what = "mtl" if args.mtl else "-".join(m.targets)
        bands = os.path.splitext(os.path.basename(m.bands))[0]
        edges = f"{m.num_edges}" if m.num_edges else ""
        config.name = f"{config.preset}-{what}-{bands}{edges}"
    config.validate()
    return config


def _transfer_model(run_dir: str, targets, freeze: bool, keep_heads: bool = False):
    """Loads a trained separator and gives it a head per target of ``targets``:
    new ones (``--init-backbone``), or with ``keep_heads`` (``--init-model``)
    its trained head where it has one, a new one where it has none; its heads
    for other targets are dropped."""
    from bsrnn_tf.models import load_separator
    model = load_separator(run_dir)
    for target in model.targets:
        if not (keep_heads and target in targets):
            model.remove_head(target)
    for target in targets:
        if target not in model.heads:
            model.add_head(target)
    if freeze:
        model.freeze_backbone()
    return model


@contextlib.contextmanager
def keeping_dtype_policy():
    """Restores Keras' global dtype policy on exit: a run with
    ``--mixed-precision`` sets ``mixed_float16`` for its model, and a caller
    in the same process (tests, notebooks, ``tune.py``) keeps its own."""
    import keras
    previous = keras.mixed_precision.global_policy()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def set_run_dtype_policy(config: ExperimentConfig) -> None:
    """``mixed_float16`` for a run with ``train.mixed_precision``, else float32."""
    import keras
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if config.train.mixed_precision else "float32")


# Flags that may change when a run resumes: they do not change what its
# checkpoints mean (config field -> flag).
RESUME_SAFE = {"train.epochs": "--epochs", "train.patience": "--patience",
               "train.max_minutes": "--max-minutes",
               "train.checkpoint_every_steps": "--checkpoint-every",
               "train.recompute_blocks": "--recompute-blocks",
               "data.musdb_root": "--musdb-root"}
FIELD_FLAGS = {"model.targets": "--targets/--mtl", "model.bands": "--bands",
               "model.num_edges": "--num-edges", "model.feature_dim": "--feature-dim",
               "model.num_layers": "--num-layers",
               "model.norm": "--norm", "model.channels": "--channels",
               "train.batch_size": "--batch-size",
               "train.learning_rate": "--lr", "train.lr_decay": "--lr-decay",
               "train.lr_decay_epochs": "--lr-decay-epochs", "train.clip_norm": "--clip-norm",
               "train.seed": "--seed", "train.mixed_precision": "--mixed-precision",
               "train.target_weights": "--target-weights",
               "data.examples_per_epoch": "--examples-per-epoch",
               "data.valid_examples": "--valid-examples",
               "data.segment_seconds": "--segment-seconds",
               "data.valid_segment_seconds": "--valid-segment-seconds",
               "data.source_activity": "--no-activity-detection", "preset": "--preset",
               "data.builtin_dataset": "--dataset", "train.loss": "--loss"}


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Exit status of a run; ``prog`` names the command in usage and messages
    (default: ``fit.py``, or the script's name in usage)."""
    args = build_parser(prog).parse_args(argv)
    prog = prog or PROG
    try:
        quiet_tensorflow()  # seconds of importing: a Ctrl-C here is one line too
        with keeping_dtype_policy():
            return _run(args, prog)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted before training started; nothing to resume yet",
              file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - only the expected kinds get one line
        message = one_line_error(e)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2


def _flat(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "target_weights":
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def resumed_config(saved_path: str, args) -> ExperimentConfig:
    """The saved run's config with the given flags applied where that is
    safe (announced); flags that would change the run itself are refused."""
    saved = ExperimentConfig.from_json(saved_path, saved=True)
    requested = config_from_args(argparse.Namespace(**{**vars(args), "config": saved_path}),
                                 saved=True)
    old, new = _flat(saved.to_dict()), _flat(requested.to_dict())
    changed = sorted(k for k in old.keys() | new.keys()
                     if old.get(k) != new.get(k) and k != "name")
    refused = [k for k in changed if k not in RESUME_SAFE]
    if refused:
        listing = ", ".join(f"{FIELD_FLAGS.get(k, k)} ({k} {new.get(k)!r}; the run has "
                            f"{old.get(k)!r})" for k in refused)
        raise ConfigError(f"{os.path.dirname(saved_path) or '.'} is a run to resume and its "
                          f"config.json overrides {listing}: drop those flags to resume it, or "
                          f"give another --run-dir for a new run")
    for k in changed:
        print(f"resuming with {RESUME_SAFE[k]} {new[k]} (the run had {old[k]})")
    return requested


def _complete(trainer, run_dir: str) -> Optional[str]:
    """Why a restored run has nothing left to do, or None."""
    done, cfg = int(trainer.epoch.numpy()), trainer.train_cfg
    if done >= cfg.epochs:
        return (f"{run_dir} is already complete: {done} of {cfg.epochs} epochs trained (best "
                f"{_best_line(trainer)}); nothing was written. To train on, rerun with "
                f"--epochs {done + max(1, cfg.epochs // 2)} (any number above {done})")
    if trainer.out_of_time():
        used = trainer.trained_minutes()
        return (f"{run_dir} has used its time budget: {used:.1f} of {cfg.max_minutes:g} "
                f"minutes trained in {done} epochs (best {_best_line(trainer)}); nothing was "
                f"written. To train on, rerun with a --max-minutes above {used:.1f} (0: no "
                f"budget)")
    if cfg.patience and int(trainer.bad_epochs.numpy()) >= cfg.patience:
        return (f"{run_dir} stopped early after {done} epochs (no validation improvement for "
                f"{cfg.patience}); nothing was written. To train on, rerun with a --patience "
                f"above {cfg.patience}")
    return None


def _run(args, prog: str = PROG) -> int:
    # The strategy must exist before any other TensorFlow op (multi-worker).
    from bsrnn_tf.training.distribute import make_strategy, set_threads
    set_threads(args.threads)
    strategy = make_strategy(args.cpu_devices)

    import keras
    import tensorflow as tf

    from bsrnn_tf.models import build_separator, count_parameters
    from bsrnn_tf.training.trainer import TrainingError
    from bsrnn_tf.training.trainer_setup import make_trainer

    config = config_from_args(args)
    run_dir = args.run_dir or os.path.join("saved_models", config.name)
    check_run_dir(run_dir)
    saved = os.path.join(run_dir, CONFIG_FILE)
    if os.path.isdir(os.path.join(run_dir, "checkpoints")) and os.path.exists(saved):
        config = resumed_config(saved, args)
    if args.init_backbone and args.init_model:
        raise ConfigError("give --init-backbone (new heads) or --init-model (its heads kept), "
                          "not both")
    if args.freeze_backbone and not (args.init_backbone or args.init_model):
        raise ConfigError("--freeze-backbone needs --init-backbone RUN_DIR or --init-model "
                          "RUN_DIR")
    if args.init_backbone or args.init_model:
        config.train.init_backbone = args.init_backbone
        config.train.init_model = args.init_model
        config.train.freeze_backbone = bool(args.freeze_backbone)

    keras.utils.set_random_seed(config.train.seed)
    set_run_dtype_policy(config)
    check_segment_length(config)
    check_target_names(config)
    train_tracks, valid_tracks = load_train_valid(config, prog)
    check_segment_fits(config, train_tracks, valid_tracks)
    check_target_activity(config, train_tracks)

    with strategy.scope():
        start = config.train.init_backbone or config.train.init_model
        if start:
            model = _transfer_model(start, config.model.targets, config.train.freeze_backbone,
                                    keep_heads=bool(config.train.init_model))
            config.model = model.config_object()
        else:
            model = build_separator(config.model)
    trainer = make_trainer(model, config, run_dir, strategy, train_tracks, valid_tracks,
                           logdir=args.logdir, verbose=0 if args.quiet else 1)
    try:
        trainer.restore()
    except TrainingError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    complete = _complete(trainer, run_dir)
    if complete:
        print(complete)
        return 0
    os.makedirs(run_dir, exist_ok=True)
    atomic_write_text(saved, config.to_json() + "\n")
    print(f"run {run_dir}: {config.preset} preset, targets {' '.join(model.targets)}, "
          f"{model.backbone.num_bands} bands ({config.model.bands}), "
          f"{count_parameters(model)} parameters "
          f"({sum(int(tf.size(v)) for v in model.trainable_variables)} trainable), "
          f"{strategy.num_replicas_in_sync} replica(s) ({type(strategy).__name__}), "
          f"{len(train_tracks)} train / {len(valid_tracks)} validation tracks (about 14 % of "
          f"the train songs are held back for validation; the test songs are for evaluate.py)")
    return _train(trainer, run_dir, prog)


def _train(trainer, run_dir: str, prog: str = PROG) -> int:
    """Runs the epochs; one line for a stop, a Ctrl-C or the end."""
    import tensorflow as tf

    from bsrnn_tf.training.trainer import TrainingError
    from bsrnn_tf.training.trainer_setup import cleanup_worker_dir
    try:
        trainer.fit()
    except TrainingError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except tf.errors.InvalidArgumentError as e:  # a data assertion of the pipeline
        print(f"{prog}: error: {assert_message(e)}", file=sys.stderr)
        return 1
    except (OSError, tf.errors.OpError) as e:
        message = one_line_error(e) if isinstance(e, OSError) else write_failure(e)
        if message is None:
            raise
        latest = trainer.manager.latest_checkpoint
        print(f"{prog}: error: cannot write the run: {message}; "
              + (f"the last complete checkpoint {latest} is kept: rerun the same command to "
                 f"resume from it" if latest else "no checkpoint was saved yet"),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        latest = trainer.manager.latest_checkpoint
        print(f"{prog}: interrupted in epoch {int(trainer.epoch.numpy()) + 1}; "
              f"{len(trainer.history)} epoch(s) finished, "
              + (f"last checkpoint {latest}: rerun the same command to resume from it"
                 if latest else "no checkpoint saved yet"), file=sys.stderr)
        return 130
    finally:
        cleanup_worker_dir(trainer)
    model_file = os.path.join(run_dir, MODEL_FILE)
    if not os.path.exists(model_file):
        print(f"no model was written to {model_file}")
        return 1
    print(f"best model: {model_file} ({_best_line(trainer)}); "
          f"TensorBoard: {_tensorboard()} --logdir {trainer.logdir}")
    return 0


def _best_line(trainer) -> str:
    """The headline of the epoch ``model.keras`` holds (``best.json``): its
    validation gain over the best-scaled mixture (mean over targets) and
    uSDR; without validation the best score is minus the training loss, and
    is named so."""
    if trainer.valid_data is None:
        return f"no validation: chosen by the training loss, {-float(trainer.best_usdr.numpy()):.4f}"
    kept = (trainer.read_best() or {}).get("epoch")
    best = next((h for h in trainer.history if h.get("epoch") == kept and h.get("valid_usdr")),
                None)
    if best is None:  # a model saved before best.json: its epoch is not known
        return f"validation uSDR {float(trainer.best_usdr.numpy()):.2f} dB"
    usdr = sum(best["valid_usdr"].values()) / len(best["valid_usdr"])
    gain = best.get("valid_gain") or {}
    head = (f"validation gain over the best-scaled mixture {sum(gain.values()) / len(gain):+.2f} "
            f"dB mean, " if gain else "")
    return f"epoch {best['epoch']}: {head}uSDR {usdr:.2f} dB"


def _tensorboard() -> str:
    """``tensorboard`` as the user can run it: beside this Python (a venv's
    bin/) when it is there."""
    beside = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    return beside if os.path.exists(beside) else "tensorboard"


if __name__ == "__main__":
    sys.exit(main())
