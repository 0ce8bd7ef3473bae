"""Evaluate a separator (``bsrnn-tf evaluate``).

The code is :mod:`bsrnn_tf.commands.evaluate`; ``python training/evaluate.py --help`` lists
the flags.
"""

from bsrnn_tf.commands.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
