"""Explicit connectivity of rate layers between ensembles: convolution taps, dense layers, cells per unit.

Pure numpy. Units are flattened in torch order (C x H x W); a pair ``(pre, post, w)`` is one
nonzero-capable weight of the rate layer, ``v_post = sum_pre w x_pre``.
"""
from __future__ import annotations

import numpy as np

from neurons.common import MburstError

__all__ = ["conv_pairs", "dense_pairs", "expand_pre_cells"]


def conv_pairs(in_shape, weight: np.ndarray, stride: int, padding: int):
    """Explicit connectivity of a 2-D convolution (cross-correlation, as ``torch.nn.functional.conv2d``).

    ``v[oc, oy, ox] = sum_{ic, ky, kx} W[oc, ic, ky, kx] x[ic, oy s - p + ky, ox s - p + kx]``;
    zero-padding taps have no presynaptic unit and are dropped.

    Parameters
    ----------
    in_shape : tuple of int
        Input grid ``(C_in, H, W)``.
    weight : numpy.ndarray, shape (C_out, C_in, kh, kw)
        Kernel.
    stride, padding : int
        As in ``conv2d``.

    Returns
    -------
    pre, post : numpy.ndarray of int64, shape (K,)
        Flattened input unit and output unit of each tap inside the image.
    w : numpy.ndarray of float, shape (K,)
        The tap's weight.

    Raises
    ------
    MburstError
        When the kernel's input channels differ from ``in_shape[0]``.
    """
    c_in, h, w_in = in_shape
    c_out, c_in2, kh, kw = weight.shape
    if c_in2 != c_in:
        raise MburstError(f"conv_pairs: weight has {c_in2} input channels, input has {c_in}")
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w_in + 2 * padding - kw) // stride + 1
    oc, oy, ox, ic, ky, kx = np.meshgrid(np.arange(c_out), np.arange(oh), np.arange(ow), np.arange(c_in),
                                         np.arange(kh), np.arange(kw), indexing="ij")
    iy = oy * stride - padding + ky
    ix = ox * stride - padding + kx
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w_in)
    pre = (ic * h + iy) * w_in + ix
    post = (oc * oh + oy) * ow + ox
    wv = weight[oc, ic, ky, kx]
    return pre[ok].astype(np.int64), post[ok].astype(np.int64), wv[ok].astype(float)


def dense_pairs(weight: np.ndarray, offset: int = 0, n_in: int | None = None):
    """All pairs of a dense layer ``v = W x`` restricted to the inputs ``[offset, offset + n_in)``.

    Parameters
    ----------
    weight : numpy.ndarray, shape (n_out, n_total)
        Weight matrix.
    offset : int
        First input column of the presynaptic layer (its place in a concatenated input).
    n_in : int, optional
        Units of the presynaptic layer (default: all columns from ``offset`` on).

    Returns
    -------
    pre, post : numpy.ndarray of int64, shape (n_out * n_in,)
        Presynaptic unit (counted from ``offset``) and postsynaptic unit.
    w : numpy.ndarray of float, shape (n_out * n_in,)
        ``W[post, offset + pre]``.
    """
    n_out, n_total = weight.shape
    n_in = n_total - offset if n_in is None else n_in
    post, pre = np.meshgrid(np.arange(n_out), np.arange(n_in), indexing="ij")
    wv = weight[:, offset:offset + n_in]
    return pre.ravel().astype(np.int64), post.ravel().astype(np.int64), wv.ravel().astype(float)


def expand_pre_cells(pre, post, w, n_pre: int):
    """Unit pairs -> synapses from every cell of pre unit ``a`` onto post unit ``b``'s shared current.

    Parameters
    ----------
    pre, post : numpy.ndarray of int, shape (K,)
        Unit pairs.
    w : numpy.ndarray, shape (K,)
        Their weights.
    n_pre : int
        Cells per presynaptic unit (cell ``a n_pre + r`` belongs to unit ``a``).

    Returns
    -------
    i : numpy.ndarray of int, shape (K n_pre,)
        Presynaptic cell.
    j : numpy.ndarray of int, shape (K n_pre,)
        Postsynaptic *unit*.
    w_cell : numpy.ndarray, shape (K n_pre,)
        ``w / n_pre``, so that the summed drive equals ``w`` times the ensemble-mean rate.
    """
    r = np.arange(n_pre)
    i = (pre[:, None] * n_pre + r[None, :]).ravel()
    j = np.repeat(post, n_pre)
    return i, j, np.repeat(w / n_pre, n_pre)
