"""bsrnn_tf: Band-Split RNN music source separation in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
