"""What ``python -m fastconv bench`` times: each operation of the standard suite in fastconv, and
the same operation in the references (NumPy, PyTorch, ONNX Runtime), plus the NumPy checks.

Operations (`OPS`): conv2d forward ("fwd"), its gradient with respect to the input ("dx") and to
the filters ("dw"), each computed alone (no forward recomputed, no other gradient computed), and
max pooling forward with indices ("fwd+idx"), without ("fwd (no idx)") and its backward ("bwd").

Every implementation is a `Timed`: a no-argument callable (the timed call, inputs made
beforehand) and a function turning its result into NumPy arrays in a common form, so that
fastconv's result can be compared with each reference's (`relative_error`):

- fwd: (y,); dx: (dx,); dw: (dw,); bwd: (dx,)
- fwd+idx: (y, indices) with indices flat offsets ``h*W + w`` into each input plane (PyTorch's
  convention; ONNX Runtime's offsets into the whole tensor are reduced to it);
- fwd (no idx): (y,).
"""
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import fastconv
from fastconv.bench_cases import CONV, POOL, conv_flops, conv_output_shape, out_size

CONV_OPS = ("fwd", "dx", "dw")
POOL_OPS = ("fwd+idx", "fwd (no idx)", "bwd")
OPS = CONV_OPS + POOL_OPS
# --ops names: "pool" stands for the three pooling operations.
OP_GROUPS = {"fwd": ("fwd",), "dx": ("dx",), "dw": ("dw",), "pool": POOL_OPS}
FASTCONV_ALGORITHMS = ("auto", "direct", "im2col")
REFERENCES = ("torch", "onnxruntime")
# A fastconv result further than this from a reference's, relative to the reference's largest
# magnitude, marks the row MISMATCH (float32 sums of up to ~65000 products differ by ~1e-6
# between summation orders).
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


@dataclass
class Timed:
    """One implementation of one operation: `call()` is timed; `arrays(call())` gives the
    NumPy arrays compared with the other implementations'."""
    call: object
    arrays: object = field(default=lambda result: result if isinstance(result, tuple)
                           else (result,))


# ---------------------------------------------------------------------------------------------
# Shapes and work


def quick_conv_case(case):
    """A tiny version of a `CONV` case for smoke runs: N=1, at most 16 channels and filters, at
    most 32x32 pixels (never less than the dilated kernel); stride, padding and dilation kept."""
    N, C, H, W, K, F, S, P, D = case
    extent = D * (F - 1) + 1
    return (1, min(C, 16), max(min(H, 32), extent), max(min(W, 32), extent), min(K, 16),
            F, S, P, D)


def quick_pool_case(case):
    """A tiny version of a `POOL` case: N=1, at most 16 channels, at most 32x32 pixels."""
    N, C, H, W, F, S = case
    return (1, min(C, 16), max(min(H, 32), F), max(min(W, 32), F), F, S)


def pool_output_shape(case):
    N, C, H, W, F, S = case
    return (N, C, out_size(H, F, S, 0), out_size(W, F, S, 0))


def pool_bytes(case, op):
    """Bytes a pooling operation must read and write at least (float32 values, int64 indices):
    fwd+idx reads x, writes y and the indices; fwd (no idx) reads x, writes y; bwd reads dy and
    the indices and writes dx."""
    N, C, H, W, F, S = case
    inputs = N * C * H * W
    outputs = math.prod(pool_output_shape(case))
    if op == "fwd+idx":
        return 4 * inputs + 12 * outputs
    if op == "fwd (no idx)":
        return 4 * inputs + 4 * outputs
    return 12 * outputs + 4 * inputs


def conv_bytes(case):
    """Bytes a convolution (or either gradient) must move at least: x, w and y once each."""
    N, C, H, W, K, F, S, P, D = case
    return 4 * (N * C * H * W + K * C * F * F + math.prod(conv_output_shape(case)))


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass
class ConvData:
    name: str
    case: tuple
    x: np.ndarray
    w: np.ndarray
    dy: np.ndarray
    kind: str = "conv"

    @property
    def flops(self):
        return conv_flops(self.case)


@dataclass
class PoolData:
    name: str
    case: tuple
    x: np.ndarray
    dy: np.ndarray
    y: np.ndarray       # fastconv's forward output and indices, the backward's inputs
    indices: np.ndarray
    kind: str = "pool"


def make_conv_data(name, case, dtype, seed):
    """Input, filters (scaled by 1/sqrt(fan-in), so outputs are O(1)) and an output gradient."""
    N, C, H, W, K, F, S, P, D = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=dtype)
    w = rng.standard_normal((K, C, F, F), dtype=dtype)
    w *= dtype(1.0 / math.sqrt(C * F * F))
    dy = rng.standard_normal(conv_output_shape(case), dtype=dtype)
    return ConvData(name, case, x, w, dy)


def make_pool_data(name, case, dtype, seed):
    N, C, H, W, F, S = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=dtype)
    y, indices = fastconv.max_pool2d(x, F, S, return_indices=True)
    dy = rng.standard_normal(y.shape, dtype=dtype)
    return PoolData(name, case, x, dy, y, indices)


def make_data(name, quick, dtype, seed):
    dtype = np.dtype(dtype).type
    if name in CONV:
        case = quick_conv_case(CONV[name]) if quick else CONV[name]
        return make_conv_data(name, case, dtype, seed)
    case = quick_pool_case(POOL[name]) if quick else POOL[name]
    return make_pool_data(name, case, dtype, seed)


# ---------------------------------------------------------------------------------------------
# fastconv


def _backward_functions():
    """(dx(dy, x, w, S, P, D), dw(...)) computing one gradient each, through the internal
    drivers fastconv.conv2d_backward calls; None if this fastconv does not have them."""
    try:
        from fastconv.conv import _backward_input, _backward_weight
        from fastconv._geometry import conv2d_backward_geometry
    except ImportError:
        return None

    def dx(dy, x, w, S, P, D):
        dy, x, w, geometry, _ = conv2d_backward_geometry("conv2d_backward", dy, x, w, S, P, D, 1)
        return _backward_input(np.ascontiguousarray(dy), w, geometry)

    def dw(dy, x, w, S, P, D):
        dy, x, w, geometry, _ = conv2d_backward_geometry("conv2d_backward", dy, x, w, S, P, D, 1)
        return _backward_weight(np.ascontiguousarray(dy), x, geometry)

    return dx, dw


BACKWARD = _backward_functions()


def fastconv_timed(op, data, algorithm="auto"):
    """fastconv's implementation of `op` on `data` (conv forward with `algorithm`)."""
    if data.kind == "conv":
        N, C, H, W, K, F, S, P, D = data.case
        x, w, dy = data.x, data.w, data.dy
        if op == "fwd":
            return Timed(lambda: fastconv.conv2d(x, w, stride=S, padding=P, dilation=D,
                                                 algorithm=algorithm))
        if BACKWARD is None:  # an older fastconv: both gradients in one call
            index = 0 if op == "dx" else 1
            return Timed(lambda: fastconv.conv2d_backward(dy, x, w, S, P, D),
                         lambda result: (result[index],))
        function = BACKWARD[0] if op == "dx" else BACKWARD[1]
        return Timed(lambda: function(dy, x, w, S, P, D))
    N, C, H, W, F, S = data.case
    x = data.x
    if op == "fwd+idx":
        return Timed(lambda: fastconv.max_pool2d(x, F, S, return_indices=True))
    if op == "fwd (no idx)":
        return Timed(lambda: fastconv.max_pool2d(x, F, S))
    dy, indices = data.dy, data.indices
    return Timed(lambda: fastconv.max_pool2d_backward(dy, indices, x.shape))


# ---------------------------------------------------------------------------------------------
# NumPy: the timed conv forward reference, and the untimed checks of the other operations


def _columns(x, F, S, P, D):
    """The im2col matrix of x, (C*F*F, N*HO*WO) with the reduction axis first."""
    if P:
        x = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    extent = D * (F - 1) + 1
    windows = sliding_window_view(x, (extent, extent), axis=(2, 3))
    windows = windows[:, :, ::S, ::S, ::D, ::D]  # N, C, HO, WO, F, F
    C = x.shape[1]
    # Of the layouts tried, filters @ columns in this order was the fastest GEMM on every
    # standard case.
    return np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3)).reshape(C * F * F, -1)


def numpy_conv2d_im2col(x, w, stride, padding, dilation):
    """conv2d (cross-correlation, NCHW) in plain NumPy: an im2col matrix built from a strided
    window view, multiplied with the filters by one BLAS GEMM.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (K, C, F, F)
    stride, padding, dilation : int

    Returns
    -------
    y : ndarray, shape (N, K, HO, WO), C-contiguous, dtype of `x`.
    """
    K, C, F, _ = w.shape
    N = x.shape[0]
    HO = out_size(x.shape[2], F, stride, padding, dilation)
    WO = out_size(x.shape[3], F, stride, padding, dilation)
    y = w.reshape(K, -1) @ _columns(x, F, stride, padding, dilation)
    return np.ascontiguousarray(y.reshape(K, N, HO, WO).transpose(1, 0, 2, 3))


def numpy_conv2d_backward_weight(dy, x, w_shape, stride, padding, dilation):
    """dw = dy (as K x N*HO*WO) @ columns(x)^T."""
    K = dy.shape[1]
    dy_rows = dy.transpose(1, 0, 2, 3).reshape(K, -1)
    return (dy_rows @ _columns(x, w_shape[2], stride, padding, dilation).T).reshape(w_shape)


def numpy_conv2d_backward_input(dy, w, x_shape, stride, padding, dilation):
    """dx = col2im(w^T @ dy): each kernel tap's columns added into a padded dx."""
    N, C, H, W = x_shape
    K, _, F, _ = w.shape
    HO, WO = dy.shape[2:]
    S, P, D = stride, padding, dilation
    columns = (w.reshape(K, -1).T @ dy.transpose(1, 0, 2, 3).reshape(K, -1))
    columns = columns.reshape(C, F, F, N, HO, WO)
    dx = np.zeros((N, C, H + 2 * P, W + 2 * P), dtype=dy.dtype)
    for i in range(F):
        for j in range(F):
            dx[:, :, i * D:i * D + S * (HO - 1) + 1:S, j * D:j * D + S * (WO - 1) + 1:S] += (
                columns[:, i, j].transpose(1, 0, 2, 3))
    return dx[:, :, P:P + H, P:P + W]


def numpy_max_pool2d(x, F, S):
    """(y, indices) of max pooling without padding; ties go to the first maximum."""
    N, C, H, W = x.shape
    windows = sliding_window_view(x, (F, F), axis=(2, 3))[:, :, ::S, ::S]
    HO, WO = windows.shape[2:4]
    flat = windows.reshape(N, C, HO, WO, F * F)
    best = flat.argmax(axis=-1)
    y = np.take_along_axis(flat, best[..., np.newaxis], axis=-1)[..., 0]
    row, column = np.divmod(best, F)
    indices = ((np.arange(HO)[:, np.newaxis] * S + row) * W
               + np.arange(WO)[np.newaxis, :] * S + column)
    return y, indices.astype(np.int64)


def numpy_max_pool2d_backward(dy, indices, x_shape):
    N, C, H, W = x_shape
    planes = np.arange(N * C, dtype=np.int64)[:, np.newaxis] * (H * W)
    flat = (planes + indices.reshape(N * C, -1)).ravel()
    dx = np.bincount(flat, weights=dy.ravel().astype(np.float64), minlength=N * C * H * W)
    return dx.astype(dy.dtype).reshape(x_shape)


def numpy_fwd_timed(data):
    """The timed NumPy reference: conv forward by im2col + one matmul."""
    N, C, H, W, K, F, S, P, D = data.case
    x, w = data.x, data.w
    return Timed(lambda: numpy_conv2d_im2col(x, w, S, P, D))


def numpy_check(op, data):
    """The arrays of `op` computed in NumPy (untimed): the check of rows no reference ran."""
    if data.kind == "conv":
        N, C, H, W, K, F, S, P, D = data.case
        if op == "fwd":
            return (numpy_conv2d_im2col(data.x, data.w, S, P, D),)
        if op == "dx":
            return (numpy_conv2d_backward_input(data.dy, data.w, data.x.shape, S, P, D),)
        return (numpy_conv2d_backward_weight(data.dy, data.x, data.w.shape, S, P, D),)
    N, C, H, W, F, S = data.case
    if op == "fwd+idx":
        return numpy_max_pool2d(data.x, F, S)
    if op == "fwd (no idx)":
        return numpy_max_pool2d(data.x, F, S)[:1]
    return (numpy_max_pool2d_backward(data.dy, data.indices, data.x.shape),)


def relative_error(ours, reference):
    """Largest |difference| of the float arrays relative to the reference's largest magnitude;
    inf if a shape differs or integer arrays (indices) are not identical."""
    error = 0.0
    for a, b in zip(ours, reference):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return math.inf
        if np.issubdtype(b.dtype, np.integer):
            if not np.array_equal(a, b):
                return math.inf
            continue
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        error = max(error, float(np.max(np.abs(a - b))) / (scale or 1.0) if b.size else 0.0)
    return error


# ---------------------------------------------------------------------------------------------
# References


class TorchReference:
    """PyTorch's CPU backend on the NumPy arrays (torch.from_numpy, no copies):
    F.conv2d; torch.ops.aten.convolution_backward with an output mask asking for dx alone or
    dw alone (no forward recomputed); F.max_pool2d with and without indices;
    torch.ops.aten.max_pool2d_with_indices_backward. Threads: torch.set_num_threads(T)."""

    name = "torch"
    label = "PyTorch"
    ops = OPS

    def __init__(self):
        import torch
        import torch.nn.functional
        self.torch = torch
        self.functional = torch.nn.functional
        self._saved_threads = torch.get_num_threads()

    def describe(self):
        torch = self.torch
        parts = [f"torch {torch.__version__}"]
        if torch.backends.mkldnn.is_available():
            parts.append(f"oneDNN {'.'.join(map(str, torch.backends.mkldnn.version()))}"
                         if hasattr(torch.backends.mkldnn, "version") else "oneDNN")
        return (f"{', '.join(parts)}; F.conv2d, aten.convolution_backward (dx or dw alone), "
                f"F.max_pool2d, aten.max_pool2d_with_indices_backward; "
                f"torch.set_num_threads(T)")

    def set_threads(self, threads):
        self.torch.set_num_threads(threads)

    def restore(self):
        self.torch.set_num_threads(self._saved_threads)

    def timed(self, op, data, threads):
        torch, functional = self.torch, self.functional

        def as_numpy(result):
            return tuple(t.numpy() for t in (result if isinstance(result, tuple) else (result,)))

        if data.kind == "conv":
            N, C, H, W, K, F, S, P, D = data.case
            x, w, dy = (torch.from_numpy(a) for a in (data.x, data.w, data.dy))
            if op == "fwd":
                return Timed(lambda: functional.conv2d(x, w, None, S, P, D), as_numpy)
            mask = [op == "dx", op == "dw", False]
            index = 0 if op == "dx" else 1
            backward = torch.ops.aten.convolution_backward
            return Timed(lambda: backward(dy, x, w, None, [S, S], [P, P], [D, D], False, [0, 0],
                                          1, mask)[index], as_numpy)
        N, C, H, W, F, S = data.case
        x = torch.from_numpy(data.x)
        if op == "fwd+idx":
            return Timed(lambda: functional.max_pool2d(x, F, S, return_indices=True),
                         as_numpy)
        if op == "fwd (no idx)":
            return Timed(lambda: functional.max_pool2d(x, F, S), as_numpy)
        # The backward gets PyTorch's own indices (equal to fastconv's: checked on fwd+idx).
        _, indices = functional.max_pool2d(x, F, S, return_indices=True)
        dy = torch.from_numpy(data.dy)
        backward = torch.ops.aten.max_pool2d_with_indices_backward
        return Timed(lambda: backward(dy, x, [F, F], [S, S], [0, 0], [1, 1], False, indices),
                     as_numpy)


class OnnxRuntimeReference:
    """ONNX Runtime's CPU provider on one-node models built with onnx.helper: Conv (filters as
    an initializer, so its NCHWc reorder of them happens once per session) and MaxPool (with
    the Indices output for fwd+idx). Forward only. One session per case and thread count:
    intra_op_num_threads=T, inter_op_num_threads=1, thread spinning off (a spinning pool would
    take the CPUs from the implementation timed next)."""

    name = "onnxruntime"
    label = "ORT"
    ops = ("fwd", "fwd+idx", "fwd (no idx)")
    OPSET = 17
    IR_VERSION = 8

    def __init__(self):
        import onnx
        import onnxruntime
        self.onnx = onnx
        self.ort = onnxruntime
        self._sessions = {}

    def describe(self):
        return (f"onnxruntime {self.ort.__version__} (CPUExecutionProvider), onnx "
                f"{self.onnx.__version__}; one-node Conv / MaxPool models; forward only; "
                f"intra_op_num_threads=T, spinning off")

    def set_threads(self, threads):
        self._sessions.clear()

    def restore(self):
        self._sessions.clear()

    def _session(self, model, threads):
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return self.ort.InferenceSession(model.SerializeToString(), options,
                                         providers=["CPUExecutionProvider"])

    def _model(self, node, inputs, outputs, initializers=()):
        helper = self.onnx.helper
        graph = helper.make_graph([node], "bench", inputs, outputs, list(initializers))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.OPSET)])
        model.ir_version = self.IR_VERSION
        return model

    def timed(self, op, data, threads):
        if data.x.dtype != np.float32:
            return None
        helper, TensorProto = self.onnx.helper, self.onnx.TensorProto
        x = data.x
        x_info = helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))
        key = (data.name, op, threads)
        if data.kind == "conv":
            N, C, H, W, K, F, S, P, D = data.case
            weights = self.onnx.numpy_helper.from_array(data.w, name="W")
            node = helper.make_node("Conv", ["X", "W"], ["Y"], kernel_shape=[F, F],
                                    strides=[S, S], pads=[P, P, P, P], dilations=[D, D],
                                    group=1)
            y_info = helper.make_tensor_value_info("Y", TensorProto.FLOAT,
                                                   list(conv_output_shape(data.case)))
            model = self._model(node, [x_info], [y_info], [weights])
            convert = lambda result: (result[0],)
        else:
            N, C, H, W, F, S = data.case
            shape = list(pool_output_shape(data.case))
            outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, shape)]
            if op == "fwd+idx":
                outputs.append(helper.make_tensor_value_info("I", TensorProto.INT64, shape))
            node = helper.make_node("MaxPool", ["X"], [o.name for o in outputs],
                                    kernel_shape=[F, F], strides=[S, S], pads=[0, 0, 0, 0])
            model = self._model(node, [x_info], outputs)
            plane = H * W
            # ONNX indices count across the whole NCHW tensor: reduce to offsets in the plane.
            convert = lambda result: ((result[0], result[1] % plane) if len(result) > 1
                                      else (result[0],))
        if key not in self._sessions:
            self._sessions = {k: v for k, v in self._sessions.items() if k[0] == data.name}
            self._sessions[key] = self._session(model, threads)
        session = self._sessions[key]
        feeds = {"X": x}
        return Timed(lambda: session.run(None, feeds), convert)


REFERENCE_CLASSES = {"torch": TorchReference, "onnxruntime": OnnxRuntimeReference}
INSTALL_HINTS = {"torch": "pip install torch", "onnxruntime": "pip install onnxruntime onnx"}


def load_references(names):
    """(list of reference objects, list of notes for those that could not be loaded)."""
    loaded, notes = [], []
    for name in names:
        try:
            loaded.append(REFERENCE_CLASSES[name]())
        except ImportError as error:
            notes.append(f"{name} skipped: not installed ({error}; `{INSTALL_HINTS[name]}`)")
        except Exception as error:  # a broken install: say so, run the rest
            notes.append(f"{name} skipped: import failed ({type(error).__name__}: {error})")
    return loaded, notes
