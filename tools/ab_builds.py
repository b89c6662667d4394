"""Two builds of fastconv's convolution kernels timed against each other in one process.

On a shared host the same build runs 20-50% faster or slower from one process to the next
(the vCPU it lands on, a neighbour's load), more than most kernel changes are worth, so builds
timed in separate processes cannot be compared. This script imports the fastconv on the path
(build A) and loads build B's compiled `_conv` module beside it under a private name; each
round calls conv2d (or dx) with A's module, then B's, then PyTorch's if installed, so all see
the same host. It prints the median times and the median of the per-round ratios B/A.

Usage, after building each variant in its own tree (`python setup.py build_ext --inplace`)
and copying its `fastconv/` directory aside:

    PYTHONPATH=tree_a python tools/ab_builds.py tree_b [--threads 1] [--op fwd|dx|dw]
        [--cases vgg_conv5_2,4x512x28x28x1024x1x2x0x1] [--seconds 6] [--cold]

Cases are names of the standard suite (fastconv/bench_cases.py) or N x C x H x W x K x F x
stride x padding x dilation. --cold evicts the caches (writes 64 MiB) before each call.
Only the Python driver functions in fastconv/conv.py switch modules: both builds must share
that file's interface to `_conv`.
"""
import argparse
import glob
import importlib.util
import os
import time

import numpy as np

import fastconv
import fastconv.conv as conv_module
from fastconv._bench_impls import BACKWARD
from fastconv.bench_cases import CONV


def load_other_build(tree):
    """Build B's `_conv` extension module, loaded from tree/fastconv/ without replacing A's."""
    paths = glob.glob(os.path.join(tree, "fastconv", "_conv*.so"))
    if not paths:
        raise SystemExit(f"ab_builds: no fastconv/_conv*.so under {tree} (build it there first)")
    spec = importlib.util.spec_from_file_location("_conv", paths[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_case(name):
    if name in CONV:
        return CONV[name]
    return tuple(int(value) for value in name.split("x"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", help="tree holding build B's fastconv/_conv*.so")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--op", choices=("fwd", "dx", "dw"), default="fwd")
    parser.add_argument("--cases", default="vgg_conv5_2")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()

    fastconv.set_num_threads(args.threads)
    modules = {"A": conv_module._conv, "B": load_other_build(args.other)}
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    evict = np.zeros(16 << 20, np.float32) if args.cold else None

    for name in args.cases.split(","):
        N, C, H, W, K, F, S, P, D = parse_case(name)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C, F, F), dtype=np.float32)
        dy = rng.standard_normal(fastconv.conv2d(x, w, stride=S, padding=P, dilation=D).shape,
                                 dtype=np.float32)
        calls = {}
        for label, module in modules.items():
            def call(module=module):
                conv_module._conv = module
                if args.op in ("dx", "dw"):
                    return BACKWARD[0 if args.op == "dx" else 1](dy, x, w, S, P, D)
                return fastconv.conv2d(x, w, stride=S, padding=P, dilation=D)
            calls[label] = call
        if torch is not None:
            xt, wt, dyt = (torch.from_numpy(a) for a in (x, w, dy))
            if args.op in ("dx", "dw"):
                calls["PyTorch"] = lambda: torch.ops.aten.convolution_backward(
                    dyt, xt, wt, None, [S, S], [P, P], [D, D], False, [0, 0], 1,
                    [args.op == "dx", args.op == "dw", False])
            else:
                calls["PyTorch"] = lambda: torch.nn.functional.conv2d(
                    xt, wt, stride=S, padding=P, dilation=D)
        same_bits = np.array_equal(calls["A"](), calls["B"]())
        times = {label: [] for label in calls}
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end or len(times["A"]) < 5:
            for label, call in calls.items():
                if evict is not None:
                    evict += 1.0
                start = time.perf_counter()
                call()
                times[label].append(time.perf_counter() - start)
        conv_module._conv = modules["A"]
        medians = "  ".join(f"{label} {np.median(t) * 1e3:.2f} ms" for label, t in times.items())
        ratios = np.array(times["B"]) / np.array(times["A"])
        print(f"{name} {args.op} T={args.threads}: {medians}  B/A: median of per-round ratios "
              f"{np.median(ratios):.3f} over {len(ratios)} rounds; same bits: {same_bits}",
              flush=True)


if __name__ == "__main__":
    main()
