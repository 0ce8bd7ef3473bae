"""The built-in datasets, in the MUSDB18-HQ layout.

- :mod:`bsrnn_tf.datasets.synth`: synthesized songs (tones, formant vocals;
  the music in :mod:`~bsrnn_tf.datasets.synth_parts`, its signal building
  blocks in :mod:`~bsrnn_tf.datasets.synth_dsp`);
- :mod:`bsrnn_tf.datasets.sampled`: songs rendered from recorded instrument
  samples (General MIDI soundfonts through FluidSynth; one song in
  :mod:`~bsrnn_tf.datasets.sampled_song`, FluidSynth and the soundfont files
  in :mod:`~bsrnn_tf.datasets.fluidsynth`; composition in
  :mod:`~bsrnn_tf.datasets.compose`, with the song's plan in
  :mod:`~bsrnn_tf.datasets.score` and each source's notes in
  :mod:`~bsrnn_tf.datasets.compose_parts`; instrument choice in
  :mod:`~bsrnn_tf.datasets.instruments`); its levers (:mod:`~bsrnn_tf.datasets.produced`):
  effect chains (:mod:`~bsrnn_tf.datasets.production`), recorded Hydrogen
  drum kits (:mod:`~bsrnn_tf.datasets.hydrogen`), sung vocals
  (:mod:`~bsrnn_tf.datasets.sung`); every source and effect in README.md;
- :mod:`bsrnn_tf.datasets.cache`: where a built-in dataset lives and how it
  is made there once (and ``GenerationError``);
  :mod:`bsrnn_tf.datasets.cli`: ``bsrnn-tf make-dataset``.
"""
