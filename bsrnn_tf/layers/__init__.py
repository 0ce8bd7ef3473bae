"""Keras layers of BSRNN (all registered serializable under ``bsrnn_tf``);
the STFT and iSTFT are functions in :mod:`bsrnn_tf.layers.stft`."""

from bsrnn_tf.layers.band_sequence import BandSequence
from bsrnn_tf.layers.band_split import BandSplit
from bsrnn_tf.layers.blstm import (get_lstm_implementation, lstm_implementation,
                                        set_lstm_implementation)
from bsrnn_tf.layers.mask_head import MaskHead, apply_mask

__all__ = ["BandSequence", "BandSplit", "MaskHead", "apply_mask",
           "get_lstm_implementation", "lstm_implementation", "set_lstm_implementation"]
