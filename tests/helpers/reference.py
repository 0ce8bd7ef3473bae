"""Independent numpy (float64) references shared by several test files."""

import numpy as np


def group_norm(x, axes, eps=1e-5, valid=None):
    """Zero mean, unit variance of ``x`` over ``axes`` (a group norm with one
    group, or a layer norm when ``axes`` is the last axis), without affine
    parameters. ``valid``: optional 1/0 array broadcastable to ``x``; only its
    1 entries count, and the 0 entries come out 0."""
    x = np.asarray(x, np.float64)
    axes = tuple(axes)
    if valid is None:
        valid = np.ones_like(x)
    valid = np.broadcast_to(np.asarray(valid, np.float64), x.shape)
    count = valid.sum(axis=axes, keepdims=True)
    mean = (x * valid).sum(axis=axes, keepdims=True) / count
    var = (((x - mean) * valid) ** 2).sum(axis=axes, keepdims=True) / count
    return (x - mean) / np.sqrt(var + eps) * valid
