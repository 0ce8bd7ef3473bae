"""The built-in datasets, in the MUSDB18-HQ layout.

- :mod:`bsrnn_tf.datasets.synth`: synthesized songs (tones, formant vocals);
- :mod:`bsrnn_tf.datasets.sampled`: songs rendered from recorded instrument
  samples (General MIDI soundfonts through FluidSynth; composition in
  :mod:`~bsrnn_tf.datasets.compose`, instrument choice in
  :mod:`~bsrnn_tf.datasets.instruments`).
"""
