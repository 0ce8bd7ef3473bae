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


def cumulative_norm(x, axes, eps=1e-5, valid=None):
    """The cumulative layer norm by an explicit loop over the frames (axis
    1): frame ``t`` normalised with the mean and variance over ``axes`` and
    the frames ``0..t`` alone (:func:`group_norm` of the frames so far).
    ``valid``: as for :func:`group_norm`."""
    x = np.asarray(x, np.float64)
    valid = np.ones_like(x) if valid is None else np.broadcast_to(valid, x.shape)
    out = np.zeros_like(x)
    for t in range(x.shape[1]):
        out[:, t] = group_norm(x[:, :t + 1], [1, *axes], eps, valid[:, :t + 1])[:, t]
    return out


def frame_pooled_norm(x, norm, axes, eps=1e-5):
    """A model norm where ``"chunk"`` pools over the frames (axis 1) and
    ``axes``: ``"chunk"`` over all frames, ``"frame"`` per frame,
    ``"cumulative"`` over the frames so far."""
    if norm == "cumulative":
        return cumulative_norm(x, axes, eps)
    return group_norm(x, [1, *axes] if norm == "chunk" else axes, eps)
