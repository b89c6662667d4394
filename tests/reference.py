"""Slow, obviously correct NumPy oracles for the operators fastconv implements.

Everything here is computed in float64 with explicit Python loops over kernel offsets, readable
``x[n, c, h, w]``-style indexing and ``np.pad`` for padding. It shares no code with the package:
a test compares fastconv against these functions, never against fastconv itself.

Sections, one per operator family (later issues add backward and pooling oracles here):

- conv2d (forward)
"""
import numpy as np


def _pair(value):
    """An int or an (h, w) pair as a tuple of two ints."""
    if isinstance(value, (tuple, list)):
        h, w = value
        return int(h), int(w)
    return int(value), int(value)


def _padding_pairs(padding):
    """((top, bottom), (left, right)) from an int, an (h, w) pair or a pair of pairs."""
    if isinstance(padding, (tuple, list)):
        ph, pw = padding
        if isinstance(ph, (tuple, list)):
            (top, bottom), (left, right) = ph, pw
            return (int(top), int(bottom)), (int(left), int(right))
        return (int(ph), int(ph)), (int(pw), int(pw))
    p = int(padding)
    return (p, p), (p, p)


# --------------------------------------------------------------------------------------------
# conv2d (forward)
# --------------------------------------------------------------------------------------------

def same_padding(kernel_size, dilation=(1, 1)):
    """PyTorch's padding="same" for stride 1: total dilation*(F-1) per axis, the odd one extra
    at the bottom/right. Returns ((top, bottom), (left, right))."""
    pads = []
    for f, d in zip(_pair(kernel_size), _pair(dilation)):
        total = d * (f - 1)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def conv2d_reference(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1),
                     groups=1):
    """Cross-correlation as PyTorch's conv2d defines it, in float64.

    x: (N, C, H, W); w: (K, C/groups, FH, FW); b: (K,) or None.
    stride, dilation: int or (h, w). padding: int, (h, w) or ((top, bottom), (left, right)).

    y[n, k, ho, wo] = b[k] + sum over c in k's group, fh, fw of
        w[k, c - first channel of the group, fh, fw]
        * xpad[n, c, ho*SH + fh*DH, wo*SW + fw*DW]
    where xpad is x with zeros added around H and W. Returns (N, K, HO, WO) float64.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    SH, SW = _pair(stride)
    DH, DW = _pair(dilation)
    (top, bottom), (left, right) = _padding_pairs(padding)
    N, C, H, W = x.shape
    K, CG, FH, FW = w.shape
    assert C == CG * groups and K % groups == 0
    KG = K // groups  # filters per group

    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    HP, WP = xpad.shape[2], xpad.shape[3]
    HO = (HP - DH * (FH - 1) - 1) // SH + 1
    WO = (WP - DW * (FW - 1) - 1) // SW + 1
    assert HO >= 1 and WO >= 1

    y = np.zeros((N, K, HO, WO), dtype=np.float64)
    for g in range(groups):
        filters = range(g * KG, (g + 1) * KG)
        channels = range(g * CG, (g + 1) * CG)
        for fh in range(FH):
            for fw in range(FW):
                # The input pixels this kernel tap (fh, fw) sees, for every output (ho, wo):
                # rows fh*DH + ho*SH and columns fw*DW + wo*SW of the padded input.
                h0 = fh * DH
                w0 = fw * DW
                window = xpad[:, :, h0:h0 + SH * (HO - 1) + 1:SH, w0:w0 + SW * (WO - 1) + 1:SW]
                assert window.shape[2:] == (HO, WO)
                for k in filters:
                    for ci, c in enumerate(channels):
                        y[:, k, :, :] += w[k, ci, fh, fw] * window[:, c, :, :]
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        for k in range(K):
            y[:, k, :, :] += b[k]
    return y


def conv2d_reference_pointwise(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)),
                               dilation=(1, 1), groups=1):
    """The same definition written element by element (six nested loops): an independent check
    of `conv2d_reference` itself on tiny shapes. Slow; use only for a few elements."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    SH, SW = _pair(stride)
    DH, DW = _pair(dilation)
    (top, bottom), (left, right) = _padding_pairs(padding)
    N, C, H, W = x.shape
    K, CG, FH, FW = w.shape
    KG = K // groups
    HO = (H + top + bottom - DH * (FH - 1) - 1) // SH + 1
    WO = (W + left + right - DW * (FW - 1) - 1) // SW + 1
    y = np.zeros((N, K, HO, WO), dtype=np.float64)
    for n in range(N):
        for k in range(K):
            g = k // KG
            for ho in range(HO):
                for wo in range(WO):
                    total = 0.0 if b is None else float(b[k])
                    for ci in range(CG):
                        c = g * CG + ci
                        for fh in range(FH):
                            for fw in range(FW):
                                h = ho * SH + fh * DH - top
                                col = wo * SW + fw * DW - left
                                if 0 <= h < H and 0 <= col < W:
                                    total += w[k, ci, fh, fw] * x[n, c, h, col]
                    y[n, k, ho, wo] = total
    return y
