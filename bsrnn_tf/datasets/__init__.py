"""Built-in datasets beyond the synthesized one of :mod:`bsrnn_tf.data.generate`.

:mod:`bsrnn_tf.datasets.sampled` renders songs from recorded instrument
samples (General MIDI soundfonts through FluidSynth); see
:func:`~bsrnn_tf.datasets.sampled.make_sampled_dataset`.
"""
