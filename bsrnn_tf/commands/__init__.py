"""The ``bsrnn-tf fit | evaluate | tune | export`` commands (also run as
``python training/fit.py``, ``training/evaluate.py``, ``training/tune.py``
and ``export/export.py``): each module has ``build_parser()`` and
``main(argv=None, prog=None)``, which returns the exit status."""
