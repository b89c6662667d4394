"""fastconv beside PyTorch on the conv layers of whole networks, outside the standard suite.

The standard suite (`python -m fastconv bench`) has nine layers; users run VGG, AlexNet,
ResNet-50 and MobileNet, whose other layers found the gaps this script was written for (VGG's
512-filter 28x28 layers ran the slower tiles, MobileNet's depthwise layers a scalar-width
kernel). For each layer it times fastconv and PyTorch alternately in one process, call by call,
for about two seconds, and prints the median of the per-pair ratios (so a host that speeds up
or slows down mid-run moves both), with fastconv's median time and rate.

Usage: python tools/network_layers.py [--threads 1] [--op fwd|bwd] [--layers name,name,...]
  fwd: conv2d; bwd: conv2d_backward (dx and dw) against PyTorch's convolution_backward.
Needs fastconv installed (the README's first command) and PyTorch (pip install torch==2.13.0).
float32, NCHW; LAYERS gives each layer's shape, kernel, stride, padding and groups.
"""
import argparse
import time

import numpy as np

import fastconv

# name: (N, C, H=W, K, kernel, stride, padding, groups)
LAYERS = {
    "vgg_conv1_1": (2, 3, 224, 64, 3, 1, 1, 1),
    "vgg_conv2_1": (2, 64, 112, 128, 3, 1, 1, 1),
    "vgg_conv2_2": (2, 128, 112, 128, 3, 1, 1, 1),
    "vgg_conv3_1": (2, 128, 56, 256, 3, 1, 1, 1),
    "vgg_conv4_1": (2, 256, 28, 512, 3, 1, 1, 1),
    "vgg_conv4_2": (2, 512, 28, 512, 3, 1, 1, 1),
    "alexnet_conv2": (4, 96, 27, 256, 5, 1, 2, 1),
    "alexnet_conv3": (4, 256, 13, 384, 3, 1, 1, 1),
    "alexnet_conv5": (4, 384, 13, 256, 3, 1, 1, 1),
    "resnet50_conv1": (2, 3, 224, 64, 7, 2, 3, 1),
    "resnet50_1x1_64_256": (4, 64, 56, 256, 1, 1, 0, 1),
    "resnet50_1x1_256_64": (4, 256, 56, 64, 1, 1, 0, 1),
    "resnet50_3x3_64": (4, 64, 56, 64, 3, 1, 1, 1),
    "resnet50_3x3_128": (4, 128, 28, 128, 3, 1, 1, 1),
    "resnet50_3x3_256": (4, 256, 14, 256, 3, 1, 1, 1),
    "resnet50_3x3_512": (4, 512, 7, 512, 3, 1, 1, 1),
    "resnet50_1x1_1024_256": (4, 1024, 14, 256, 1, 1, 0, 1),
    "resnet50_1x1_256_1024": (4, 256, 14, 1024, 1, 1, 0, 1),
    "resnet50_1x1_2048_512": (4, 2048, 7, 512, 1, 1, 0, 1),
    "resnet50_1x1_512_2048": (4, 512, 7, 2048, 1, 1, 0, 1),
    "resnet50_1x1_stride_2_512_1024": (4, 512, 28, 1024, 1, 2, 0, 1),
    "resnet50_3x3_stride_2_256": (4, 256, 28, 256, 3, 2, 1, 1),
    "mobilenet_dw_32_112": (2, 32, 112, 32, 3, 1, 1, 32),
    "mobilenet_dw_512_14": (4, 512, 14, 512, 3, 1, 1, 512),
    "mobilenet_dw_stride_2_128": (4, 128, 56, 128, 3, 2, 1, 128),
    "mobilenet_pointwise_512": (4, 512, 14, 512, 1, 1, 0, 1),
    "resnext_groups_32": (4, 128, 56, 128, 3, 1, 1, 32),
}


def compare(torch, name, op, seconds=2.0):
    """(median of fastconv's time / PyTorch's over alternating calls, fastconv's median ms,
    its GFLOP/s, the algorithm auto chose) for one layer."""
    N, C, H, K, F, S, P, G = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, H), np.float32)
    w = (rng.standard_normal((K, C // G, F, F)) / np.sqrt(C // G * F * F)).astype(np.float32)
    y = fastconv.conv2d(x, w, stride=S, padding=P, groups=G)
    algorithm = fastconv.last_algorithm()
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    if op == "fwd":
        def ours():
            fastconv.conv2d(x, w, stride=S, padding=P, groups=G)

        def theirs():
            torch.nn.functional.conv2d(xt, wt, stride=S, padding=P, groups=G)
    else:
        dy = rng.standard_normal(y.shape, np.float32)
        dyt = torch.from_numpy(dy)

        def ours():
            fastconv.conv2d_backward(dy, x, w, stride=S, padding=P, groups=G)

        def theirs():
            torch.ops.aten.convolution_backward(dyt, xt, wt, None, [S, S], [P, P], [1, 1],
                                                False, [0, 0], G, [True, True, False])
    ours()
    theirs()
    ratios, times = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(ratios) < 5:
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        theirs()
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / (t2 - t1))
        times.append(t1 - t0)
    flops = 2 * N * K * y.shape[2] * y.shape[3] * (C // G) * F * F
    median = float(np.median(times))
    return float(np.median(ratios)), median * 1e3, flops / median / 1e9, algorithm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--op", choices=["fwd", "bwd"], default="fwd")
    parser.add_argument("--layers", default=",".join(LAYERS))
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit("network_layers.py needs PyTorch: pip install torch==2.13.0") from None
    torch.set_num_threads(args.threads)
    fastconv.set_num_threads(args.threads)
    print(f"{args.op} at {args.threads} thread(s): ours/PyTorch = median of per-call ratios")
    for name in args.layers.split(","):
        ratio, ms, rate, algorithm = compare(torch, name, args.op)
        print(f"{name:32s} {algorithm:7s} ours/PyTorch {ratio:5.2f}  ours {ms:8.2f} ms "
              f"{rate:6.1f} GFLOP/s", flush=True)


if __name__ == "__main__":
    main()
