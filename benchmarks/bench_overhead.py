"""asv benchmarks of the fixed cost of a call: each public function on a tiny input (one 4 x 4
plane, a 3 x 3 or 2 x 2 window), where validation, allocation and dispatch are nearly all of the
time. A network of small layers at batch 1 pays this on every layer."""
import numpy as np

import fastconv

OPERATIONS = ["conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_indices",
              "max_pool2d_backward", "avg_pool2d"]


class CallOverhead:
    params = [OPERATIONS]
    param_names = ["operation"]

    def setup(self, operation):
        fastconv.set_num_threads(1)
        x = np.ones((1, 1, 4, 4), np.float32)
        w = np.ones((1, 1, 3, 3), np.float32)
        dy = np.ones((1, 1, 2, 2), np.float32)
        pooled, indices = fastconv.max_pool2d(x, 2, return_indices=True)
        self.call = {
            "conv2d": lambda: fastconv.conv2d(x, w),
            "conv2d_backward": lambda: fastconv.conv2d_backward(dy, x, w),
            "max_pool2d": lambda: fastconv.max_pool2d(x, 2),
            "max_pool2d_indices": lambda: fastconv.max_pool2d(x, 2, return_indices=True),
            "max_pool2d_backward": lambda: fastconv.max_pool2d_backward(pooled, indices, x.shape),
            "avg_pool2d": lambda: fastconv.avg_pool2d(x, 2),
        }[operation]

    def teardown(self, operation):
        fastconv.set_num_threads(None)

    def time_call(self, operation):
        self.call()
