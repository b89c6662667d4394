"""Optimisers that update a network's parameter arrays in place from its gradient arrays."""
import numpy as np


class SGD:
    """Stochastic gradient descent with optional momentum and L2 weight decay, as PyTorch's
    ``torch.optim.SGD``: ``g = grad + weight_decay * p``; ``v = momentum * v + g`` (v = g on the
    first step); ``p -= lr * v``.

    Parameters
    ----------
    params, grads : dict of ndarray
        Same keys (e.g. ``net.params`` and ``net.grads``); params are updated in place.
    lr : float
        Learning rate, >= 0 (0 leaves the parameters as they are, as in PyTorch).
    momentum, weight_decay : float
        >= 0.

    Examples
    --------
    >>> p = {"w": np.ones(2)}; g = {"w": np.ones(2)}
    >>> SGD(p, g, lr=0.1).step(); p["w"]
    array([0.9, 0.9])
    """

    def __init__(self, params, grads, lr, momentum=0.0, weight_decay=0.0):
        for name, value in (("params", params), ("grads", grads)):
            if not isinstance(value, dict):
                raise TypeError(f"SGD: {name} must be a dict of arrays, got "
                                f"{type(value).__name__}")
        if set(params) != set(grads):
            raise ValueError("SGD: params and grads must have the same keys, got "
                             f"{sorted(set(params) ^ set(grads))} in only one")
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"SGD: {name} must be a number, got {value!r}")
        # (written so that NaN fails every check)
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if not 0 <= value < np.inf:
                raise ValueError(f"SGD: {name} must be a finite number >= 0, got {value}")
        for key, p in params.items():
            g = grads[key]
            for name, array in (("params", p), ("grads", g)):
                if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
                    raise TypeError(f"SGD: {name}[{key!r}] must be a float32 or float64 array, "
                                    f"got {type(array).__name__} {getattr(array, 'dtype', '')}")
            if g.shape != p.shape:
                raise ValueError(f"SGD: grads[{key!r}] must have the shape of params[{key!r}] "
                                 f"{p.shape}, got {g.shape}")
            if not p.flags.writeable:
                raise ValueError(f"SGD: params[{key!r}] must be writeable, got a read-only array")
        self.params, self.grads = params, grads
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.velocity = {}

    def step(self):
        """Update every parameter once from its current gradient."""
        for key, p in self.params.items():
            g = self.grads[key]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                if key in self.velocity:
                    v = self.velocity[key]
                    v *= self.momentum
                    v += g
                else:
                    v = self.velocity[key] = np.array(g, copy=True)
                g = v
            p -= (self.lr * g).astype(p.dtype, copy=False)
