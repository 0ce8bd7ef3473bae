"""Keras layers of BSRNN (all registered serializable under ``bsrnn_tf``)."""

from bsrnn_tf.layers.band_sequence import BandSequence
from bsrnn_tf.layers.band_split import BandSplit
from bsrnn_tf.layers.fused_lstm import (get_lstm_implementation, lstm_implementation,
                                        set_lstm_implementation)
from bsrnn_tf.layers.mask_head import MaskHead, apply_mask
from bsrnn_tf.layers.stft import ISTFT, STFT

__all__ = ["BandSequence", "BandSplit", "ISTFT", "MaskHead", "STFT", "apply_mask",
           "get_lstm_implementation", "lstm_implementation", "set_lstm_implementation"]
