"""The training loop: :mod:`~bsrnn_tf.training.losses` (the BSRNN loss and its
multi-task sum), :mod:`~bsrnn_tf.training.trainer` (the custom ``strategy.run``
loop) and :mod:`~bsrnn_tf.training.trainer_setup` (tracks, pipelines and
clean-up for a ``Trainer``), :mod:`~bsrnn_tf.training.validation`,
:mod:`~bsrnn_tf.training.summaries` (TensorBoard),
:mod:`~bsrnn_tf.training.checkpoints` and :mod:`~bsrnn_tf.training.distribute`.
"""
