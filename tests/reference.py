"""Slow, obviously correct NumPy oracles for the operators fastconv implements.

Everything here is computed in float64 with explicit Python loops over kernel offsets, readable
``x[n, c, h, w]``-style indexing and ``np.pad`` for padding. It shares no code with the package:
a test compares fastconv against these functions, never against fastconv itself.

Sections, one per operator family:

- conv2d (forward)
- conv2d backward (dx, dw, db) and conv_transpose2d
- pooling: max (values and indices, PyTorch's CPU rule literally), average, power-average (Lp),
  and their backward passes
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


# --------------------------------------------------------------------------------------------
# conv2d backward and conv_transpose2d
# --------------------------------------------------------------------------------------------

def conv2d_backward_reference(dy, x, w, stride=(1, 1), padding=((0, 0), (0, 0)),
                              dilation=(1, 1), groups=1):
    """Gradients of y = conv2d_reference(x, w, b, ...) for the output gradient dy, in float64.

    dy: (N, K, HO, WO) (the forward output's shape); x, w, stride, padding, dilation, groups as
    in conv2d_reference (padding may be asymmetric, e.g. PyTorch's "same" with an even kernel).

    Every dy[n, k, ho, wo] is scattered through its window: for each kernel tap (fh, fw) and
    input channel c of k's group (ci = c - the group's first channel), with
    h = ho*SH + fh*DH and col = wo*SW + fw*DW,
        dxpad[n, c, h, col] += w[k, ci, fh, fw] * dy[n, k, ho, wo]
        dw[k, ci, fh, fw]   += xpad[n, c, h, col] * dy[n, k, ho, wo]
    then dx is dxpad without its padding, and db[k] = sum of dy[:, k]. Returns (dx, dw, db) in
    float64 with the shapes of x, w and (K,).
    """
    dy = np.asarray(dy, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    SH, SW = _pair(stride)
    DH, DW = _pair(dilation)
    (top, bottom), (left, right) = _padding_pairs(padding)
    N, C, H, W = x.shape
    K, CG, FH, FW = w.shape
    assert C == CG * groups and K % groups == 0
    KG = K // groups

    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    HP, WP = xpad.shape[2], xpad.shape[3]
    HO = (HP - DH * (FH - 1) - 1) // SH + 1
    WO = (WP - DW * (FW - 1) - 1) // SW + 1
    assert dy.shape == (N, K, HO, WO), (dy.shape, (N, K, HO, WO))

    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    for g in range(groups):
        filters = range(g * KG, (g + 1) * KG)
        channels = range(g * CG, (g + 1) * CG)
        for fh in range(FH):
            for fw in range(FW):
                # Tap (fh, fw) of output (ho, wo) reads padded pixel
                # (fh*DH + ho*SH, fw*DW + wo*SW): these strided slices hold it for every (ho, wo).
                rows = slice(fh * DH, fh * DH + SH * (HO - 1) + 1, SH)
                cols = slice(fw * DW, fw * DW + SW * (WO - 1) + 1, SW)
                for k in filters:
                    for ci, c in enumerate(channels):
                        dxpad[:, c, rows, cols] += w[k, ci, fh, fw] * dy[:, k, :, :]
                        dw[k, ci, fh, fw] += np.sum(xpad[:, c, rows, cols] * dy[:, k, :, :])
    dx = dxpad[:, :, top:top + H, left:left + W]
    db = dy.sum(axis=(0, 2, 3))
    return dx, dw, db


def conv_transpose2d_reference(x, w, b=None, stride=(1, 1), padding=(0, 0),
                               output_padding=(0, 0), groups=1, dilation=(1, 1)):
    """Transposed convolution as PyTorch's conv_transpose2d defines it, in float64.

    x: (N, C_in, H, W); w: (C_in, C_out/groups, FH, FW); b: (C_out,) or None. All parameters are
    ints or (h, w) pairs; argument order is PyTorch's.

    Every input element is scattered, times its filter, into a full-size output
        yfull[n, g*C_out/groups + co, h*SH + fh*DH, col*SW + fw*DW] += x[n, ci, h, col]
                                                                     * w[ci, co, fh, fw]
    (g = the group of input channel ci) of (H-1)*SH + DH*(FH-1) + 1 + output_padding rows, from
    which `padding` rows are cut at the top and bottom (the extra output_padding rows stay at the
    bottom). Returns (N, C_out, HO, WO) float64 with
    HO = (H-1)*SH - 2*PH + DH*(FH-1) + output_padding + 1, likewise WO.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    SH, SW = _pair(stride)
    PH, PW = _pair(padding)
    OPH, OPW = _pair(output_padding)
    DH, DW = _pair(dilation)
    N, C_in, H, W = x.shape
    assert w.shape[0] == C_in and C_in % groups == 0
    _, COG, FH, FW = w.shape
    CIG = C_in // groups
    C_out = COG * groups

    full_h = (H - 1) * SH + DH * (FH - 1) + 1 + OPH
    full_w = (W - 1) * SW + DW * (FW - 1) + 1 + OPW
    yfull = np.zeros((N, C_out, full_h, full_w))
    for g in range(groups):
        for ci in range(g * CIG, (g + 1) * CIG):
            for co_in_group in range(COG):
                co = g * COG + co_in_group
                for fh in range(FH):
                    for fw in range(FW):
                        # Input pixel (h, w) lands at (h*SH + fh*DH, w*SW + fw*DW) for every
                        # (h, w) at once.
                        rows = slice(fh * DH, fh * DH + SH * (H - 1) + 1, SH)
                        cols = slice(fw * DW, fw * DW + SW * (W - 1) + 1, SW)
                        yfull[:, co, rows, cols] += w[ci, co_in_group, fh, fw] * x[:, ci, :, :]
    HO = (H - 1) * SH - 2 * PH + DH * (FH - 1) + OPH + 1
    WO = (W - 1) * SW - 2 * PW + DW * (FW - 1) + OPW + 1
    assert HO >= 0 and WO >= 0
    y = yfull[:, :, PH:PH + HO, PW:PW + WO].copy()
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        for co in range(C_out):
            y[:, co, :, :] += b[co]
    return y


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------

def pool_output_size(size, kernel_size, stride, padding=0, dilation=1, ceil_mode=False):
    """PyTorch's pooling output length along one axis: the number of window positions, rounded
    down, or up with ceil_mode; with ceil_mode a last window that would start beyond the input
    and its left/top padding (start >= size + padding) is dropped."""
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1          # ceil(span / stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1              # floor(span / stride) + 1
    return out


def _pool_parameters(kernel_size, stride, padding, dilation):
    kernel_size = _pair(kernel_size)
    stride = kernel_size if stride is None else _pair(stride)
    return kernel_size, stride, _pair(padding), _pair(dilation)


def max_pool2d_reference(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling with PyTorch's CPU rule, written out literally. Returns (y, indices): y in
    float64 (the input's values, so exact), indices int64 flat offsets h*W + w into each plane.

    For output (ho, wo), along each axis: start = ho*S - P, end = min(start + (K-1)*D + 1, H),
    then `while start < 0: start += D`. The running maximum starts at -inf with index
    start_row*W + start_col (so a window of only -inf, or with no input element at all, reports
    its first in-bounds position, or a position past the plane). Elements are visited row-major,
    rows start, start+D, ... < end, and one replaces the maximum when `val > max or isnan(val)`:
    ties keep the first maximum, NaN beats everything and a later NaN replaces an earlier one.
    The loops run over (ho, wo, h, w); each step handles all N*C planes at once.
    """
    x = np.asarray(x, dtype=np.float64)
    (KH, KW), (SH, SW), (PH, PW), (DH, DW) = _pool_parameters(kernel_size, stride, padding,
                                                                dilation)
    N, C, H, W = x.shape
    HO = pool_output_size(H, KH, SH, PH, DH, ceil_mode)
    WO = pool_output_size(W, KW, SW, PW, DW, ceil_mode)
    assert HO >= 1 and WO >= 1
    y = np.empty((N, C, HO, WO))
    indices = np.empty((N, C, HO, WO), dtype=np.int64)
    for ho in range(HO):
        h_start = ho * SH - PH
        h_end = min(h_start + (KH - 1) * DH + 1, H)
        while h_start < 0:
            h_start += DH
        for wo in range(WO):
            w_start = wo * SW - PW
            w_end = min(w_start + (KW - 1) * DW + 1, W)
            while w_start < 0:
                w_start += DW
            best = np.full((N, C), -np.inf)
            best_index = np.full((N, C), h_start * W + w_start, dtype=np.int64)
            for h in range(h_start, h_end, DH):
                for w in range(w_start, w_end, DW):
                    val = x[:, :, h, w]
                    take = (val > best) | np.isnan(val)
                    best = np.where(take, val, best)
                    best_index = np.where(take, h * W + w, best_index)
            y[:, :, ho, wo] = best
            indices[:, :, ho, wo] = best_index
    return y, indices


def _avg_windows(H, W, kernel_size, stride, padding, ceil_mode):
    """Yield (ho, wo, (h0, h1, w0, w1), padded_count, count) for PyTorch's average pooling: the
    window [start, start+K) clipped to the padded input [-P, size+P) gives padded_count, clipped
    to the input [0, size) gives rows h0..h1-1, columns w0..w1-1 and count."""
    (KH, KW), (SH, SW), (PH, PW), _ = _pool_parameters(kernel_size, stride, padding, 1)
    HO = pool_output_size(H, KH, SH, PH, 1, ceil_mode)
    WO = pool_output_size(W, KW, SW, PW, 1, ceil_mode)
    assert HO >= 1 and WO >= 1
    for ho in range(HO):
        h_start = ho * SH - PH
        h_end = min(h_start + KH, H + PH)
        for wo in range(WO):
            w_start = wo * SW - PW
            w_end = min(w_start + KW, W + PW)
            padded_count = (h_end - h_start) * (w_end - w_start)
            h0, h1 = max(h_start, 0), min(h_end, H)
            w0, w1 = max(w_start, 0), min(w_end, W)
            yield ho, wo, (h0, h1, w0, w1), padded_count, max(h1 - h0, 0) * max(w1 - w0, 0)


def _avg_divisor(padded_count, count, count_include_pad, divisor_override):
    if divisor_override is not None:
        return divisor_override
    return padded_count if count_include_pad else count


def avg_pool2d_output_shape(input_shape, kernel_size, stride=None, padding=0, ceil_mode=False):
    N, C, H, W = input_shape
    (KH, KW), (SH, SW), (PH, PW), _ = _pool_parameters(kernel_size, stride, padding, 1)
    return (N, C, pool_output_size(H, KH, SH, PH, 1, ceil_mode),
            pool_output_size(W, KW, SW, PW, 1, ceil_mode))


def avg_pool2d_reference(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                         count_include_pad=True, divisor_override=None):
    """Average pooling as PyTorch defines it, in float64: each window's sum over its input
    elements divided by divisor_override if given, else by the window size clipped to the padded
    input (count_include_pad) or by the number of input elements in it."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    y = np.zeros(avg_pool2d_output_shape(x.shape, kernel_size, stride, padding, ceil_mode))
    for ho, wo, (h0, h1, w0, w1), padded_count, count in _avg_windows(
            H, W, kernel_size, stride, padding, ceil_mode):
        if count == 0:
            continue
        total = np.zeros((N, C))
        for h in range(h0, h1):
            for w in range(w0, w1):
                total += x[:, :, h, w]
        y[:, :, ho, wo] = total / _avg_divisor(padded_count, count, count_include_pad,
                                               divisor_override)
    return y


def avg_pool2d_backward_reference(dy, input_shape, kernel_size, stride=None, padding=0,
                                  ceil_mode=False, count_include_pad=True, divisor_override=None):
    """The gradient of avg_pool2d_reference: each dy[n, c, ho, wo] divided by its window's
    divisor and added to every input element of the window. Returns input_shape float64."""
    dy = np.asarray(dy, dtype=np.float64)
    N, C, H, W = input_shape
    dx = np.zeros((N, C, H, W))
    for ho, wo, (h0, h1, w0, w1), padded_count, count in _avg_windows(
            H, W, kernel_size, stride, padding, ceil_mode):
        if count == 0:
            continue
        share = dy[:, :, ho, wo] / _avg_divisor(padded_count, count, count_include_pad,
                                                divisor_override)
        for h in range(h0, h1):
            for w in range(w0, w1):
                dx[:, :, h, w] += share
    return dx


def _lp_pool2d_infinite_reference(x, p, kernel_size, stride, ceil_mode):
    """PyTorch's lp_pool2d at p = +inf / -inf, by its definition: max_pool2d(|x|) and
    -max_pool2d(-|x|) with no padding. Returns (y, indices) as max_pool2d_reference does."""
    magnitude = np.abs(x) if p > 0 else -np.abs(x)
    y, indices = max_pool2d_reference(magnitude, kernel_size, stride, 0, 1, ceil_mode)
    return (y if p > 0 else -y), indices


def _lp_window_scale(kernel_size, count):
    """PyTorch's lp_pool2d is avg_pool2d(x**p) * (KH*KW): a window's sum divided by the count of
    input elements it covers (no padding), times the full window size. Returns KH*KW / count,
    1 but for a partial last window of ceil_mode."""
    KH, KW = _pair(kernel_size)
    return KH * KW / count


def lp_pool2d_reference(x, p, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling as PyTorch defines it, in float64: (scale * sum over the window's
    input elements of x**p) ** (1/p), where scale = KH*KW / (elements the window covers), which
    is 1 but for a partial last window of ceil_mode. No padding. p = +inf / -inf give the
    largest / smallest |x| of each window (NaN if the window holds one)."""
    x = np.asarray(x, dtype=np.float64)
    if np.isinf(p):
        return _lp_pool2d_infinite_reference(x, p, kernel_size, stride, ceil_mode)[0]
    N, C, H, W = x.shape
    y = np.zeros(avg_pool2d_output_shape(x.shape, kernel_size, stride, 0, ceil_mode))
    for ho, wo, (h0, h1, w0, w1), _, count in _avg_windows(H, W, kernel_size, stride, 0,
                                                           ceil_mode):
        total = np.zeros((N, C))
        for h in range(h0, h1):
            for w in range(w0, w1):
                total += x[:, :, h, w] ** p
        y[:, :, ho, wo] = (_lp_window_scale(kernel_size, count) * total) ** (1 / p)
    return y


def lp_pool2d_backward_reference(dy, x, p, kernel_size, stride=None, ceil_mode=False):
    """The gradient of lp_pool2d_reference: d y / d x[h, w] = scale * x[h, w]**(p-1) / y**(p-1)
    for every element of y's window (scale as in lp_pool2d_reference), a window with y == 0
    contributing 0. At p = +inf / -inf, torch's
    autograd of its definition: dy[ho, wo] added at the element the window chose (max-pool's
    index), times that element's sign (torch's sgn: 0 at 0 and at NaN). Returns x's shape in
    float64."""
    dy = np.asarray(dy, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if np.isinf(p):
        _, indices = _lp_pool2d_infinite_reference(x, p, kernel_size, stride, ceil_mode)
        N, C, H, W = x.shape
        dx = np.zeros((N, C, H, W))
        for n in range(N):
            for c in range(C):
                for ho in range(dy.shape[2]):
                    for wo in range(dy.shape[3]):
                        h, w = divmod(int(indices[n, c, ho, wo]), W)
                        dx[n, c, h, w] += dy[n, c, ho, wo]
        sign = np.where(x > 0, 1.0, np.where(x < 0, -1.0, 0.0))
        return dx * sign
    N, C, H, W = x.shape
    y = lp_pool2d_reference(x, p, kernel_size, stride, ceil_mode)
    dx = np.zeros((N, C, H, W))
    for ho, wo, (h0, h1, w0, w1), _, count in _avg_windows(H, W, kernel_size, stride, 0,
                                                           ceil_mode):
        out = y[:, :, ho, wo]
        nonzero = out != 0
        factor = np.where(nonzero, dy[:, :, ho, wo] / np.where(nonzero, out, 1) ** (p - 1), 0)
        factor = factor * _lp_window_scale(kernel_size, count)
        for h in range(h0, h1):
            for w in range(w0, w1):
                dx[:, :, h, w] += factor * x[:, :, h, w] ** (p - 1)
    return dx
