"""fastconv on dask arrays: a batch too large for one machine, split along N, one fastconv call
per chunk on whichever worker holds it. Install with ``pip install fastconv[dask]``.

Every function takes a `dask.array.Array` of shape (N, C, H, W) chunked along the batch axis N
only, and returns a lazy `dask.array.Array` whose batch chunks are those of the input and whose
other axes are one chunk each, sized (and validated) from the shapes alone: nothing is computed
until ``.compute()``. Weights travel once per worker, not once per chunk. The results are
bit-identical to fastconv on the whole batch (fastconv's results depend neither on the batch
size nor on the thread count), except after a `fastconv.layers.Linear` layer: it multiplies with
NumPy's BLAS, which may round a chunk of one image differently from a batch (convert it with
`Sequential.to_fully_convolutional` for exact results).

Threads: dask already runs several tasks at once in each process (a worker's ``nthreads``; the
local threaded scheduler's pool), so a task gives fastconv its share of the process's threads,
``max(1, fastconv.get_num_threads() // tasks_at_once)``, unless ``threads=`` says otherwise.
Workers started by a nanny (``dask worker``, ``LocalCluster(processes=True)``) have
``OMP_NUM_THREADS=1``, so there each task runs on one thread: the cluster's parallelism is its
task slots. While tasks run, the process's `fastconv.set_num_threads` setting is that share; the
caller's setting is restored when the last task of the process ends.
"""
import contextlib
import sys
import threading
import warnings

try:
    import dask
    import dask.array as da
    import dask.system
    from dask.array.core import PerformanceWarning
except ImportError as error:
    raise ImportError(f"fastconv.dask needs dask: pip install fastconv[dask] ({error})") from error

import numpy as np

import fastconv
from fastconv import _config, _geometry
from fastconv.layers import Layer

__all__ = ["conv2d", "forward", "max_pool2d"]

_lock = threading.Lock()
_tasks_running = 0
_caller_setting = None
_process_threads = None


def _tasks_at_once():
    """How many tasks this process runs at once: the distributed worker's thread count, else the
    pool size of dask's local threaded scheduler (dask config ``num_workers``, else the CPUs)."""
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            return distributed.get_worker().state.nthreads
        except ValueError:  # not inside a distributed worker
            pass
    return dask.config.get("num_workers", None) or dask.system.CPU_COUNT


@contextlib.contextmanager
def _task_threads(threads):
    """Run a task's fastconv calls on `threads` threads, or (None) on this task's share of the
    process's threads; the first task in saves the caller's setting, the last one out restores
    it, so tasks running side by side never see each other's restore."""
    global _tasks_running, _caller_setting, _process_threads
    with _lock:
        if _tasks_running == 0:
            _caller_setting = _config._requested_threads
            _process_threads = fastconv.get_num_threads()
        _tasks_running += 1
        fastconv.set_num_threads(
            threads if threads is not None else max(1, _process_threads // _tasks_at_once()))
    try:
        yield
    finally:
        with _lock:
            _tasks_running -= 1
            if _tasks_running == 0:
                fastconv.set_num_threads(_caller_setting)


def _batch_chunked(func, x):
    """x as a 4-D float dask array chunked along N only (other chunking: rechunked, with a
    PerformanceWarning)."""
    x = da.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{func}: x must be 4-D (N, C, H, W), got shape {x.shape}")
    if np.dtype(x.dtype) not in _geometry.FLOAT_DTYPES:
        raise TypeError(f"{func}: x must be a float32 or float64 array, got dtype {x.dtype}")
    if any(np.isnan(extent) for extent in x.shape[1:]):
        raise ValueError(f"{func}: x must have known C, H, W sizes, got shape {x.shape}")
    if any(len(chunks) > 1 for chunks in x.chunks[1:]):
        warnings.warn(f"{func}: x must be chunked along the batch axis only, got chunks "
                      f"{x.chunks[1:]} along C, H, W; rechunking them to one chunk each",
                      PerformanceWarning, stacklevel=3)
        x = x.rechunk({1: -1, 2: -1, 3: -1})
    return x


def _map_batches(block_function, x, out_shape, dtype, **kwargs):
    """Apply block_function(x_chunk, **kwargs) -> (n, *out_shape) to every batch chunk of x."""
    out_ndim = 1 + len(out_shape)
    axes = {}
    if out_ndim < x.ndim:
        axes["drop_axis"] = list(range(out_ndim, x.ndim))
    elif out_ndim > x.ndim:
        axes["new_axis"] = list(range(x.ndim, out_ndim))
    return da.map_blocks(block_function, x, chunks=(x.chunks[0],) + tuple((s,) for s in out_shape),
                         dtype=dtype, meta=np.empty((0,) * out_ndim, dtype), **axes, **kwargs)


def _conv2d_block(x, w, b, threads, kwargs):
    with _task_threads(threads):
        return fastconv.conv2d(x, w, b, **kwargs)


def conv2d(x, w, b=None, *, threads=None, **kwargs):
    """`fastconv.conv2d` over a batch chunked along N, lazily.

    Parameters
    ----------
    x : dask.array.Array, shape (N, C, H, W)
        float32 or float64, chunked along N only (chunks along C, H or W are merged, with a
        `dask.array.PerformanceWarning`).
    w : ndarray, shape (K, C/groups, FH, FW)
        Filters, same dtype as `x`; sent to each worker once.
    b : ndarray, shape (K,), optional
        Bias, same dtype as `x`.
    threads : int, optional
        fastconv threads per task; default: the task's share of its process (module docstring).
    **kwargs
        `stride`, `padding`, `dilation`, `groups`, `algorithm`, as `fastconv.conv2d`.

    Returns
    -------
    y : dask.array.Array, shape (N, K, HO, WO)
        Lazy; x's batch chunks, one chunk along K, HO, WO; x's dtype. Every argument is checked
        now, with fastconv.conv2d's messages.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones((64, 3, 32, 32), dtype=np.float32, chunks=(16, 3, 32, 32))
    >>> y = conv2d(x, np.ones((8, 3, 3, 3), np.float32), padding=1)
    >>> y.shape, y.chunks[0]
    ((64, 8, 32, 32), (16, 16, 16, 16))
    """
    x = _batch_chunked("conv2d", x)
    if threads is not None:
        threads = _geometry.check_int("conv2d", "threads", threads, 1)
    # conv2d on an empty batch validates every argument and sizes the output, computing nothing.
    probe = fastconv.conv2d(np.empty((0,) + x.shape[1:], x.dtype), w, b, **kwargs)
    w, b = np.asarray(w), None if b is None else np.asarray(b)
    return _map_batches(_conv2d_block, x, probe.shape[1:], probe.dtype,
                        w=dask.delayed(w, pure=True),
                        b=None if b is None else dask.delayed(b, pure=True),
                        threads=threads, kwargs=kwargs)


def _max_pool2d_block(x, threads, kwargs):
    with _task_threads(threads):
        return fastconv.max_pool2d(x, **kwargs)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
               threads=None):
    """`fastconv.max_pool2d` over a batch chunked along N, lazily (values only, no indices).

    Parameters
    ----------
    x : dask.array.Array, shape (N, C, H, W)
        float32 or float64, chunked along N only (other chunking is merged, with a warning).
    kernel_size, stride, padding, dilation, ceil_mode
        As `fastconv.max_pool2d`.
    threads : int, optional
        fastconv threads per task; default: the task's share of its process (module docstring).

    Returns
    -------
    y : dask.array.Array, shape (N, C, HO, WO)
        Lazy; x's batch chunks, one chunk along C, HO, WO; x's dtype.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.zeros((10, 4, 8, 8), dtype=np.float64, chunks=(5, 4, 8, 8))
    >>> max_pool2d(x, 2).chunks
    ((5, 5), (4,), (4,), (4,))
    """
    x = _batch_chunked("max_pool2d", x)
    if threads is not None:
        threads = _geometry.check_int("max_pool2d", "threads", threads, 1)
    kwargs = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                  ceil_mode=ceil_mode)
    probe = fastconv.max_pool2d(np.empty((0,) + x.shape[1:], x.dtype), **kwargs)
    return _map_batches(_max_pool2d_block, x, probe.shape[1:], probe.dtype, threads=threads,
                        kwargs=kwargs)


def _without_caches(layer):
    """A shallow copy of `layer` (nested Sequential layers too) sharing its parameters: forward
    caches its inputs for backward, and tasks must neither race on the caller's model's caches
    nor keep a chunk's activations alive in it."""
    copy = object.__new__(type(layer))
    copy.__dict__.update(layer.__dict__)
    if hasattr(layer, "layers"):
        copy.layers = [_without_caches(inner) for inner in layer.layers]
    return copy


def _forward_block(x, model, threads):
    with _task_threads(threads):
        return _without_caches(model).forward(x)


def forward(model, x, *, threads=None):
    """``model.forward`` (inference) over a batch chunked along N, lazily.

    Parameters
    ----------
    model : fastconv.layers.Layer
        Usually a `fastconv.layers.Sequential`. Sent to each worker once; its parameters are
        read when the result is computed, and its forward caches are left untouched.
    x : dask.array.Array, shape (N, C, H, W)
        float32 or float64, the dtype of the model's parameters; chunked along N only (other
        chunking is merged, with a warning).
    threads : int, optional
        fastconv threads per task; default: the task's share of its process (module docstring).

    Returns
    -------
    y : dask.array.Array, shape (N,) + model.output_shape((C, H, W))
        Lazy, e.g. (N, classes) for a classifier; x's batch chunks, one chunk along every other
        axis; x's dtype.

    Examples
    --------
    >>> import dask.array as da
    >>> from fastconv.layers import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential
    >>> net = Sequential(Conv2D(3, 8, 3, padding=1, seed=0), ReLU(), MaxPool2D(2), Flatten(),
    ...                  Linear(8 * 16 * 16, 10, seed=0))
    >>> x = da.zeros((100, 3, 32, 32), dtype=np.float32, chunks=(25, 3, 32, 32))
    >>> forward(net, x).chunks
    ((25, 25, 25, 25), (10,))
    """
    if not isinstance(model, Layer):
        raise TypeError(f"forward: model must be a fastconv layer (e.g. Sequential), "
                        f"got {type(model).__name__}")
    x = _batch_chunked("forward", x)
    if threads is not None:
        threads = _geometry.check_int("forward", "threads", threads, 1)
    for name, param in model.params.items():
        if param.dtype != x.dtype:
            raise TypeError(f"forward: x must have the dtype of the model's parameters "
                            f"({name}: {param.dtype}), got {x.dtype}")
    out_shape = model.output_shape(x.shape[1:])
    return _map_batches(_forward_block, x, out_shape, x.dtype,
                        model=dask.delayed(model, pure=False), threads=threads)
