"""python -m fastconv demo: train a small ConvNet on the 8x8 handwritten digits that
scikit-learn ships (no download), entirely with fastconv layers, and report test accuracy."""
import argparse
import sys
import time

import numpy as np

from fastconv.layers import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential
from fastconv.losses import softmax_cross_entropy
from fastconv.optim import SGD


def digits_network(seed=0):
    """INPUT [8x8x1] -> [CONV3-16 -> RELU] -> [CONV3-32 -> RELU] -> POOL2 -> FC-64 -> RELU -> FC-10."""
    return Sequential(
        Conv2D(1, 16, 3, padding=1, seed=seed), ReLU(),
        Conv2D(16, 32, 3, padding=1, seed=seed + 1), ReLU(), MaxPool2D(2), Flatten(),
        Linear(32 * 4 * 4, 64, seed=seed + 2), ReLU(),
        Linear(64, 10, seed=seed + 3))


def load_digits_split(test_fraction=0.25, seed=0):
    """The 1,797 scikit-learn digits as float32 (N, 1, 8, 8) images scaled to [0, 1], split into
    train and held-out test sets stratified by class."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise SystemExit("the demo needs scikit-learn (and matplotlib for --plot): "
                         "python -m pip install 'fastconv[demo]'") from None
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, np.newaxis]
    return train_test_split(images, digits.target, test_size=test_fraction, random_state=seed,
                            stratify=digits.target)


def accuracy(network, images, labels, batch_size=256):
    correct = 0
    for start in range(0, len(images), batch_size):
        scores = network.forward(images[start:start + batch_size])
        correct += int((scores.argmax(axis=1) == labels[start:start + batch_size]).sum())
    return correct / len(images)


def _progress(epoch, epochs, done, total, loss, width=30, stream=sys.stderr):
    filled = int(width * done / total)
    stream.write(f"\repoch {epoch:2d}/{epochs} [{'#' * filled}{'.' * (width - filled)}] "
                 f"loss {loss:.4f}")
    stream.flush()


def train(network, x_train, y_train, x_test, y_test, epochs=12, batch_size=32, lr=0.05,
          momentum=0.9, seed=0, show_progress=True):
    """Minibatch SGD with momentum; returns per-epoch history (loss, train and test accuracy)."""
    rng = np.random.default_rng(seed)
    optimiser = SGD(network.params, network.grads, lr=lr, momentum=momentum, weight_decay=1e-4)
    history = {"loss": [], "train_accuracy": [], "test_accuracy": []}
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        losses = []
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            scores = network.forward(x_train[batch])
            loss, dscores = softmax_cross_entropy(scores, y_train[batch])
            network.backward(dscores)
            optimiser.step()
            losses.append(loss)
            if show_progress and sys.stderr.isatty():
                _progress(epoch, epochs, start + len(batch), len(order), np.mean(losses))
        history["loss"].append(float(np.mean(losses)))
        history["train_accuracy"].append(accuracy(network, x_train, y_train))
        history["test_accuracy"].append(accuracy(network, x_test, y_test))
        if show_progress:
            # A log (not a terminal) gets one finished bar per epoch instead of redrawn ones.
            _progress(epoch, epochs, 1, 1, history["loss"][-1])
            sys.stderr.write(f"  train acc {history['train_accuracy'][-1]:.3f}  "
                             f"test acc {history['test_accuracy'][-1]:.3f}\n")
    return history


def save_plot(path, network, history):
    """The first layer's filters as an image grid and the loss/accuracy curves, as a PNG."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: python -m pip install 'fastconv[demo]'") \
            from None
    filters = network[0].params["weight"][:, 0]
    figure = plt.figure(figsize=(11, 4))
    grid = figure.add_gridspec(4, 8, width_ratios=[1, 1, 1, 1, 0.3, 2, 2, 2])
    for i, kernel in enumerate(filters[:16]):
        axis = figure.add_subplot(grid[i // 4, i % 4])
        axis.imshow(kernel, cmap="gray", interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
    figure.text(0.03, 0.95, "first-layer filters (3x3)", fontsize=10)
    curves = figure.add_subplot(grid[:, 5:])
    epochs = np.arange(1, len(history["loss"]) + 1)
    curves.plot(epochs, history["loss"], "o-", label="training loss")
    curves.plot(epochs, history["train_accuracy"], "s-", label="train accuracy")
    curves.plot(epochs, history["test_accuracy"], "^-", label="test accuracy")
    curves.set_xlabel("epoch")
    curves.set_ylim(0, max(1.05, max(history["loss"]) * 1.05))
    curves.grid(alpha=0.3)
    curves.legend(loc="center right")
    curves.set_title("digits ConvNet trained with fastconv")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastconv demo",
        description="Train a small ConvNet on scikit-learn's 8x8 digits with fastconv layers.")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png",
                        help="save the first-layer filters and the training curves")
    args = parser.parse_args(argv)
    x_train, x_test, y_train, y_test = load_digits_split(seed=args.seed)
    network = digits_network(seed=args.seed)
    print(f"digits: {len(x_train)} training and {len(x_test)} held-out test images of 8x8")
    print(network.summary((1, 8, 8)))
    start = time.perf_counter()
    history = train(network, x_train, y_train, x_test, y_test, epochs=args.epochs,
                    seed=args.seed)
    print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.1f} s")
    if args.plot:
        save_plot(args.plot, network, history)
        print(f"saved {args.plot}")
    print(f"test accuracy: {history['test_accuracy'][-1]:.3f}")
    return 0
