"""Small-scale reproductions of the refined-BSRNN paper's experiments.

Thin drivers over ``training/fit.py`` and ``training/evaluate.py`` (the code
of :mod:`bsrnn_tf.commands`); run them from the repository root as
``python -m experiments.<name>``, see ``experiments/README.md``.
"""
