"""The built-in datasets, in the MUSDB18-HQ layout.

- :mod:`bsrnn_tf.datasets.synth`: synthesized songs (tones, formant vocals;
  the music in :mod:`~bsrnn_tf.datasets.synth_parts`, its signal building
  blocks in :mod:`~bsrnn_tf.datasets.synth_dsp`);
- :mod:`bsrnn_tf.datasets.sampled`: songs rendered from recorded instrument
  samples (General MIDI soundfonts through FluidSynth; composition in
  :mod:`~bsrnn_tf.datasets.compose`, instrument choice in
  :mod:`~bsrnn_tf.datasets.instruments`).
"""
