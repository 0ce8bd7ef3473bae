"""Export a trained separator (``bsrnn-tf export``).

The code is :mod:`bsrnn_tf.commands.export`; ``python export/export.py --help`` lists
the flags.
"""

from bsrnn_tf.commands.export import main

if __name__ == "__main__":
    raise SystemExit(main())
