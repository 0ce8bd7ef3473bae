"""Running a trained separator: :mod:`~bsrnn_tf.inference.overlap_add` (chunked
overlap-add over any ``chunk -> {target: estimate}``),
:mod:`~bsrnn_tf.inference.backends` (one ``Backend`` per artifact: Keras,
SavedModel, TFLite), :mod:`~bsrnn_tf.inference.separate` (the ``separate()``
API) and :mod:`~bsrnn_tf.inference.separate_cli` (``bsrnn-tf separate``),
:mod:`~bsrnn_tf.inference.streaming` (a causal model one hop at a time) and
:mod:`~bsrnn_tf.inference.stream_cli` (``bsrnn-tf stream``),
:mod:`~bsrnn_tf.inference.pretrained` (the shipped model's location).
"""
