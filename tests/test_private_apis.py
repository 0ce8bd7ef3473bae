"""The private (or deprecated-namespace) Keras/TensorFlow APIs bsrnn_tf uses,
each where no public API does the job: these tests fail on an upgrade that
moves one, and check the fallback each use takes when it is gone.

- ``keras.src.backend.common.global_state``: suspending the loader's object
  sharing while a band-sequence block builds its ``Bidirectional``
  (``band_sequence._outside_object_sharing``); whatever Keras does, the
  wrapper is checked to hold its own LSTMs.
- ``Layer._tracker``: adding heads to a built separator (``Separator._unlocked``;
  also ``test_models.py::test_the_private_keras_apis_we_rely_on_still_exist``).
- ``tensorflow.python...GraphOrParentsInXlaContext``: the fused ``BlockLSTM``
  has no XLA kernel; when the probe is gone, ``"auto"`` does not fuse.
- ``tf.compat.v1.train.update_checkpoint_state``: rewriting the checkpoint
  index after a fallback restore.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf


def test_keras_object_sharing_state_is_what_band_sequence_suspends():
    from keras.src.saving import serialization_lib

    from bsrnn_tf.layers import band_sequence
    state = band_sequence._keras_global_state()
    assert state is not None, "keras.src.backend.common.global_state moved"
    # The keys are the ones Keras' loader fills in its sharing scope.
    with serialization_lib.ObjectSharingScope():
        live = [state.get_global_attribute(k) for k in band_sequence.SHARING_KEYS]
        assert all(v is not None for v in live), band_sequence.SHARING_KEYS
        with band_sequence._outside_object_sharing():
            assert [state.get_global_attribute(k) for k in band_sequence.SHARING_KEYS] == \
                [None, None]
        assert [state.get_global_attribute(k) for k in band_sequence.SHARING_KEYS] == live


def test_a_bidirectional_holding_another_blocks_lstm_is_a_clear_error(monkeypatch):
    """What the object sharing did before it was suspended (the wrapper got
    an LSTM of another block) is caught by a check that needs no private API."""
    from bsrnn_tf.layers import band_sequence
    ok = band_sequence._blstm(4, "auto", "float32", "mine")
    assert ok.forward_layer is not ok.backward_layer
    other = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))
    monkeypatch.setattr(keras.layers, "Bidirectional", lambda *args, **kwargs: other)
    with pytest.raises(RuntimeError, match="mine: keras.layers.Bidirectional received a "
                                           "shared forward LSTM"):
        band_sequence._blstm(4, "auto", "float32", "mine")


def test_xla_probe_exists_and_tells_xla_from_plain_graphs():
    from bsrnn_tf.layers import blstm
    assert blstm.xla_probe() is not None, "TensorFlow moved GraphOrParentsInXlaContext"
    seen = {}

    @tf.function(jit_compile=True)
    def compiled(x):
        seen["xla"] = blstm._in_xla_context()
        return x + 1

    @tf.function
    def plain(x):
        seen["plain"] = blstm._in_xla_context()
        return x + 1

    compiled(tf.constant(1.0))
    plain(tf.constant(1.0))
    assert seen == {"xla": True, "plain": False}


def test_auto_does_not_fuse_when_the_xla_probe_is_gone(monkeypatch):
    from bsrnn_tf.layers import BandSequence, blstm
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("auto never fuses with a GPU present")
    layer = BandSequence(4).time_rnn
    with blstm.lstm_implementation("auto"):
        assert blstm.use_fused(layer)  # CPU, float32, outside XLA: fused
        monkeypatch.setattr(blstm, "xla_probe", lambda: None)
        assert blstm._in_xla_context() is None
        assert not blstm.use_fused(layer)  # cannot tell: never into XLA
    with blstm.lstm_implementation("fused"):
        assert blstm.use_fused(layer)  # an explicit choice is honoured


def test_update_checkpoint_state_exists_and_writes_the_index(tmp_path):
    from bsrnn_tf.training.checkpoints import update_checkpoint_state_function
    update = update_checkpoint_state_function()
    assert update is tf.compat.v1.train.update_checkpoint_state
    prefixes = [str(tmp_path / "ckpt-1"), str(tmp_path / "ckpt-2")]
    update(str(tmp_path), prefixes[1], all_model_checkpoint_paths=prefixes,
           all_model_checkpoint_timestamps=[1.0, 2.0], last_preserved_timestamp=0.5)
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == prefixes[1]
    assert list(state.all_model_checkpoint_paths) == prefixes
    np.testing.assert_allclose(list(state.all_model_checkpoint_timestamps), [1.0, 2.0])


def test_separator_adds_heads_with_or_without_keras_tracker():
    from bsrnn_tf.models import build_separator, preset
    model = build_separator(preset("tiny"), targets=["bass"])
    assert model._tracker.locked
    model.add_head("piano")
    assert model._tracker.locked and model.targets == ["bass", "piano"]
    # A Keras without the private tracker: nothing to unlock, nothing breaks.
    import types
    entered = []
    with type(model)._unlocked(types.SimpleNamespace()):
        entered.append(True)
    assert entered == [True]
