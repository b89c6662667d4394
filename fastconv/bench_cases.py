"""The standard layer shapes every fastconv performance figure is measured on.

Copied unchanged from the project's shared workload file, ``shared/bench_suite.py`` (CIFAR-10 toy
net, AlexNet conv1, VGG-16, ResNet-style 1x1 / strided / dilated layers, and an FC layer run as a
7x7 convolution on a 384x384 image), so that ``python -m fastconv bench``, the asv benchmarks in
``benchmarks/`` and the reference figures quoted elsewhere all mean the same layers. Every case is
NCHW float32; keep the names and tuple layouts in step with the shared file.

Examples
--------
>>> from fastconv.bench_cases import CONV, conv_flops, conv_output_shape
>>> conv_output_shape(CONV["alexnet_conv1"])
(8, 96, 55, 55)
>>> round(conv_flops(CONV["alexnet_conv1"]) / 1e9, 3)
1.687
"""
from fastconv._geometry import conv_output_size

__all__ = ["CONV", "POOL", "conv_flops", "conv_output_shape", "out_size"]

# name: (N, C, H, W, K, F, stride, pad, dilation)
CONV = {
    "cifar_3x3":      (64,   3,  32,  32,   12,  3, 1, 1, 1),
    "alexnet_conv1":  (8,    3, 227, 227,   96, 11, 4, 0, 1),
    "vgg_conv1_2":    (1,   64, 224, 224,   64,  3, 1, 1, 1),
    "vgg_conv3_2":    (4,  256,  56,  56,  256,  3, 1, 1, 1),
    "vgg_conv5_2":    (8,  512,  14,  14,  512,  3, 1, 1, 1),
    "resnet_1x1":     (4,  256,  56,  56,   64,  1, 1, 0, 1),
    "resnet_3x3_s2":  (4,  128,  56,  56,  128,  3, 2, 1, 1),
    "dilated_3x3_d2": (4,   64,  56,  56,   64,  3, 1, 2, 2),
    "fc_as_conv7":    (1,  512,  12,  12, 4096,  7, 1, 0, 1),
}

# name: (N, C, H, W, F, stride)
POOL = {
    "vgg_pool1":      (4,   64, 224, 224, 2, 2),
    "resnet_pool3s2": (8,   64, 112, 112, 3, 2),
    "cifar_pool":     (64,  12,  32,  32, 2, 2),
}


def out_size(n, f, s, p, d=1):
    """Output length along one axis: ``floor((n + 2p - d(f-1) - 1) / s) + 1``.

    The shared file's helper, kept under its name; it is `fastconv.conv_output_size`.
    """
    return conv_output_size(n, f, stride=s, padding=p, dilation=d)


def conv_output_shape(case):
    """The NCHW output shape ``(N, K, HO, WO)`` of a `CONV` case."""
    N, C, H, W, K, F, S, P, D = case
    return (N, K, out_size(H, F, S, P, D), out_size(W, F, S, P, D))


def conv_flops(case):
    """Floating-point operations of one forward pass of a `CONV` case.

    Multiply-adds counted as 2 FLOPs, the way every paper and vendor counts them:
    ``2 * N * K * HO * WO * C * F * F``.
    """
    N, C, H, W, K, F, S, P, D = case
    _, _, HO, WO = conv_output_shape(case)
    return 2.0 * N * K * HO * WO * C * F * F

