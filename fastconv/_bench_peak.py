"""The ceilings ``python -m fastconv bench`` measures itself, for its "% of peak" column.

- Compute: the best float32 GEMM rate this process gets from a BLAS, at T threads: NumPy's
  ``matmul`` (its BLAS limited to T threads with threadpoolctl) and, when PyTorch is being
  compared, ``torch.mm`` (MKL), on square in-cache matrices (n = 256, 384, 512; ``out=``
  preallocated) called back to back; the best batch of calls counts. It is the peak a tuned
  BLAS reaches here, a lower bound of the FMA peak (on the reference machine, 2 vCPUs with
  AVX-512, an FMA loop in C reached 172 / 343 GFLOP/s at 1 / 2 threads, and MKL's in-cache
  GEMM about 85-95 % of that). No C compiler is assumed on the user's machine, so there is no
  FMA loop here.
- Memory: the copy rate of a 64 MiB float32 array (np.copyto, T Python threads copying disjoint
  slices, bytes read + written), best run: the pooling rows' GB/s are counted the same way.

The best of several short batches is kept, so other processes running now and then lower it
little; a measurement over a busy stretch can still come out low (the table then shows more
than the real % of peak).
"""
import concurrent.futures
import contextlib
import time

import numpy as np

GEMM_SIZES = (256, 384, 512)
# OpenBLAS's worker threads keep spinning for about 0.1-0.2 s after a call returns; at T=2 on two
# CPUs whatever runs meanwhile gets one CPU (measured: resnet_1x1 forward in fastconv took 31 ms
# right after a NumPy matmul, 25 ms after a 0.1 s pause, 6 ms after 0.2 s, 5.7 ms after 0.3 s).
# So anything timed after NumPy's BLAS waits this long first.
BLAS_IDLE_SECONDS = 0.3
COPY_BYTES = 64 * 2**20
QUICK_COPY_BYTES = 8 * 2**20
BATCH_SECONDS = 0.01


def _best_rate(call, work, seconds):
    """Best work/s over batches of back-to-back calls (each batch ~BATCH_SECONDS) during
    `seconds` (at least three batches)."""
    call()
    start = time.perf_counter()
    call()
    inner = max(1, int(BATCH_SECONDS / max(time.perf_counter() - start, 1e-9)))
    best, batches, deadline = 0.0, 0, time.perf_counter() + seconds
    while batches < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(inner):
            call()
        best = max(best, work * inner / (time.perf_counter() - start))
        batches += 1
    return best


def gemm_peak(seconds, numpy_limit=None, threads=1, torch=None, idle_seconds=BLAS_IDLE_SECONDS):
    """{"NumPy matmul": GFLOP/s, "torch.mm": GFLOP/s (with torch)} at `threads` threads;
    `numpy_limit(threads)` is a context limiting NumPy's BLAS (None: not limited). torch.mm is
    timed `idle_seconds` after NumPy's BLAS; the caller waits as long before timing anything."""
    rates = {}
    share = seconds / len(GEMM_SIZES)
    rng = np.random.default_rng(0)
    with numpy_limit(threads) if numpy_limit else contextlib.nullcontext():
        best = 0.0
        for n in GEMM_SIZES:
            a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
            c = np.empty((n, n), np.float32)
            best = max(best, _best_rate(lambda: np.matmul(a, b, out=c), 2.0 * n**3, share))
        rates["NumPy matmul"] = best / 1e9
    if torch is not None:
        time.sleep(idle_seconds)
        best = 0.0
        for n in GEMM_SIZES:
            a, b = (torch.from_numpy(rng.standard_normal((n, n), dtype=np.float32))
                    for _ in range(2))
            c = torch.empty((n, n), dtype=torch.float32)
            best = max(best, _best_rate(lambda: torch.mm(a, b, out=c), 2.0 * n**3, share))
        rates["torch.mm"] = best / 1e9
    return rates


def copy_bandwidth(seconds, threads=1, quick=False):
    """GB/s (bytes read + written) copying a float32 array with `threads` Python threads."""
    size = (QUICK_COPY_BYTES if quick else COPY_BYTES) // 4
    source = np.ones(size, np.float32)
    target = np.zeros(size, np.float32)
    bounds = np.linspace(0, size, threads + 1).astype(int)
    slices = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        def copy():
            list(pool.map(lambda part: np.copyto(target[part], source[part]), slices))
        return _best_rate(copy, 2.0 * source.nbytes, seconds) / 1e9
