"""fastconv.dask: lazy results with the right chunks and dtype, equal exactly to fastconv on the
whole batch, on dask's threaded scheduler and on a two-process distributed.LocalCluster bound to
127.0.0.1; chunking along C, H, W is merged with a warning; tasks do not oversubscribe."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastconv
from fastconv.layers import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
fdask = pytest.importorskip("fastconv.dask")
PerformanceWarning = pytest.importorskip("dask.array.core").PerformanceWarning

from conftest import RTOL, raises  # noqa: E402

BATCH_CHUNKS = (3, 5, 1, 7)


@pytest.fixture(scope="module")
def client():
    """Two worker processes with one thread each, closed when the module's tests end."""
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        # Without a dashboard the scheduler still serves HTTP, on 8787 or, if taken, any port.
        warnings.filterwarnings("ignore", "Port 8787 is already in use", UserWarning)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(params=[np.float32, np.float64])
def batch(request):
    """An (N, C, H, W) batch as NumPy and as a dask array chunked along N only, unevenly."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((sum(BATCH_CHUNKS), 3, 13, 11)).astype(request.param)
    return x, da.from_array(x, chunks=(BATCH_CHUNKS, 3, 13, 11))


def small_network(dtype, classifier=False):
    """Convolutions, ReLU, max-pooling and Flatten (all fastconv: exact for any chunking), and
    with `classifier` a Linear layer (NumPy's BLAS: a one-image chunk may round differently)."""
    layers = [Conv2D(3, 6, 3, padding=1, seed=1, dtype=dtype), ReLU(), MaxPool2D(2),
              Conv2D(6, 5, (3, 2), stride=(1, 2), seed=2, dtype=dtype), ReLU(), Flatten()]
    if classifier:
        layers.append(Linear(5 * 4 * 2, 4, seed=3, dtype=dtype))
    return Sequential(*layers)


def weights(dtype, K=7, C=3):
    rng = np.random.default_rng(9)
    return (rng.standard_normal((K, C, 3, 3)).astype(dtype),
            rng.standard_normal(K).astype(dtype))


def check_lazy(y, expected, batch_chunks):
    """y is a dask array with expected's shape and dtype, batch_chunks along N and one chunk
    along every other axis, before anything is computed."""
    assert isinstance(y, da.Array)
    assert y.shape == expected.shape and y.dtype == expected.dtype
    assert y.chunks == (batch_chunks,) + tuple((s,) for s in expected.shape[1:])


def test_conv2d_chunks_dtype_and_values_equal_fastconv_on_the_whole_batch(batch):
    x, dx = batch
    w, b = weights(x.dtype)
    kwargs = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    expected = fastconv.conv2d(x, w, b, **kwargs)
    y = fdask.conv2d(dx, w, b, **kwargs)
    check_lazy(y, expected, BATCH_CHUNKS)
    assert np.array_equal(y.compute(scheduler="threads"), expected)


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
def test_conv2d_without_bias_and_grouped_equals_fastconv(batch, algorithm):
    x, dx = batch
    w, _ = weights(x.dtype, K=6, C=1)
    expected = fastconv.conv2d(x, w, groups=3, padding="same", algorithm=algorithm)
    y = fdask.conv2d(dx, w, groups=3, padding="same", algorithm=algorithm)
    check_lazy(y, expected, BATCH_CHUNKS)
    assert np.array_equal(y.compute(scheduler="threads"), expected)


def test_max_pool2d_chunks_dtype_and_values_equal_fastconv(batch):
    x, dx = batch
    expected = fastconv.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)
    y = fdask.max_pool2d(dx, 3, stride=2, padding=1, ceil_mode=True)
    check_lazy(y, expected, BATCH_CHUNKS)
    assert np.array_equal(y.compute(scheduler="threads"), expected)


def test_forward_through_a_sequential_equals_its_forward_and_leaves_its_caches(batch):
    x, dx = batch
    net = small_network(x.dtype)
    expected = net.forward(x)
    cached = net[0]._x
    y = fdask.forward(net, dx)
    check_lazy(y, expected, BATCH_CHUNKS)
    assert np.array_equal(y.compute(scheduler="threads"), expected)
    assert net[0]._x is cached


def test_forward_through_a_classifier_has_its_chunks_and_its_values_within_rounding(batch):
    x, dx = batch
    net = small_network(x.dtype, classifier=True)
    expected = net.forward(x)
    y = fdask.forward(net, dx)
    check_lazy(y, expected, BATCH_CHUNKS)
    np.testing.assert_allclose(y.compute(scheduler="threads"), expected,
                               rtol=10 * RTOL[x.dtype], atol=RTOL[x.dtype])


def test_chunks_along_c_h_w_warn_are_merged_and_give_the_same_result(batch):
    x, _ = batch
    w, b = weights(x.dtype)
    dx = da.from_array(x, chunks=(4, 2, 5, 6))
    with pytest.warns(PerformanceWarning, match="conv2d: x must be chunked along the batch axis"):
        y = fdask.conv2d(dx, w, b, padding=1)
    check_lazy(y, fastconv.conv2d(x, w, b, padding=1), dx.chunks[0])
    assert np.array_equal(y.compute(scheduler="threads"), fastconv.conv2d(x, w, b, padding=1))
    with pytest.warns(PerformanceWarning, match="max_pool2d: x must be chunked"):
        pooled = fdask.max_pool2d(dx, 2)
    assert np.array_equal(pooled.compute(scheduler="threads"), fastconv.max_pool2d(x, 2))
    net = small_network(x.dtype)
    with pytest.warns(PerformanceWarning, match="forward: x must be chunked"):
        scores = fdask.forward(net, dx)
    assert np.array_equal(scores.compute(scheduler="threads"), net.forward(x))


def test_arguments_are_checked_before_any_compute(batch):
    x, dx = batch
    w, b = weights(x.dtype)
    with raises(ValueError, "conv2d: padding must be >= 0, got -1"):
        fdask.conv2d(dx, w, padding=-1)
    with raises(ValueError, "conv2d: x must be 4-D (N, C, H, W), got shape (3, 13, 11)"):
        fdask.conv2d(dx[0], w)
    with raises(TypeError, "conv2d: x must be a float32 or float64 array, got dtype int64"):
        fdask.conv2d(da.zeros((2, 3, 5, 5), dtype=np.int64), w)
    with raises(ValueError, "conv2d: threads must be"):
        fdask.conv2d(dx, w, threads=0)
    with raises(TypeError, "forward: model must be a fastconv layer (e.g. Sequential), got str"):
        fdask.forward("net", dx)
    other = np.float64 if x.dtype == np.float32 else np.float32
    with raises(TypeError, "forward: x must have the dtype of the model's parameters"):
        fdask.forward(small_network(other), dx)


def test_threaded_tasks_take_their_share_of_threads_and_restore_the_callers_setting(
        batch, restore_threads):
    x, dx = batch
    seen = []

    def record_threads(block):
        with fdask._task_threads(None):
            seen.append(fastconv.get_num_threads())
        return block

    fastconv.set_num_threads(4)
    share = max(1, fastconv.get_num_threads() // 2)
    with dask.config.set(num_workers=2):
        dx.map_blocks(record_threads, meta=np.empty((0,) * 4, x.dtype)).compute(
            scheduler="threads")
    assert len(seen) == len(BATCH_CHUNKS) and set(seen) == {share}
    assert fastconv.get_num_threads() == 4
    y = fdask.conv2d(dx, *weights(x.dtype), threads=3).compute(scheduler="threads")
    assert np.array_equal(y, fastconv.conv2d(x, *weights(x.dtype)))
    assert fastconv.get_num_threads() == 4


def test_results_on_a_two_process_local_cluster_equal_the_local_ones(batch, client):
    x, dx = batch
    w, b = weights(x.dtype)
    net = small_network(x.dtype)
    results = client.compute([fdask.conv2d(dx, w, b, padding=1), fdask.max_pool2d(dx, 2),
                              fdask.forward(net, dx)], sync=True)
    assert np.array_equal(results[0], fastconv.conv2d(x, w, b, padding=1))
    assert np.array_equal(results[1], fastconv.max_pool2d(x, 2))
    assert np.array_equal(results[2], net.forward(x))


def test_cluster_tasks_run_fastconv_on_one_thread_per_worker_thread(client):
    def threads_in_task():
        with fdask._task_threads(None):
            return fastconv.get_num_threads()

    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2 and {w["nthreads"] for w in workers.values()} == {1}
    futures = [client.submit(threads_in_task, pure=False, workers=[address])
               for address in workers]
    assert client.gather(futures) == [1, 1]


def test_import_fastconv_does_not_import_dask():
    code = "import sys, fastconv; print('dask' in sys.modules, 'fastconv.dask' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_missing_dask_is_an_import_error_naming_the_extra():
    code = ("import sys; sys.modules['dask'] = None\n"
            "try:\n    import fastconv.dask\nexcept ImportError as e:\n    print(e)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert "pip install fastconv[dask]" in result.stdout, result.stderr
