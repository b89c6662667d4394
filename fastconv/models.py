"""Classic ConvNets built from fastconv.layers, with PyTorch's ``nn.Sequential`` parameter keys.

Each function returns a freshly He-initialised `Sequential` (reproducible with `seed`); the
architecture is the ``INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC`` pattern.
"""
import numpy as np

from fastconv.layers import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential


def _seeds(seed):
    """One independent seed per layer from a single seed (None stays random)."""
    sequence = np.random.SeedSequence(seed)
    while True:
        yield int(sequence.spawn(1)[0].generate_state(1)[0])


def cifar_simple(num_classes=10, dtype=np.float32, seed=None):
    """INPUT [32x32x3] -> CONV 12 filters 3x3 pad 1 -> RELU -> POOL 2x2 -> FC: the CS231n example
    network for CIFAR-10. Input (N, 3, 32, 32)."""
    s = _seeds(seed)
    return Sequential(
        Conv2D(3, 12, 3, padding=1, dtype=dtype, seed=next(s)), ReLU(), MaxPool2D(2), Flatten(),
        Linear(12 * 16 * 16, num_classes, dtype=dtype, seed=next(s)))


def lenet5(num_classes=10, dtype=np.float32, seed=None):
    """LeNet-5 with ReLU and max-pooling for 28x28 grey images: CONV5-6 (pad 2) -> POOL2 ->
    CONV5-16 -> POOL2 -> FC-120 -> FC-84 -> FC. Input (N, 1, 28, 28)."""
    s = _seeds(seed)
    return Sequential(
        Conv2D(1, 6, 5, padding=2, dtype=dtype, seed=next(s)), ReLU(), MaxPool2D(2),
        Conv2D(6, 16, 5, dtype=dtype, seed=next(s)), ReLU(), MaxPool2D(2), Flatten(),
        Linear(16 * 5 * 5, 120, dtype=dtype, seed=next(s)), ReLU(),
        Linear(120, 84, dtype=dtype, seed=next(s)), ReLU(),
        Linear(84, num_classes, dtype=dtype, seed=next(s)))


def alexnet(num_classes=1000, dtype=np.float32, seed=None):
    """AlexNet (single tower, no dropout or local response normalisation) on 227x227 images, the
    arithmetic CS231n walks through: CONV11-96 stride 4 -> [55x55x96], POOL3 stride 2, CONV5-256,
    POOL3, CONV3-384, CONV3-384, CONV3-256, POOL3 -> [6x6x256], FC-4096, FC-4096, FC.
    Input (N, 3, 227, 227)."""
    s = _seeds(seed)
    return Sequential(
        Conv2D(3, 96, 11, stride=4, dtype=dtype, seed=next(s)), ReLU(), MaxPool2D(3, 2),
        Conv2D(96, 256, 5, padding=2, dtype=dtype, seed=next(s)), ReLU(), MaxPool2D(3, 2),
        Conv2D(256, 384, 3, padding=1, dtype=dtype, seed=next(s)), ReLU(),
        Conv2D(384, 384, 3, padding=1, dtype=dtype, seed=next(s)), ReLU(),
        Conv2D(384, 256, 3, padding=1, dtype=dtype, seed=next(s)), ReLU(), MaxPool2D(3, 2),
        Flatten(),
        Linear(256 * 6 * 6, 4096, dtype=dtype, seed=next(s)), ReLU(),
        Linear(4096, 4096, dtype=dtype, seed=next(s)), ReLU(),
        Linear(4096, num_classes, dtype=dtype, seed=next(s)))


VGG16_CONFIGURATION_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                         512, 512, 512, "M")


def vgg16(num_classes=1000, dtype=np.float32, seed=None):
    """VGG-16 (configuration D) on 224x224 images: thirteen CONV3 (pad 1) layers in five stages
    of 64, 128, 256, 512, 512 filters, each stage closed by POOL2, then FC-4096, FC-4096, FC.
    138,357,544 parameters. Input (N, 3, 224, 224)."""
    s = _seeds(seed)
    layers, channels = [], 3
    for item in VGG16_CONFIGURATION_D:
        if item == "M":
            layers.append(MaxPool2D(2))
        else:
            layers += [Conv2D(channels, item, 3, padding=1, dtype=dtype, seed=next(s)), ReLU()]
            channels = item
    layers += [Flatten(),
               Linear(512 * 7 * 7, 4096, dtype=dtype, seed=next(s)), ReLU(),
               Linear(4096, 4096, dtype=dtype, seed=next(s)), ReLU(),
               Linear(4096, num_classes, dtype=dtype, seed=next(s))]
    return Sequential(*layers)
