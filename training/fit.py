"""Train a BSRNN separator (``bsrnn-tf fit``).

The code is :mod:`bsrnn_tf.commands.fit`; ``python training/fit.py --help`` lists
the flags.
"""

from bsrnn_tf.commands.fit import main

if __name__ == "__main__":
    raise SystemExit(main())
