"""Small-scale reproductions of the refined-BSRNN paper's experiments.

Thin drivers over ``training/fit.py`` and ``training/evaluate.py``; see
``experiments/README.md``.
"""
