"""Layer classes for whole networks: each holds its parameters, gradients and forward cache, and
calls fastconv's operators; none has arithmetic of its own beyond ReLU, Flatten and Linear's
matrix products. Shapes follow PyTorch's modules, so their weights load from ``nn.Sequential``.

Every layer has ``forward(x)`` (caches what backward needs), ``backward(dy)`` (returns dx and
fills ``grads``), ``params`` / ``grads`` (dicts of arrays, updated in place by optimisers) and
``output_shape(input_shape)`` for one image's shape, without any data.
"""
import numpy as np

from fastconv import _geometry
from fastconv.conv import conv2d, conv2d_backward
from fastconv.pool import (
    avg_pool2d, avg_pool2d_backward, lp_pool2d, lp_pool2d_backward, max_pool2d,
    max_pool2d_backward,
)


def _check_dtype(name, dtype):
    if dtype is None:
        # PyTorch's dtype=None means "the default dtype", float32; np.dtype(None) is float64.
        return np.dtype(np.float32)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in _geometry.FLOAT_DTYPES:
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _rng(func, seed):
    """NumPy's generator for a seed that is None or an int >= 0."""
    if seed is not None:
        _geometry.check_int(func, "seed", seed, 0)
    return np.random.default_rng(seed)


def _he_normal(rng, shape, fan_in, dtype):
    """He initialisation: N(0, 2 / fan_in), the standard for layers followed by ReLU."""
    std = np.sqrt(2.0 / max(1, fan_in))
    return (rng.standard_normal(shape) * std).astype(dtype)


class Layer:
    """Base class: a layer with no parameters whose backward needs nothing cached."""
    kind = "layer"

    def __init__(self):
        self.params = {}
        self.grads = {}

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def output_shape(self, input_shape):
        """The output shape of one image (no batch axis) for an input of `input_shape`."""
        return tuple(input_shape)

    def parameter_count(self):
        return sum(p.size for p in self.params.values())

    def _cached(self, name):
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward: forward must run first")
        return value

    def __repr__(self):
        return f"{type(self).__name__}()"


class Conv2D(Layer):
    """2-D convolution layer, ``y = conv2d(x, weight, bias, ...)``, as PyTorch's ``nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``K``.
    kernel_size, stride, padding, dilation, groups
        As `fastconv.conv2d` (padding also "valid"/"same").
    bias : bool
        Learn a bias per filter.
    dtype : float32 or float64
    seed : int, optional
        Seed of the He initialisation (weights N(0, 2/fan_in), biases 0).

    Attributes
    ----------
    params : {"weight": (K, C/groups, FH, FW), "bias": (K,)}
    grads : same keys and shapes, filled by `backward`.
    """
    kind = "conv"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32, seed=None):
        super().__init__()
        func = "Conv2D"
        self.in_channels = _geometry.check_int(func, "in_channels", in_channels, 1)
        self.out_channels = _geometry.check_int(func, "out_channels", out_channels, 1)
        self.kernel_size = _geometry.check_pair(func, "kernel_size", kernel_size, 1)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups = _geometry.check_int(func, "groups", groups, 1)
        for name, channels in (("in_channels", self.in_channels),
                               ("out_channels", self.out_channels)):
            if channels % self.groups:
                raise ValueError(f"{func}: {name} must be divisible by groups ({self.groups}), "
                                 f"got {channels}")
        self.dtype = _check_dtype(func, dtype)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        # Check groups, stride, padding and dilation now, on an input the dilated kernel just fits.
        extent = tuple(d * (k - 1) + 1 for k, d in
                       zip(self.kernel_size, _geometry.check_pair(func, "dilation", dilation, 1)))
        _geometry.conv2d_shape_geometry(func, (1, self.in_channels) + extent, shape, None,
                                        stride, padding, dilation, groups)
        _geometry.check_result_size(func, shape, self.dtype.itemsize,
                                    "the weight (out_channels, in_channels/groups, kernel_size)")
        fan_in = shape[1] * shape[2] * shape[3]
        rng = _rng(func, seed)
        self.params["weight"] = _he_normal(rng, shape, fan_in, self.dtype)
        self.grads["weight"] = np.zeros(shape, self.dtype)
        if bias:
            self.params["bias"] = np.zeros(self.out_channels, self.dtype)
            self.grads["bias"] = np.zeros(self.out_channels, self.dtype)
        self._x = None

    def _arguments(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    def forward(self, x):
        """x: (N, C, H, W) -> (N, K, HO, WO)."""
        # Checked here so that a wrong dtype is reported as the caller's x, not as conv2d's w.
        x = _geometry.as_float_array("Conv2D.forward", "x", x)
        _geometry.check_same_dtype("Conv2D.forward", [("weight", self.params["weight"]),
                                                      ("x", x)])
        self._x = x
        return conv2d(x, self.params["weight"], self.params.get("bias"), **self._arguments())

    def backward(self, dy):
        """dy: (N, K, HO, WO) -> dx (N, C, H, W); fills grads."""
        x = self._cached("_x")
        dy = _geometry.as_float_array("Conv2D.backward", "dy", dy)
        _geometry.check_same_dtype("Conv2D.backward", [("weight", self.params["weight"]),
                                                       ("dy", dy)])
        dx, dw, db = conv2d_backward(dy, x, self.params["weight"], **self._arguments())
        self.grads["weight"][...] = dw
        if "bias" in self.grads:
            self.grads["bias"][...] = db
        return dx

    def output_shape(self, input_shape):
        C, H, W = input_shape
        geometry = _geometry.conv2d_shape_geometry(
            "Conv2D", (1, C, H, W), self.params["weight"].shape, None, self.stride,
            self.padding, self.dilation, self.groups)
        return (geometry.K, geometry.HO, geometry.WO)

    def __repr__(self):
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r})")


class _Pool(Layer):
    kind = "pool"

    def _geometry(self, input_shape):
        return _geometry.pool2d_shape_geometry(
            type(self).__name__, (1,) + tuple(input_shape), self.kernel_size, self.stride,
            getattr(self, "padding", 0), getattr(self, "dilation", 1), self.ceil_mode)

    def output_shape(self, input_shape):
        geometry = self._geometry(input_shape)
        return (geometry.C, geometry.HO, geometry.WO)

    def __repr__(self):
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride})"


class MaxPool2D(_Pool):
    """Max pooling layer, as PyTorch's ``nn.MaxPool2d`` (see `fastconv.max_pool2d`). A window
    that lies wholly in the padding (possible with dilation > 1 on small inputs) outputs -inf
    and passes no gradient back, where PyTorch's backward follows its index out of the window."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        _geometry.check_pool_parameters("MaxPool2D", kernel_size, stride, padding, dilation,
                                        ceil_mode)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self._indices = self._input_shape = None

    def forward(self, x):
        y, self._indices = max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                      self.dilation, self.ceil_mode, return_indices=True)
        self._input_shape = np.shape(x)
        return y

    def backward(self, dy):
        indices = self._cached("_indices")
        empty_rows, empty_cols = _geometry.pool_windows_in_padding(
            self._geometry(self._input_shape[-3:]))
        if empty_rows.any() or empty_cols.any():
            # Those windows hold no input pixel: their outputs are -inf and their indices,
            # PyTorch's, lie past the plane (its backward then writes outside dx) or name
            # another pixel (a window wholly in the left padding). They depend on no input, so
            # they pass no gradient.
            batched = indices.ndim == 4
            dy = _geometry.check_gradient("MaxPool2D.backward", dy, None,
                                          (1,) * (not batched) + indices.shape, batched,
                                          "the forward output's shape")
            dy = dy if batched else dy[0]
            empty = empty_rows[:, None] | empty_cols[None, :]
            dy = np.where(empty, dy.dtype.type(0), dy)
            indices = np.where(empty, 0, indices)
        return max_pool2d_backward(dy, indices, self._input_shape)


class AvgPool2D(_Pool):
    """Average pooling layer, as PyTorch's ``nn.AvgPool2d`` (see `fastconv.avg_pool2d`)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        _geometry.check_pool_parameters("AvgPool2D", kernel_size, stride, padding, 1, ceil_mode)
        _geometry.check_bool("AvgPool2D", "count_include_pad", count_include_pad)
        _geometry.check_divisor_override("AvgPool2D", divisor_override)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override
        self._input_shape = None

    def _options(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def forward(self, x):
        self._input_shape = np.shape(x)
        return avg_pool2d(x, *self._options())

    def backward(self, dy):
        return avg_pool2d_backward(dy, self._cached("_input_shape"), *self._options())


class LPPool2D(_Pool):
    """Power-average (Lp) pooling layer, as PyTorch's ``nn.LPPool2d``; L2 pooling with
    ``norm_type=2``, the largest or smallest ``|x|`` of each window with ``norm_type=inf`` or
    ``-inf`` (see `fastconv.lp_pool2d`)."""

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type = _geometry.check_norm_type("LPPool2D", norm_type)
        _geometry.check_pool_parameters("LPPool2D", kernel_size, stride, 0, 1, ceil_mode)
        self.kernel_size, self.stride, self.ceil_mode = kernel_size, stride, ceil_mode
        self._x = None

    def forward(self, x):
        self._x = x
        return lp_pool2d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def backward(self, dy):
        return lp_pool2d_backward(dy, self._cached("_x"), self.norm_type, self.kernel_size,
                                  self.stride, self.ceil_mode)


class ReLU(Layer):
    """``y = max(x, 0)``; its gradient is stopped where y <= 0 and passes elsewhere, through
    NaN too, as PyTorch's (whose backward tests y <= 0). NaN propagates."""
    kind = "relu"

    def __init__(self):
        super().__init__()
        self._positive = None

    def forward(self, x):
        x = _geometry.as_float_array("ReLU.forward", "x", x)
        y = np.maximum(x, 0)
        self._positive = ~(y <= 0)
        return y

    def backward(self, dy):
        positive = self._cached("_positive")
        dy = _geometry.as_float_array("ReLU.backward", "dy", dy)
        if dy.shape != positive.shape:
            raise ValueError(f"ReLU.backward: dy must have the forward output's shape "
                             f"{positive.shape}, got {dy.shape}")
        return np.where(positive, dy, dy.dtype.type(0))


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), as PyTorch's ``nn.Flatten``."""
    kind = "flatten"

    def __init__(self):
        super().__init__()
        self._input_shape = None

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim < 2:
            # As nn.Flatten (start_dim=1): a batch axis and at least one axis to flatten.
            raise ValueError(f"Flatten.forward: x must have at least 2 dimensions (a batch axis "
                             f"and the axes to flatten), got shape {x.shape}")
        self._input_shape = x.shape
        # A copy, not a view: outputs never alias inputs (a caller may edit either in place).
        return np.array(np.reshape(x, (x.shape[0], int(np.prod(x.shape[1:])))))

    def backward(self, dy):
        return np.array(np.reshape(dy, self._cached("_input_shape")))

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


class Linear(Layer):
    """Fully connected layer ``y = x @ weight.T + bias``, as PyTorch's ``nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : float32 or float64
    seed : int, optional
        Seed of the He initialisation.

    Attributes
    ----------
    params : {"weight": (out_features, in_features), "bias": (out_features,)}
    """
    kind = "fc"

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, seed=None):
        super().__init__()
        self.in_features = _geometry.check_int("Linear", "in_features", in_features, 1)
        self.out_features = _geometry.check_int("Linear", "out_features", out_features, 1)
        self.dtype = _check_dtype("Linear", dtype)
        rng = _rng("Linear", seed)
        shape = (self.out_features, self.in_features)
        _geometry.check_result_size("Linear", shape, self.dtype.itemsize,
                                    "the weight (out_features, in_features)")
        self.params["weight"] = _he_normal(rng, shape, self.in_features, self.dtype)
        self.grads["weight"] = np.zeros(shape, self.dtype)
        if bias:
            self.params["bias"] = np.zeros(self.out_features, self.dtype)
            self.grads["bias"] = np.zeros(self.out_features, self.dtype)
        self._x = None

    def forward(self, x):
        """x: (N, in_features) -> (N, out_features), or one unbatched (in_features,) ->
        (out_features,), as ``nn.Linear``."""
        x = _geometry.as_float_array("Linear.forward", "x", x)
        _geometry.check_same_dtype("Linear.forward", [("weight", self.params["weight"]),
                                                      ("x", x)])
        if x.ndim not in (1, 2) or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear.forward: x must have shape (N, {self.in_features}) or "
                             f"({self.in_features},), got {x.shape}")
        self._x = x
        y = np.atleast_2d(x) @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        return y if x.ndim == 2 else y[0]

    def backward(self, dy):
        """dy: (N, out_features) -> dx (N, in_features), or (out_features,) -> (in_features,)
        after an unbatched forward; fills grads."""
        x = self._cached("_x")
        dy = _geometry.as_float_array("Linear.backward", "dy", dy)
        _geometry.check_same_dtype("Linear.backward", [("weight", self.params["weight"]),
                                                       ("dy", dy)])
        expected = x.shape[:-1] + (self.out_features,)
        if dy.shape != expected:
            what = "(N, out_features)" if x.ndim == 2 else "(out_features,)"
            raise ValueError(f"Linear.backward: dy must have shape {what} = {expected}, "
                             f"got {dy.shape}")
        x2, dy2 = np.atleast_2d(x), np.atleast_2d(dy)
        self.grads["weight"][...] = dy2.T @ x2
        if "bias" in self.grads:
            self.grads["bias"][...] = dy2.sum(axis=0)
        dx = dy2 @ self.params["weight"]
        return dx if x.ndim == 2 else dx[0]

    def output_shape(self, input_shape):
        if int(np.prod(input_shape)) != self.in_features:
            raise ValueError(f"Linear: input must have {self.in_features} features, "
                             f"got shape {tuple(input_shape)}")
        return (self.out_features,)

    def to_conv2d(self, input_shape):
        """The equivalent convolution over a (C, H, W) input volume: a Conv2D with an H x W
        kernel covering the whole volume, holding the same weights (``weight.reshape(out, C, H,
        W)``). Applied to a larger image it slides the classifier over every position.

        Parameters
        ----------
        input_shape : (C, H, W) with C*H*W == in_features

        Returns
        -------
        Conv2D
        """
        C, H, W = (_geometry.check_int("Linear.to_conv2d", "input_shape", v, 1)
                   for v in input_shape)
        if C * H * W != self.in_features:
            raise ValueError(f"Linear.to_conv2d: input_shape must hold {self.in_features} "
                             f"features, got {tuple(input_shape)}")
        conv = Conv2D(C, self.out_features, (H, W), bias="bias" in self.params, dtype=self.dtype)
        conv.params["weight"][...] = self.params["weight"].reshape(self.out_features, C, H, W)
        if "bias" in self.params:
            conv.params["bias"][...] = self.params["bias"]
        return conv

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


class Sequential(Layer):
    """A chain of layers, as PyTorch's ``nn.Sequential``: ``forward`` runs them in order,
    ``backward`` in reverse.

    Parameters
    ----------
    *layers : Layer

    Attributes
    ----------
    params, grads : dict
        Every layer's arrays under PyTorch's ``nn.Sequential`` keys (``"0.weight"``,
        ``"0.bias"``, ``"3.weight"``, ...); the very arrays the layers use, so optimisers update
        them in place.

    Examples
    --------
    >>> net = Sequential(Conv2D(3, 12, 3, padding=1, seed=0), ReLU(), MaxPool2D(2), Flatten(),
    ...                  Linear(12 * 16 * 16, 10, seed=0))
    >>> net.forward(np.zeros((2, 3, 32, 32), np.float32)).shape
    (2, 10)
    """
    kind = "sequential"

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layers must be fastconv layers, got "
                                f"{type(layer).__name__} at position {i}")
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            for name in layer.params:
                self.params[f"{i}.{name}"] = layer.params[name]
                self.grads[f"{i}.{name}"] = layer.grads[name]

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def state_dict(self):
        """Copies of every parameter under PyTorch's ``nn.Sequential`` keys."""
        return {key: value.copy() for key, value in self.params.items()}

    def load_state_dict(self, state):
        """Copy parameters in from a dict (e.g. a PyTorch ``state_dict`` converted to NumPy
        arrays, or an ``.npz``): every key must be present with the same shape."""
        missing = sorted(set(self.params) - set(state))
        unexpected = sorted(set(state) - set(self.params))
        if missing or unexpected:
            raise ValueError(f"Sequential.load_state_dict: state must have exactly the keys "
                             f"{sorted(self.params)}, got missing {missing}, unexpected "
                             f"{unexpected}")
        for key, target in self.params.items():
            value = np.asarray(state[key])
            if value.shape != target.shape:
                raise ValueError(f"Sequential.load_state_dict: {key} must have shape "
                                 f"{target.shape}, got {value.shape}")
            if value.dtype.kind not in "fiu":
                raise TypeError(f"Sequential.load_state_dict: {key} must be numeric, "
                                f"got dtype {value.dtype}")
            target[...] = value

    def save(self, path):
        """Save the parameters to an ``.npz`` file (keys as in `state_dict`)."""
        np.savez(path, **self.params)

    def load(self, path):
        """Load parameters saved by `save` (or any ``.npz`` with the same keys)."""
        with np.load(path) as data:
            self.load_state_dict({key: data[key] for key in data.files})

    def summary(self, input_shape):
        """The network's arithmetic for one input image of `input_shape` (C, H, W): per layer
        output shape, activations and parameters, and the totals (see `NetworkSummary`)."""
        from fastconv._summary import NetworkSummary
        return NetworkSummary(self, input_shape)

    def to_fully_convolutional(self, input_shape):
        """The same network with every Linear layer turned into a convolution, for images of
        `input_shape` (C, H, W): the first Linear becomes an FH x FW convolution over the volume
        reaching it, later ones 1x1 convolutions, and Flatten layers are dropped. Applied to a
        larger image, the result is the map of class scores the original gives on every crop of
        `input_shape` at the network's total stride, in one pass; exactly so when no
        convolution pads (with padding, a crop's border sees zeros where the large image has
        pixels). The new network shares no arrays with this one.

        Returns
        -------
        Sequential
        """
        import copy
        layers = []
        shape = tuple(input_shape)
        for layer in self.layers:
            out_shape = layer.output_shape(shape)
            if isinstance(layer, Flatten):
                out_shape = shape  # the volume stays a volume for the convolution that follows
            elif isinstance(layer, Linear):
                volume = shape if len(shape) == 3 else (shape[0], 1, 1)
                layers.append(layer.to_conv2d(volume))
                out_shape = (layer.out_features, 1, 1)
            else:
                layers.append(copy.deepcopy(layer))
            shape = out_shape
        return Sequential(*layers)

    def __repr__(self):
        inner = ",\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
