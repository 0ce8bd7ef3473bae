"""The model learns: a short run through the real training step, on fixed
chunks of one generated song, must pass the best-scaled mixture (what no
separation reaches) for every target on those chunks. A model that only
shrinks its estimates, a broken gradient path or a mask that cannot
change fails here."""

import numpy as np
import pytest
import tensorflow as tf


@pytest.mark.slow
def test_overfits_one_song_past_the_scaled_mixture(tmp_path):
    import keras

    from bsrnn_tf.config import ExperimentConfig
    from bsrnn_tf.datasets.synth import render_song
    from bsrnn_tf.data.musdb import SOURCES
    from bsrnn_tf.models import build_separator, preset
    from bsrnn_tf.preprocess import normalize_example
    from bsrnn_tf.training.trainer import Trainer

    keras.utils.set_random_seed(0)
    _, stems = render_song(seed=5, subset="train", index=0, seconds=8.0, sample_rate=44100)
    config = ExperimentConfig(preset="tiny")
    config.model = preset("tiny")
    config.model.targets = list(SOURCES)
    config.data.segment_seconds = 0.5
    config.data.examples_per_epoch = 8 * 10  # 10 steps of the 8 fixed chunks
    config.train.batch_size = 8
    config.train.learning_rate = 3e-3
    config.train.loss = "bsrnn+sdr"  # the cpu preset's
    config.train.epochs = 8
    config.train.patience = 0
    segment = int(0.5 * 44100)
    starts = np.linspace(0, 8 * 44100 - segment, 8).astype(int)
    sources = {s: np.stack([stems[s][a:a + segment] for a in starts]).astype(np.float32) / 32768
               for s in SOURCES}
    mixture, sources = normalize_example(tf.constant(sum(sources.values())),
                                         {s: tf.constant(v) for s, v in sources.items()})
    chunks = tf.data.Dataset.from_tensors((mixture, sources))
    model = build_separator(config.model)
    trainer = Trainer(model, config, str(tmp_path), tf.distribute.get_strategy(),
                      lambda ctx: chunks.repeat(10), chunks, log=lambda _: None, verbose=0)
    history = trainer.fit()
    first, last = history[0]["valid_gain"], history[-1]["valid_gain"]
    assert all(last[t] > 0.0 for t in SOURCES), (first, last)
    assert np.mean(list(last.values())) > 1.0, (first, last)
    assert np.mean(list(last.values())) > np.mean(list(first.values())) + 2.0, (first, last)
