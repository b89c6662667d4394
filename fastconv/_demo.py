"""python -m fastconv demo: the seed's small ConvNet front end on a CIFAR-sized batch, run by
every algorithm, checked against plain NumPy and timed."""
import time

import numpy as np

import fastconv


def _numpy_conv2d(x, w, b, padding):
    """The same layer in plain NumPy (sliding windows + tensordot), float64, as the check."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    y = np.tensordot(windows, w.astype(np.float64), axes=([1, 4, 5], [1, 2, 3]))
    return y.transpose(0, 3, 1, 2) + b[:, None, None]


def main():
    rng = np.random.default_rng(0)
    # INPUT [64x3x32x32] -> CONV 12 filters 3x3 pad 1 -> RELU -> CONV 24 filters 3x3 stride 2.
    x = rng.standard_normal((64, 3, 32, 32), dtype=np.float32)
    w1 = (rng.standard_normal((12, 3, 3, 3)) * np.sqrt(2 / 27)).astype(np.float32)
    b1 = np.zeros(12, np.float32)
    w2 = (rng.standard_normal((24, 12, 3, 3)) * np.sqrt(2 / 108)).astype(np.float32)
    b2 = np.zeros(24, np.float32)
    fastconv.show_config()
    print()
    print(f"{'layer':<28}{'algorithm':<11}{'ms':>8}{'GFLOP/s':>9}{'max rel. error':>16}")
    worst = 0.0
    for algorithm in ("direct", "im2col", "auto"):
        h = x
        for name, w, b, stride in (("conv1 3->12 3x3 pad 1", w1, b1, 1),
                                   ("conv2 12->24 3x3 pad 1 s2", w2, b2, 2)):
            fastconv.conv2d(h, w, b, stride=stride, padding=1, algorithm=algorithm)
            start = time.perf_counter()
            y = fastconv.conv2d(h, w, b, stride=stride, padding=1, algorithm=algorithm)
            seconds = time.perf_counter() - start
            truth = _numpy_conv2d(h, w, b, 1)[:, :, ::stride, ::stride]
            error = np.abs(y - truth).max() / np.abs(truth).max()
            worst = max(worst, error)
            flops = 2 * y.size * w[0].size
            ran = fastconv.last_algorithm()
            print(f"{name:<28}{algorithm + ('->' + ran if algorithm == 'auto' else ''):<11}"
                  f"{seconds * 1e3:8.2f}{flops / seconds / 1e9:9.1f}{error:16.2e}")
            h = np.maximum(y, 0)
    if worst > 1e-5:
        print(f"\nMISMATCH: largest relative error {worst:.2e} against NumPy")
        return 1
    print(f"\nevery output matches the NumPy computation (largest relative error {worst:.1e})")
    return 0
