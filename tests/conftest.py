"""Shared test set-up: quiet TensorFlow, fixed seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def generated_dataset(tmp_path_factory):
    """A small built-in generated dataset (MUSDB18-HQ layout): 4 train and
    2 test tracks of 8 s, seed 0. Returns its root (str); do not modify it."""
    from bsrnn_tf.datasets.synth import make_dataset
    root = tmp_path_factory.mktemp("generated") / "musdb"
    return make_dataset(str(root), tracks_train=4, tracks_test=2, seconds=8.0, seed=0)
