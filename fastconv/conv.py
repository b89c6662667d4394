"""Convolution: public functions that validate (fastconv/_geometry.py), allocate, choose an
algorithm and call the Cython drivers (fastconv/_conv.pyx)."""

import numpy as np

from fastconv import _config, _conv, _runtime
from fastconv._geometry import (
    aligned_contiguous, conv2d_backward_geometry, conv2d_geometry, conv_transpose2d_geometry,
    empty_aligned,
)

ALGORITHMS = ("auto", "direct", "im2col")


# Filters per group at or below which the direct algorithm runs its single-filter kernel, not
# its register tiles (_conv.pyx makes the same cut), and below which "auto" prefers direct over
# im2col.
AUTO_DIRECT_MAX_FILTERS_PER_GROUP = 4
# Output widths below which "auto" runs im2col: the direct tiles vectorise along output rows.
AUTO_IM2COL_BELOW_WIDTH = 8


def _direct_wins(filters_per_group, output_width):
    """The measured rule behind algorithm="auto" (python -m fastconv bench), after the 1x1 rule
    of `choose_algorithm`:

    - at most 4 filters per group (depthwise, single-filter layers): direct's single-filter
      kernel, since both im2col's GEMM and direct's register tiles work on blocks of 4-14
      filters and most of each block would be padding;
    - output rows narrower than 8 pixels (FC-as-convolution, the last maps of deep nets):
      im2col, since direct's tiles vectorise along output rows and would run mostly empty
      (except where `_narrow_direct_wins`);
    - otherwise direct: its tiles read the input straight from a padded band, while im2col
      spends about a third of its time building and packing the column matrix.
    """
    if filters_per_group <= AUTO_DIRECT_MAX_FILTERS_PER_GROUP:
        return True
    return output_width >= AUTO_IM2COL_BELOW_WIDTH


def _narrow_direct_wins(geometry, dtype):
    """Whether output rows narrower than AUTO_IM2COL_BELOW_WIDTH run direct all the same: on
    the AVX2 and portable paths, whose filter-vector tiles wrap from one output row to the next
    (`_conv.direct_wrapping_tiles`) and so keep their lanes busy on small maps. Direct took
    0.52-0.78x im2col's time on 5x5 to 7x7 maps with 64-2048 channels and 64-2048 filters (3x3
    and 1x1, batch 8, AVX2 float32 at one thread, both alternating in one process; `python
    tools/network_layers.py --layers resnet50_3x3_512,resnet50_1x1_2048_512` times such
    layers against PyTorch), but 2x on an FC layer whose filters come from memory
    (`fc_as_conv7`, 411 MB of them, which AVX2's GEMM streams), so layers with filters that
    large keep im2col. AVX-512's wrapping tile was
    not measured (no such machine at hand), so it keeps im2col. The same holds for dx at unit
    stride (`_backward_input`), a direct convolution over dy's narrow planes: 0.66-0.79x the
    col2im GEMM's time on those 7x7 layers, 0.91x on 14x14."""
    if _config.isa_code() == _runtime.ISA_CODES["avx512"]:
        return False
    filter_bytes = geometry.K // geometry.groups * geometry.reduction_size * dtype.itemsize
    return filter_bytes < _conv.GEMM_STREAM_MIN_FILTER_BYTES


def _is_pointwise(geometry):
    """Whether each output pixel is a product of filters and its own input pixel: 1x1 filters at
    unit stride without padding, and input and output planes of one size. (dx's convolution in
    conv_transpose2d can have 1x1 filters at unit stride and still one more row or column of
    output than input, from output_padding.)"""
    return ((geometry.FH, geometry.FW, geometry.stride, geometry.padding)
            == (1, 1, (1, 1), (0, 0))
            and (geometry.H, geometry.W) == (geometry.HO, geometry.WO))


def _pointwise_gemm(geometry):
    """Whether im2col's GEMM runs as `_conv.conv2d_pointwise`, reading x in place (the column
    matrix is x itself): pointwise layers (`_is_pointwise`) with planes of at least
    GEMM_OVER_BATCH_BELOW_PIXELS pixels (smaller ones run over the batch), on an ISA path with
    the streaming micro-kernels (AVX2, AVX-512). Its sums are conv2d_im2col's, bit for bit."""
    return (_is_pointwise(geometry)
            and geometry.HO * geometry.WO >= GEMM_OVER_BATCH_BELOW_PIXELS
            and _conv.has_streaming_kernel(_config.isa_code()))


# Strided 1x1 layers run as the pointwise GEMM on their subsampled input, copied this many bytes
# of it (or one image) at a time into one buffer, whatever the batch.
STRIDED_POINTWISE_CHUNK_BYTES = 4 << 20


def _strided_pointwise(geometry):
    """For a 1x1 layer at a stride without padding (ResNet's downsampling shortcuts): the
    geometry of its input's every SH-th row and SW-th column as a unit-stride layer, when that
    runs as the pointwise GEMM (`_pointwise_gemm`); else None.

    The direct tiles and the column GEMM both read such a layer's input where it lies, a
    quarter of its rows' elements at stride 2; the copy reads each line once, and the pointwise
    GEMM then runs on whole lines. resnet50_1x1_stride_2_512_1024 (`python
    tools/network_layers.py`) at one thread, AVX2: direct 24.8 ms, column GEMM 20.3, PyTorch
    12.9; the same layer on an already subsampled input 13.6; this path 15.6 (direct 22.5,
    PyTorch 12.6 in that run; the copy took 0.39 ms of it).
    """
    if ((geometry.FH, geometry.FW, geometry.padding) != (1, 1, (0, 0))
            or geometry.stride == (1, 1)):
        return None
    sub = geometry._replace(H=geometry.HO, W=geometry.WO, stride=(1, 1), dilation=(1, 1))
    return sub if _pointwise_gemm(sub) else None


def choose_algorithm(geometry, dtype=np.dtype(np.float32)):
    """The algorithm ``algorithm="auto"`` runs for a validated conv2d geometry in `dtype`.

    1x1 layers with more than 4 filters per group that `_pointwise_gemm` takes run im2col's GEMM
    on x in place. On ResNet-50's 1x1 shapes at batch 4 (asv Conv2dPointwise times each driver
    forced, 56x56 down to 14x14 maps, 64-1024 channels; the figures are medians of that class's
    three drivers run alternately in one process, as the host drifts between runs) it took
    0.80-1.03x the direct tiles' time and 0.69-1.09x the packed GEMM's with AVX-512 float32 on one and two
    threads (0.80-0.88x direct on the 14x14 maps, 0.95-0.98x on resnet_1x1), 0.39-0.48x direct's
    with AVX2, 0.77-1.0x direct's in float64 (AVX-512). So do strided 1x1 layers whose
    subsampled input it takes (`_strided_pointwise`). Otherwise `_direct_wins` decides, and
    `_narrow_direct_wins` for narrow outputs.
    """
    KG = geometry.K // geometry.groups
    if KG > AUTO_DIRECT_MAX_FILTERS_PER_GROUP and (_pointwise_gemm(geometry)
                                                   or _strided_pointwise(geometry)):
        return "im2col"
    if _direct_wins(KG, geometry.WO) or _narrow_direct_wins(geometry, np.dtype(dtype)):
        return "direct"
    return "im2col"


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    """2-D convolution (cross-correlation, as in PyTorch's ``conv2d``) over NCHW batches.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W) or (C, H, W)
        Input batch (or one unbatched image), float32 or float64.
    w : ndarray, shape (K, C/groups, FH, FW)
        Filters, same dtype as `x`.
    b : ndarray, shape (K,), optional
        Bias, same dtype as `x`.
    stride, dilation : int or (int, int)
        Step between windows and between kernel taps, >= 1.
    padding : int or (int, int) or {"valid", "same"}
        Zeros added on each side; "same" (stride 1 only) keeps H and W, padding one more at the
        bottom/right when the dilated kernel extent is even, as PyTorch does.
    groups : int
        Channel groups: filter k sees input channels of group ``k // (K/groups)`` only.
    algorithm : {"auto", "direct", "im2col"}
        "direct" loops over kernel offsets with no column matrix; "im2col" builds the column
        matrix tile by tile and multiplies it with a packed GEMM; "auto" picks per shape
        (see `choose_algorithm`; `fastconv.last_algorithm()` tells which ran).

    Returns
    -------
    y : ndarray, shape (N, K, HO, WO) or (K, HO, WO)
        ``HO = floor((H + 2*padding - dilation*(FH-1) - 1) / stride) + 1``, likewise WO; same
        dtype as `x`.

    Examples
    --------
    >>> x = np.ones((1, 3, 5, 5), np.float32)
    >>> w = np.ones((2, 3, 3, 3), np.float32)
    >>> conv2d(x, w, padding=1).shape
    (1, 2, 5, 5)
    """
    if not isinstance(algorithm, str):
        raise TypeError(f"conv2d: algorithm must be a str ({', '.join(ALGORITHMS)}), "
                        f"got {algorithm!r}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"conv2d: algorithm must be one of {', '.join(ALGORITHMS)}, "
                         f"got {algorithm!r}")
    x, w, b, geometry, batched = conv2d_geometry("conv2d", x, w, b, stride, padding, dilation,
                                                 groups)
    if algorithm == "auto":
        algorithm = choose_algorithm(geometry, x.dtype)
    _config.record_algorithm(algorithm)
    driver = _forward_driver(algorithm, geometry, x.dtype)
    x = aligned_contiguous(x)
    y = empty_aligned(geometry.output_shape, x.dtype,
                      _pointwise_line_offset(x) if driver is _conv.conv2d_pointwise else 0)
    if y.size == 0:
        return y if batched else y[0]
    if geometry.reduction_size == 0:
        y[...] = 0 if b is None else b[:, np.newaxis, np.newaxis]
        return y if batched else y[0]
    bias = np.zeros(1, x.dtype) if b is None else aligned_contiguous(b)
    subsampled = _strided_pointwise(geometry) if algorithm == "im2col" else None
    if subsampled is not None:
        _strided_pointwise_conv2d(x, aligned_contiguous(w), bias, b is not None, y, geometry,
                                  subsampled)
        return y if batched else y[0]
    cut_geometry, x_cut, y_cut = _recut(_pointwise_cut(geometry, algorithm == "im2col"),
                                        geometry, x, y)
    driver(x_cut, aligned_contiguous(w), bias, b is not None, y_cut,
           *_driver_arguments(cut_geometry))
    return y if batched else y[0]


def _strided_pointwise_conv2d(x, w, bias, has_bias, y, geometry, subsampled):
    """y := a strided 1x1 layer, chunk of images by chunk: each chunk's every SH-th row and
    SW-th column copied into one buffer (`subsampled`, from `_strided_pointwise`, is its
    geometry), then `conv2d_pointwise` on it into the chunk's rows of y."""
    SH, SW = geometry.stride
    image_bytes = geometry.C * geometry.HO * geometry.WO * x.dtype.itemsize
    chunk = max(1, min(geometry.N, STRIDED_POINTWISE_CHUNK_BYTES // image_bytes))
    buffer = empty_aligned((chunk, geometry.C, geometry.HO, geometry.WO), x.dtype)
    for n0 in range(0, geometry.N, chunk):
        n1 = min(geometry.N, n0 + chunk)
        np.copyto(buffer[:n1 - n0], x[n0:n1, :, ::SH, ::SW])
        part = subsampled._replace(N=n1 - n0)
        cut_geometry, x_cut, y_cut = _recut(_pointwise_cut(part, True), part,
                                            buffer[:n1 - n0], y[n0:n1])
        _conv.conv2d_pointwise(x_cut, w, bias, has_bias, y_cut, *_driver_arguments(cut_geometry))


def _pointwise_line_offset(x):
    """Where in its cache line `conv2d_pointwise`'s output should start, for input x: where x
    starts. The driver shifts its panels of pixels so that x's rows are read in whole lines;
    with y at the same offset its panels are whole lines too, which lets the kernel store them
    past the caches (see `_conv._pointwise_panel`). NumPy puts large arrays 16 bytes past a
    line, so a y on a line of its own would never take that path."""
    return _runtime.data_address(x) % 64


# Output planes with fewer pixels than this run im2col's GEMM over the whole batch's pixels.
GEMM_OVER_BATCH_BELOW_PIXELS = 64


def _forward_driver(algorithm, geometry, dtype):
    """The Cython driver that runs `algorithm` on `geometry` in `dtype`.

    im2col's GEMM gives each image's output pixels the micro-kernel's 32-wide side (16 for
    float64), so a plane of fewer than 64 pixels leaves much of each tile empty: an FC layer
    run as a 7x7 convolution on 12x12 input (6x6 = 36 pixels) computed 64 columns for 36, and
    one on 7x7 input (1 pixel) 32 for 1. Below 64 pixels the GEMM runs over the whole batch's
    pixels instead: with them as the rows of packed panels (14 per tile), or, where the filters
    are large enough to come from memory on every call, streaming the filters past the pixels
    packed along the lanes (`fastconv._conv.gemm_streams_filters` has the rule). Pointwise
    layers with larger planes run the GEMM on x in place (`_pointwise_gemm`).
    """
    if algorithm == "direct":
        return _conv.conv2d_direct
    if _pointwise_gemm(geometry):
        return _conv.conv2d_pointwise
    P = geometry.HO * geometry.WO
    if P >= GEMM_OVER_BATCH_BELOW_PIXELS:
        return _conv.conv2d_im2col
    filter_bytes = geometry.K // geometry.groups * geometry.reduction_size * dtype.itemsize
    if _conv.gemm_streams_filters(geometry.N * P, filter_bytes, _config.isa_code(),
                                  dtype == np.float32):
        return _conv.conv2d_im2col_streaming_filters
    return _conv.conv2d_im2col_over_batch


# Widest rows a pointwise plane is re-cut into for the direct kernels (see _pointwise_cut).
POINTWISE_ROW_LIMIT = 512


def _pointwise_cut(geometry, gemm):
    """(rows, width) to view every H x W plane as, or None to keep it.

    When each output pixel reads only its own input pixel (`_is_pointwise`), any cut of the H*W
    pixels into rows gives the same result. The GEMM drivers build their column tiles one image
    row at a time: one row of H*W pixels makes each tile a whole copy. The direct kernels
    vectorise along rows: rows of a multiple of 16 pixels leave no vector lane idle (56-pixel
    rows use 56 of 64).
    """
    if not _is_pointwise(geometry):
        return None
    pixels = geometry.H * geometry.W
    if gemm:
        return (1, pixels) if geometry.H > 1 else None
    if geometry.W % 16 == 0:
        return None
    for width in range(POINTWISE_ROW_LIMIT, 0, -16):
        if pixels % width == 0:
            return (pixels // width, width)
    return None


def _recut(cut, geometry, *arrays):
    """The geometry and (N, C, H, W) arrays (C-contiguous) viewed with planes cut as `cut`."""
    if cut is None:
        return (geometry,) + arrays
    rows, width = cut
    geometry = geometry._replace(H=rows, W=width, HO=rows, WO=width)
    return (geometry,) + tuple(a.reshape(a.shape[:2] + cut) for a in arrays)


def _driver_arguments(geometry):
    """The Cython drivers' trailing arguments: geometry, ISA and thread count (by the work)."""
    return (geometry.groups, *geometry.stride, *geometry.padding, *geometry.dilation,
            _config.isa_code(), _config.threads_for(geometry.flops // 2))


def _direct_backward_input_wins(geometry):
    """Whether the direct kernel beats col2im(W^T @ dy) for a unit-stride dx (measured).

    The direct kernel forms every tap at every input position, including the taps that fall on
    the zero border around dy; only HO*WO/(H*W) of its products are real, while the GEMM path
    forms the real ones only. Direct's tiles are ~1.3x faster per product, so it wins while at
    least 80% of its products are real (3x3 "same" layers: all are); below that the GEMM does,
    by 1.2x at 56% (5x5 on 16x16, "valid"), 1.9x at 64% (3x3 on 10x10) and 8x at 25% (7x7 on
    12x12, fc_as_conv7). A 1x1 kernel needs no col2im at all, yet direct's filter-vector tiles
    still beat col2im's GEMM there: resnet_1x1's dx took ~23% less time when it moved to direct
    (asv Conv2dBackward.time_backward_input across commit a480140); where a streaming kernel
    exists, `conv2d_pointwise` takes those layers (see `_backward_input`).
    """
    return 5 * geometry.HO * geometry.WO >= 4 * geometry.H * geometry.W


def _backward_input(dy, w, geometry):
    """dx (N, C, H, W) for a validated geometry; dy (N, K, HO, WO).

    At unit stride dx is itself a convolution: of dy, zero-padded by dilation*(F-1) - padding,
    with each group's filters rotated by 180 degrees and their channel axes swapped. For the 1x1
    layers that `_pointwise_gemm` takes it is dx = W^T @ dy on `conv2d_pointwise` (0.65-0.9x the
    direct kernel's time on ResNet-50's 1x1 shapes, one and two threads, AVX-512 float32: a 1x1
    layer's dx is the 1x1 convolution with C and K swapped, which asv Conv2dPointwise times).
    Otherwise the direct kernel computes it when the rule of algorithm="auto" favours direct for
    that convolution and few of its products would fall on the zero border
    (`_direct_backward_input_wins`). That includes groups of at most 4 channels (depthwise
    layers: dx's convolution then has one filter per group), since the single-filter kernel
    took over those: 0.16-0.27x the GEMM's time on MobileNet's 3x3 depthwise layers and on
    grouped 3x3 and 5x5 layers of 2-3 channels per group, one thread (`python
    tools/network_layers.py --op bwd` shows MobileNet's layers beside PyTorch).
    Otherwise (strides, padding beyond the dilated kernel, small maps) dx = col2im(W^T @ dy) on
    the GEMM, which also never multiplies inserted zeros (with a column kernel for at most 4
    pixels per image: see `_conv.conv2d_backward_input`).
    """
    G, CG = geometry.groups, geometry.C // geometry.groups
    # dx's convolution has CG filters per group: the pointwise GEMM wants more than a few.
    pointwise = CG > AUTO_DIRECT_MAX_FILTERS_PER_GROUP and _pointwise_gemm(geometry)
    dy = aligned_contiguous(dy)
    dx = empty_aligned((geometry.N, geometry.C, geometry.H, geometry.W), dy.dtype,
                       _pointwise_line_offset(dy) if pointwise else 0)
    if dx.size == 0:
        return dx
    if dy.size == 0:
        dx[...] = 0
        return dx
    FH, FW = geometry.FH, geometry.FW
    DH, DW = geometry.dilation
    PH, PW = DH * (FH - 1) - geometry.padding[0], DW * (FW - 1) - geometry.padding[1]
    if pointwise or (geometry.stride == (1, 1) and PH >= 0 and PW >= 0
                     and (_direct_wins(CG, geometry.W) or _narrow_direct_wins(geometry, dy.dtype))
                     and _direct_backward_input_wins(geometry)):
        threads = _config.threads_for(geometry.flops // 2)
        _, dy_cut, dx_cut = _recut(_pointwise_cut(geometry, pointwise), geometry, dy, dx)
        arguments = (np.zeros(1, dy.dtype), False, dx_cut, G, 1, 1, PH, PW, DH, DW,
                     _config.isa_code(), threads)
        if pointwise:
            _conv.conv2d_pointwise(dy_cut, _conv.rotate_filters(aligned_contiguous(w), G, threads),
                                   *arguments)
        else:
            _conv.conv2d_direct(dy_cut, aligned_contiguous(w), *arguments, rotated=True)
        return dx
    cut_geometry, dy_cut, dx_cut = _recut(_pointwise_cut(geometry, True), geometry, dy, dx)
    _conv.conv2d_backward_input(dy_cut, aligned_contiguous(w), dx_cut,
                                *_driver_arguments(cut_geometry))
    return dx


BACKWARD_WEIGHT_DRIVERS = {
    "gemm": _conv.conv2d_backward_weight,
    "dot": _conv.conv2d_backward_weight_direct,
    "filter tiles": _conv.conv2d_backward_weight_filter_tiles,
}


def _backward_weight_driver(geometry, itemsize):
    """Which backward-weights driver runs a layer: a key of BACKWARD_WEIGHT_DRIVERS (measured).

    Measured by forcing each driver (`_backward_weight(..., driver=...)`), float32, 1 and 2
    threads: asv Conv2dBackwardWeightDrivers times every driver on the layers named below by
    their filters x taps (FASTCONV_ISA=avx2 for the AVX2 figures). The filter-vector tiles ("filter tiles") broadcast the input from the direct
    forward's band, so nothing is packed from it: 0.6-0.9x the GEMM's time on the standard
    suite's 3x3 and 11x11 layers and on its 1x1 layer (56-pixel rows), and on a 5x5 and a 7x7
    stride-2 layer outside it. The GEMM ("gemm") stays faster on small planes (< 64 output
    pixels: 1.4-1.5x on fc_as_conv7, where every block of channels would pack dy again) and on
    1x1 layers with rows under 16 pixels (1.1-1.2x on 14x14 maps, whose planes the GEMM takes as
    one row). Dot products of dy's rows with the band's rows ("dot") beat both where a filter
    tile's 32 lanes would be mostly empty: with at most 8 filters per group (8 filters, 288
    taps: 0.57x the filter tiles), and with fewer than 32 filters and 160 taps (cifar_3x3, 12
    filters x 27 taps: 0.32x; 16 x 144: 0.63x; 24 x 144: 0.84-0.88x). With more taps the filter
    tiles win again (16 x 576: 1.0-1.15x; 16 x 256 1x1: 1.55x; 24 x 1152: 1.6x). The same cuts
    hold with AVX2 (FASTCONV_ISA=avx2), whose filter tiles are 16 wide: dot 0.33x on cifar_3x3,
    1.0x at 16 x 144, 0.73x at 24 x 144, 0.62x at 8 x 288; filter tiles at 16 x 576 (0.74x) and
    16 x 256 1x1 (0.46x); 32 x 72 would take dot (0.73x) but stays on the filter tiles.
    """
    CG, KG = geometry.C // geometry.groups, geometry.K // geometry.groups
    if (not _conv.direct_band_fits(CG, geometry.FH, geometry.FW, geometry.WO,
                                   geometry.stride[1], *geometry.dilation, itemsize)
            or geometry.HO * geometry.WO < GEMM_OVER_BATCH_BELOW_PIXELS
            or (geometry.FH * geometry.FW == 1 and geometry.WO < 16)):
        return "gemm"
    if KG <= 8 or (KG < 32 and geometry.reduction_size < 160):
        return "dot"
    return "filter tiles"


def _backward_weight(dy, x, geometry, driver=None):
    """dw (K, C/groups, FH, FW) for a validated geometry; dy (N, K, HO, WO), x (N, C, H, W).
    `driver` (a key of BACKWARD_WEIGHT_DRIVERS; tests force each) defaults to the measured rule
    of `_backward_weight_driver`."""
    shape = (geometry.K, geometry.C // geometry.groups, geometry.FH, geometry.FW)
    if geometry.N == 0 or geometry.reduction_size == 0 or geometry.K == 0:
        return np.zeros(shape, dtype=dy.dtype)
    if driver is None:
        driver = _backward_weight_driver(geometry, dy.dtype.itemsize)
    parts = _conv.backward_weight_parts(
        geometry.N, geometry.groups, geometry.C // geometry.groups, geometry.K // geometry.groups,
        geometry.FH, geometry.FW, geometry.HO, geometry.WO, *geometry.stride, *geometry.dilation,
        _config.isa_code(), dy.dtype == np.float32, driver)
    dw_parts = np.empty((parts,) + shape, dtype=dy.dtype)
    cut_geometry, dy_cut, x_cut = _recut(_pointwise_cut(geometry, driver == "gemm"), geometry,
                                         aligned_contiguous(dy), aligned_contiguous(x))
    BACKWARD_WEIGHT_DRIVERS[driver](dy_cut, x_cut, dw_parts, *_driver_arguments(cut_geometry))
    # The batch parts are added in a fixed order, so dw does not depend on the thread count.
    dw = dw_parts[0]
    for part in dw_parts[1:]:
        dw += part
    return dw


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of ``y = conv2d(x, w, b, stride, padding, dilation, groups)``.

    Parameters
    ----------
    dy : ndarray, shape (N, K, HO, WO) or (K, HO, WO)
        Gradient of the loss with respect to y (the forward output's shape).
    x : ndarray, shape (N, C, H, W) or (C, H, W)
        The forward input.
    w : ndarray, shape (K, C/groups, FH, FW)
        The forward filters.
    stride, padding, dilation, groups
        As given to `conv2d`.

    Returns
    -------
    dx : ndarray, shape of x
        The full convolution of dy with w rotated by 180 degrees and its channel axes swapped
        (``conv_transpose2d(dy, w, ...)``); input positions no window covered get 0.
    dw : ndarray, shape of w
        The correlation of x with dy, summed over the batch in a fixed order.
    db : ndarray, shape (K,)
        dy summed over batch and space.

    Examples
    --------
    >>> x = np.ones((2, 3, 6, 6)); w = np.ones((4, 3, 3, 3))
    >>> dx, dw, db = conv2d_backward(np.ones((2, 4, 4, 4)), x, w)
    >>> dx.shape, dw.shape, db.shape
    ((2, 3, 6, 6), (4, 3, 3, 3), (4,))
    """
    dy, x, w, geometry, batched = conv2d_backward_geometry(
        "conv2d_backward", dy, x, w, stride, padding, dilation, groups)
    # One layout for every step, so db (whose summation order follows memory) is layout-free too.
    dy = aligned_contiguous(dy)
    dx = _backward_input(dy, w, geometry)
    dw = _backward_weight(dy, x, geometry)
    db = dy.sum(axis=(0, 2, 3), dtype=np.float64).astype(dy.dtype)
    return (dx if batched else dx[0]), dw, db


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution, as PyTorch's ``conv_transpose2d`` (its argument order too).

    The gradient of `conv2d` with respect to its input, made public: the same kernel computes
    both, with no multiplications by inserted zeros when stride > 1.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W) or (C_in, H, W)
    w : ndarray, shape (C_in, C_out/groups, FH, FW)
    b : ndarray, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int, int)
        ``output_padding`` (added to one side of the output) must be smaller than stride or
        dilation; ``padding`` removes ``dilation*(FH-1) - padding`` ... as in PyTorch.
    groups : int

    Returns
    -------
    y : ndarray, shape (N, C_out, HO, WO) or (C_out, HO, WO)
        ``HO = (H-1)*stride - 2*padding + dilation*(FH-1) + output_padding + 1``, likewise WO.
        A size of 0 (padding cropping every row) gives an empty array, as PyTorch's oneDNN path
        does (float32, N >= 2; PyTorch's other paths raise "Output size is too small"); a
        negative size raises ValueError.

    Examples
    --------
    >>> x = np.ones((1, 4, 5, 5)); w = np.ones((4, 2, 3, 3))
    >>> conv_transpose2d(x, w, stride=2).shape
    (1, 2, 11, 11)
    """
    x, w, b, geometry, batched = conv_transpose2d_geometry(
        "conv_transpose2d", x, w, b, stride, padding, output_padding, groups, dilation)
    y = _backward_input(x, w, geometry)
    if b is not None:
        y += b[:, np.newaxis, np.newaxis]
    return y if batched else y[0]
