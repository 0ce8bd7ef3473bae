"""Keras Tuner search over a model's shape (``bsrnn-tf tune``).

The code is :mod:`bsrnn_tf.commands.tune`; ``python training/tune.py --help`` lists
the flags.
"""

from bsrnn_tf.commands.tune import main

if __name__ == "__main__":
    raise SystemExit(main())
