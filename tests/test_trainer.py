"""The training step under each distribution strategy, NaN handling and
checkpoint state, on a deterministic synthetic dataset."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "helpers", "trainer_run.py")
ROOT = os.path.dirname(HERE)


def _run(args, env=None, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.Popen([sys.executable, RUNNER, *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def _weights(path):
    data = np.load(path)
    return [data[k] for k in data.files if k != "iterations"], int(data["iterations"])


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_mirrored_and_multiworker_match_one_device(tmp_path):
    """Same global batches: one device, MirroredStrategy over 2 logical CPUs
    and two MultiWorkerMirroredStrategy workers on localhost end with the
    same weights (clipping active: clip norm 0.5), the workers bit-identical."""
    single = _run([str(tmp_path / "single.npz"), str(tmp_path / "r1")])
    mirrored = _run([str(tmp_path / "mirrored.npz"), str(tmp_path / "r2"), "--cpu-devices", "2"])
    _finish(single)
    _finish(mirrored)
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = [_run([str(tmp_path / f"worker{i}.npz"), str(tmp_path / "r3")],
                    env={"TF_CONFIG": json.dumps({"cluster": cluster,
                                                  "task": {"type": "worker", "index": i}})})
               for i in range(2)]
    for w in workers:
        _finish(w)
    base, steps = _weights(tmp_path / "single.npz")
    assert steps == 3
    for name in ("mirrored", "worker0", "worker1"):
        weights, iterations = _weights(tmp_path / f"{name}.npz")
        assert iterations == 3
        for a, b in zip(base, weights):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
    w0, _ = _weights(tmp_path / "worker0.npz")
    w1, _ = _weights(tmp_path / "worker1.npz")
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))
    # Only the chief wrote a model; the other worker cleaned its scratch dir.
    assert (tmp_path / "r3" / "model.keras").exists()


@pytest.mark.slow
def test_workers_agree_to_stop_when_one_is_out_of_time(tmp_path):
    """Two MultiWorkerMirroredStrategy workers with different time budgets:
    the one out of time after epoch 1 stops the other there too (without the
    agreement the other would start epoch 2 alone and wait forever)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = [_run([str(tmp_path / f"worker{i}.npz"), str(tmp_path / "run"), "--steps", "1",
                     "--epochs", "3", "--max-minutes", budget],
                    env={"TF_CONFIG": json.dumps({"cluster": cluster,
                                                  "task": {"type": "worker", "index": i}})})
               for i, budget in enumerate(["1000", "1e-9"])]
    try:
        for w in workers:
            _finish(w, timeout=400)
    finally:
        for w in workers:
            w.kill()
    for i in range(2):
        _, iterations = _weights(tmp_path / f"worker{i}.npz")
        assert iterations == 1


def _trainer(tmp_path, data_fn, valid=None, steps=3, log=None, **train):
    import keras
    import tensorflow as tf
    from helpers.trainer_run import SEGMENT, TARGETS

    from bsrnn_tf.config import ExperimentConfig
    from bsrnn_tf.models import build_separator, preset
    from bsrnn_tf.training.trainer import Trainer

    keras.utils.set_random_seed(0)
    config = ExperimentConfig(preset="tiny", model=preset("tiny"))
    config.model.targets = list(TARGETS)
    config.data.segment_seconds = SEGMENT / 44100
    config.data.examples_per_epoch = 2 * steps
    config.train.batch_size = 2
    config.train.epochs = 1
    for k, v in train.items():
        setattr(config.train, k, v)
    model = build_separator(config.model)
    return Trainer(model, config, str(tmp_path), tf.distribute.get_strategy(), data_fn, valid,
                   verbose=0, log=log or (lambda s: None))


def _synthetic(poison_step=None):
    import tensorflow as tf
    from helpers.trainer_run import SEGMENT, TARGETS, examples

    def gen():
        for i, (mix, sources) in enumerate(examples(0)):
            if poison_step is not None and i == 2 * poison_step:
                mix = mix.copy()
                mix[100, 0] = np.nan
            yield mix, sources

    spec = tf.TensorSpec((SEGMENT, 2), tf.float32)
    return lambda ctx: tf.data.Dataset.from_generator(
        gen, output_signature=(spec, {t: spec for t in TARGETS})).batch(2, drop_remainder=True)


def test_nan_example_is_reported_and_not_trained_on(tmp_path):
    logs = []
    trainer = _trainer(tmp_path / "a", _synthetic(poison_step=1), log=logs.append)
    trainer.fit()
    assert any("NaN/Inf" in line and "step 2" in line for line in logs), logs
    assert all(np.all(np.isfinite(w.numpy())) for w in trainer.model.weights)
    assert trainer.history[-1]["skipped_examples"] == 1


def test_checkpoint_restores_weights_and_optimizer_state(tmp_path):
    first = _trainer(tmp_path, _synthetic(), steps=3)
    first.fit()
    slots = [v.numpy().copy() for v in first.optimizer.variables]
    weights = [w.numpy().copy() for w in first.model.weights]
    second = _trainer(tmp_path, _synthetic(), steps=3)
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(weights, second.model.weights))
    assert second.restore()
    assert int(second.optimizer.iterations.numpy()) == 3
    assert int(second.epoch.numpy()) == 1
    for a, b in zip(slots, second.optimizer.variables):
        np.testing.assert_array_equal(a, b.numpy())
    for a, b in zip(weights, second.model.weights):
        np.testing.assert_array_equal(a, b.numpy())


def test_time_budget_stops_after_the_epoch_that_reaches_it_and_counts_resumed_epochs(tmp_path):
    """max_minutes: the epoch that reaches the budget is the last; a resumed
    run counts the epochs of its history; a larger budget trains on; 0 is
    no budget."""
    logs = []
    first = _trainer(tmp_path / "a", _synthetic(), steps=1, epochs=3, max_minutes=1e-9,
                     log=logs.append)
    first.fit()
    assert [h["epoch"] for h in first.history] == [1]
    assert int(first.optimizer.iterations.numpy()) == 1
    assert any(line.startswith("time budget reached: ") and "(max_minutes 1e-09)" in line
               for line in logs), logs
    assert first.trained_minutes() == pytest.approx(first.history[0]["seconds"] / 60)
    again = _trainer(tmp_path / "a", _synthetic(), steps=1, epochs=3, max_minutes=1e-9)
    assert again.restore() and again.out_of_time()
    again.fit()
    assert int(again.optimizer.iterations.numpy()) == 1  # nothing more trained
    budget = again.trained_minutes() + 1e-9  # reached by the next epoch, whatever its time
    more = _trainer(tmp_path / "a", _synthetic(), steps=1, epochs=3, max_minutes=budget)
    assert more.restore() and not more.out_of_time()
    more.fit()
    assert [h["epoch"] for h in more.history] == [1, 2]
    unlimited = _trainer(tmp_path / "b", _synthetic(), steps=1, epochs=3, max_minutes=0.0)
    unlimited.fit()
    assert [h["epoch"] for h in unlimited.history] == [1, 2, 3]


def test_diverging_loss_stops_with_clear_error(tmp_path):
    from bsrnn_tf.training.trainer import TrainingError
    trainer = _trainer(tmp_path, _synthetic(), steps=3, learning_rate=1e30, clip_norm=0.0)
    with pytest.raises(TrainingError, match="non-finite loss"):
        trainer.fit()


def test_recomputed_blocks_train_like_stored_activations(tmp_path):
    plain = _trainer(tmp_path / "plain", _synthetic(), steps=2)
    plain.fit()
    recomputed = _trainer(tmp_path / "recomputed", _synthetic(), steps=2, recompute_blocks=True)
    assert recomputed.model.backbone.recompute_blocks and not plain.model.backbone.recompute_blocks
    recomputed.fit()
    assert int(recomputed.optimizer.iterations.numpy()) == 2
    assert plain.history[0]["train_loss"] == pytest.approx(recomputed.history[0]["train_loss"],
                                                           rel=1e-5)
    for a, b in zip(plain.model.weights, recomputed.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


def test_training_istft_length_comes_from_the_batch(tmp_path):
    """Each batch is inverted to its own length, not data.segment_seconds'."""
    import tensorflow as tf
    from helpers.trainer_run import SEGMENT, TARGETS
    trainer = _trainer(tmp_path, _synthetic())
    length = SEGMENT + 4096
    rng = np.random.default_rng(0)
    sources = {t: tf.constant(0.1 * rng.standard_normal((2, length, 2)), tf.float32)
               for t in TARGETS}
    losses, waves = trainer._losses(tf.add_n(list(sources.values())), sources, training=False)
    assert all(w.shape == (2, length, 2) for w in waves.values())
    assert all(np.all(np.isfinite(v.numpy())) for v in losses.values())


def test_trains_and_validates_on_chunks_of_different_lengths(tmp_path, generated_dataset):
    """0.5 s training chunks, 0.75 s validation chunks, all four targets (so
    the oracle IRM reference is inverted at the validation length too)."""
    import keras
    import tensorflow as tf

    from bsrnn_tf.config import ExperimentConfig
    from bsrnn_tf.data.musdb import SOURCES
    from bsrnn_tf.models import build_separator, preset
    from bsrnn_tf.training.trainer_setup import load_tracks_for, make_trainer

    keras.utils.set_random_seed(0)
    config = ExperimentConfig(preset="tiny", model=preset("tiny"))
    config.model.targets = list(SOURCES)
    config.data.musdb_root = generated_dataset
    config.data.segment_seconds, config.data.valid_segment_seconds = 0.5, 0.75
    config.data.examples_per_epoch, config.data.valid_examples = 2, 2
    config.data.source_activity = False
    config.train.batch_size, config.train.epochs = 2, 1
    train, valid = load_tracks_for(config)
    assert valid
    trainer = make_trainer(build_separator(config.model), config, str(tmp_path),
                           tf.distribute.get_strategy(), train, valid, verbose=0,
                           log=lambda s: None)
    mixture_spec = trainer.valid_data.element_spec[0]
    assert mixture_spec.shape == (2, int(0.75 * 44100), 2)
    history = trainer.fit()
    assert history[0]["train_loss"] > 0 and np.isfinite(history[0]["train_loss"])
    for values in (history[0]["valid_usdr"], history[0]["valid_gain"],
                   *trainer.valid_references.values()):
        assert set(values) == set(SOURCES) and np.all(np.isfinite(list(values.values())))
    assert set(trainer.valid_references) == {"scaled_mixture", "oracle_irm"}


# -- resuming from damaged checkpoint folders (issue 18, faults 1 and 2) -----------

def _two_checkpoints(tmp_path):
    """A finished 3-step run with ckpt-2 and ckpt-3 on disk; returns its
    checkpoint folder and the weights of ckpt-3."""
    trainer = _trainer(tmp_path, _synthetic(), steps=3, checkpoint_every_steps=1)
    trainer.fit()
    ckpts = tmp_path / "checkpoints"
    assert sorted(f for f in os.listdir(ckpts) if f.endswith(".index")) == \
        ["ckpt-2.index", "ckpt-3.index"]
    return ckpts, [w.numpy().copy() for w in trainer.model.weights]


@pytest.mark.parametrize("state", ["missing", "garbage"])
def test_restore_without_a_readable_state_file_uses_the_newest_checkpoint(tmp_path, state):
    ckpts, weights = _two_checkpoints(tmp_path)
    if state == "missing":
        (ckpts / "checkpoint").unlink()
    else:
        (ckpts / "checkpoint").write_text("model_checkpoint_path: {{{ not a proto\n")
    logs = []
    second = _trainer(tmp_path, _synthetic(), steps=3, log=logs.append)
    assert second.restore()
    assert int(second.optimizer.iterations.numpy()) == 3
    for a, b in zip(weights, second.model.weights):
        np.testing.assert_array_equal(a, b.numpy())
    assert any("missing or unreadable" in line for line in logs), logs
    assert second.manager.latest_checkpoint.endswith("ckpt-3")


@pytest.mark.parametrize("damage", ["truncated-data", "missing-index"])
def test_restore_falls_back_to_an_intact_older_checkpoint(tmp_path, damage):
    import tensorflow as tf
    ckpts, _ = _two_checkpoints(tmp_path)
    older = tf.train.load_checkpoint(str(ckpts / "ckpt-2"))
    step2 = {k: older.get_tensor(k) for k in older.get_variable_to_shape_map()
             if "model" in k and "OPTIMIZER" not in k}
    if damage == "truncated-data":
        data = ckpts / "ckpt-3.data-00000-of-00001"
        data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])
    else:
        (ckpts / "ckpt-3.index").unlink()
    logs = []
    second = _trainer(tmp_path, _synthetic(), steps=3, epochs=2, checkpoint_every_steps=1,
                      log=logs.append)
    assert second.restore()
    assert int(second.optimizer.iterations.numpy()) == 2
    assert any("ckpt-3 cannot be read" in line and "ckpt-2" in line for line in logs), logs
    assert (ckpts / "unreadable").is_dir() and not any(
        f.startswith("ckpt-3.") for f in os.listdir(ckpts))
    restored = tf.train.load_checkpoint(str(ckpts / "ckpt-2"))
    for k, v in step2.items():
        np.testing.assert_array_equal(v, restored.get_tensor(k))
    # Training on saves new checkpoints; the intact ckpt-2 is only swept once
    # two newer intact ones exist.
    second.fit()
    names = sorted(f for f in os.listdir(ckpts) if f.endswith(".index"))
    assert names == ["ckpt-5.index", "ckpt-6.index"], names
    for name in names:
        tf.train.load_checkpoint(str(ckpts / name[:-len(".index")])).get_variable_to_shape_map()


def test_restore_with_no_readable_checkpoint_is_a_clear_error_and_changes_nothing(tmp_path):
    from bsrnn_tf.training.trainer import TrainingError
    ckpts, _ = _two_checkpoints(tmp_path)
    for index in ckpts.glob("*.index"):
        index.unlink()
    before = sorted(os.listdir(ckpts))
    second = _trainer(tmp_path, _synthetic(), steps=3)
    with pytest.raises(TrainingError, match=r"no checkpoint can be read \(ckpt-3: missing file; "
                                            r"ckpt-2: missing file\)"):
        second.restore()
    assert sorted(os.listdir(ckpts)) == before


def test_restore_refuses_to_start_over_beside_a_trained_model(tmp_path):
    import shutil
    from bsrnn_tf.training.trainer import TrainingError
    first = _trainer(tmp_path, _synthetic(), steps=2)
    first.fit()
    assert (tmp_path / "model.keras").exists()
    shutil.rmtree(tmp_path / "checkpoints")
    second = _trainer(tmp_path, _synthetic(), steps=2)
    with pytest.raises(TrainingError, match="holds a trained model.keras but no checkpoint"):
        second.restore()


def test_epoch_line_gives_the_learning_rate_used_and_labels_means(tmp_path):
    logs = []
    trainer = _trainer(tmp_path, _synthetic(), steps=2, epochs=2, lr_decay=0.5,
                       lr_decay_epochs=1, log=logs.append)
    trainer.fit()
    lines = [line for line in logs if line.startswith("epoch ") and "mean loss" in line]
    assert len(lines) == 2, logs
    assert "lr 1.00e-03" in lines[0] and "lr 5.00e-04" in lines[1], lines
    assert trainer.history[1]["learning_rate"] == pytest.approx(5e-4)


def test_line_progress_writes_whole_lines_at_each_tenth():
    from bsrnn_tf.training.trainer import LineProgress
    lines = []
    progress = LineProgress(20, "epoch 3", lines.append)
    for step in range(1, 21):
        progress.update(step, [("mean_loss", float(step)), ("grad_norm", 1.0)])
    # marks at steps 2, 4, ..., 18 (tenths of 20); none at the last step (the
    # epoch's own line follows); each mean is over the steps so far.
    assert [line.split(",")[0] for line in lines] == [f"epoch 3: step {k}/20"
                                                      for k in range(2, 20, 2)]
    assert lines[0].split(", ")[1] == "mean loss 1.5000"      # (1 + 2) / 2
    assert lines[-1].split(", ")[1] == "mean loss 9.5000"     # mean of 1..18
    assert all("\r" not in line for line in lines)


# -- model.keras and the checkpoint stay a consistent pair (issue 26, item 3) -------

def _scored_trainer(tmp_path, scores, **train):
    """A trainer whose validation gives ``scores[epoch]`` (dB) for every target."""
    from helpers.trainer_run import TARGETS
    trainer = _trainer(tmp_path, _synthetic(), valid=object(), steps=2, **train)
    trainer.valid_references = {"scaled_mixture": {t: 0.0 for t in TARGETS}}
    trainer.validate = lambda writer, epoch: {t: scores[epoch] for t in TARGETS}
    return trainer


def _model_weights(path):
    from bsrnn_tf.models import load_separator
    return [w.numpy() for w in load_separator(str(path)).weights]


def _epochs(path):
    return [h["epoch"] for h in json.loads((path / "history.json").read_text())]


def test_stopped_between_model_and_checkpoint_writes_never_overwrites_a_better_model(
        tmp_path, monkeypatch):
    """Killed while the checkpoint of a better epoch 2 is written: the rerun
    of epoch 2 (worse this time) must not replace a better model.keras, and
    the history holds each epoch once."""
    import bsrnn_tf.training.trainer as trainer_module
    real_save = trainer_module.save_separator
    active, saved_scores = [], []

    def recording_save(model, *args):
        saved_scores.append(float(active[-1].best_usdr.numpy()))
        return real_save(model, *args)

    monkeypatch.setattr(trainer_module, "save_separator", recording_save)
    first = _scored_trainer(tmp_path, [1.0, 2.0], epochs=2)
    active.append(first)
    real_checkpoint = first.manager.save

    def dies_at_epoch_two(**kwargs):
        if int(first.epoch.numpy()) == 2:
            raise RuntimeError("killed")
        return real_checkpoint(**kwargs)

    first.manager.save = dies_at_epoch_two
    with pytest.raises(RuntimeError, match="killed"):
        first.fit()
    second = _scored_trainer(tmp_path, [1.0, 1.5], epochs=2)
    active.append(second)
    assert second.restore() and int(second.epoch.numpy()) == 1
    second.fit()
    assert _epochs(tmp_path) == [1, 2]
    assert saved_scores == sorted(saved_scores), saved_scores  # never a worse one after
    assert json.loads((tmp_path / "best.json").read_text())["score"] == saved_scores[-1]


def test_stopped_between_checkpoint_and_model_saves_the_model_on_resume(tmp_path, monkeypatch):
    import bsrnn_tf.training.trainer as trainer_module
    first = _scored_trainer(tmp_path, [1.0, 2.0], epochs=2)
    real_save = trainer_module.save_separator

    def dies_at_epoch_two(model, *args):
        if int(first.epoch.numpy()) == 2:
            raise RuntimeError("killed")
        return real_save(model, *args)

    monkeypatch.setattr(trainer_module, "save_separator", dies_at_epoch_two)
    with pytest.raises(RuntimeError, match="killed"):
        first.fit()
    best_weights = [w.numpy().copy() for w in first.model.weights]
    monkeypatch.setattr(trainer_module, "save_separator", real_save)
    logs = []
    second = _scored_trainer(tmp_path, [1.0, 2.0], epochs=2, log=logs.append)
    assert second.restore() and int(second.epoch.numpy()) == 2
    assert any("saved again from the checkpoint" in line for line in logs), logs
    for a, b in zip(best_weights, _model_weights(tmp_path)):
        np.testing.assert_array_equal(a, b)
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 2, "score": 2.0}
    assert _epochs(tmp_path) == [1, 2]


def test_fallback_past_an_unreadable_checkpoint_keeps_the_better_model(tmp_path):
    first = _scored_trainer(tmp_path, [1.0, 2.0], epochs=2)
    first.fit()
    best = _model_weights(tmp_path)
    data = tmp_path / "checkpoints" / "ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])
    logs = []
    second = _scored_trainer(tmp_path, [1.0, 1.5], epochs=2, log=logs.append)
    assert second.restore() and int(second.epoch.numpy()) == 1
    second.fit()  # epoch 2 again, worse than the model.keras of the lost epoch 2
    assert _epochs(tmp_path) == [1, 2]
    for a, b in zip(best, _model_weights(tmp_path)):
        np.testing.assert_array_equal(a, b)
    assert json.loads((tmp_path / "best.json").read_text())["score"] == 2.0
    assert any("is newer than the checkpoint" in line for line in logs), logs


def test_a_corrupt_history_is_moved_aside_with_a_warning(tmp_path):
    (tmp_path / "history.json").write_text("[{\"epoch\": 1, ")
    logs = []
    trainer = _trainer(tmp_path, _synthetic(), steps=2, log=logs.append)
    assert trainer.history == [] and (tmp_path / "history.json.unreadable").exists()
    assert any("cannot be read" in line for line in logs), logs
    trainer.fit()
    assert _epochs(tmp_path) == [1]


def test_threads_size_tensorflows_pools_before_it_starts_and_only_then():
    code = "\n".join([
        "import tensorflow as tf",
        "from bsrnn_tf.config import ConfigError",
        "from bsrnn_tf.training.distribute import set_threads",
        "for bad in (0, -2):",
        "    try:",
        "        set_threads(bad)",
        "    except ConfigError as e:",
        "        assert 'at least 1' in str(e), e",
        "    else:",
        "        raise SystemExit('accepted ' + str(bad))",
        "set_threads(1)",
        "print(float(tf.reduce_sum(tf.ones((64, 64)) @ tf.ones((64, 64)))))",
        "assert tf.config.threading.get_intra_op_parallelism_threads() == 1",
        "assert tf.config.threading.get_inter_op_parallelism_threads() == 1",
        "set_threads(1)  # the pools in effect: accepted",
        "set_threads(None)",
        "try:",
        "    set_threads(2)",
        "except ConfigError as e:",
        "    print('refused:', e)",
    ])
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == str(64.0 ** 3)
    assert lines[1].startswith("refused: --threads 2: TensorFlow has already started")
