"""Helpers the asv benchmark modules share: thread counts, cheap random inputs and a median-rate
timer."""
import os
import statistics
import time

import numpy as np

# Thread counts the benchmarks run at. CI's smoke run (`.ci/run`, FASTCONV_ASV_SMOKE=1) only
# checks that every benchmark still runs, so it takes one: the two-count sweep was 3 of CI's
# 16.5 minutes on a 2-core Zen 3 machine.
THREADS = [1] if os.environ.get("FASTCONV_ASV_SMOKE") == "1" else [1, 2]

# Arrays are filled by repeating a block of this many random values: speed does not depend on
# the values, and drawing fc_as_conv7's 103 M filter values took 2.5 s in every benchmark
# process (asv forks one per benchmark and parameter set). A pooling window never holds two
# equal values: its elements are at most a few rows apart, far less than a block.
RANDOM_BLOCK = 2**20


def random_array(rng, shape):
    """float32 standard-normal values of `shape`: a block of RANDOM_BLOCK draws, repeated."""
    size = int(np.prod(shape))
    return np.resize(rng.standard_normal(min(size, RANDOM_BLOCK), dtype=np.float32), shape)


def median_rate(call, work, min_calls=3, min_seconds=0.2, max_seconds=1.0):
    """work / median time of timed calls after one untimed call: >= `min_calls` calls lasting
    >= `min_seconds` in all, or fewer (at least one) once they last `max_seconds`."""
    call()
    times = []
    while (len(times) < min_calls or sum(times) < min_seconds) and sum(times) < max_seconds:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return work / statistics.median(times)
