"""fastconv: fast CPU convolution and pooling for NumPy users, with PyTorch's semantics.

NCHW arrays in, NCHW arrays out, float32 or float64::

    import numpy as np, fastconv
    y = fastconv.conv2d(x, w, b, stride=1, padding=1)
"""
from fastconv._config import (
    get_isa, get_num_threads, last_algorithm, set_num_threads,
)
from fastconv._geometry import conv_output_size
from fastconv._show_config import show_config
from fastconv.conv import conv2d, conv2d_backward, conv_transpose2d
from fastconv.pool import (
    avg_pool2d, avg_pool2d_backward, lp_pool2d, lp_pool2d_backward, max_pool2d,
    max_pool2d_backward,
)

__version__ = "0.1.0"

__all__ = [
    "avg_pool2d", "avg_pool2d_backward", "lp_pool2d", "lp_pool2d_backward", "max_pool2d",
    "max_pool2d_backward",
    "conv2d", "conv2d_backward", "conv_output_size", "conv_transpose2d", "get_isa", "get_num_threads", "last_algorithm",
    "set_num_threads", "show_config", "__version__",
]
