"""Sequential.summary(): a network's arithmetic (output sizes, activations, parameters, memory),
tabulated as CS231n tabulates VGG-16. Every number comes from the layers' own output_shape and
parameters; nothing here re-derives a size."""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SummaryRow:
    """One line of the table: the input, or a CONV, POOL or FC layer's output."""
    index: int          # position in the Sequential; -1 for the input
    name: str           # e.g. "CONV3-64", "POOL2", "FC-4096", "INPUT"
    output_shape: tuple  # one image, (C, H, W) or (features,)
    activations: int    # numbers in that output
    parameters: int     # weights and biases of the layer


def _layer_name(layer, out_shape):
    kind = layer.kind
    if kind == "conv":
        fh, fw = layer.kernel_size
        size = str(fh) if fh == fw else f"{fh}x{fw}"
        return f"CONV{size}-{out_shape[0]}"
    if kind == "pool":
        kernel = layer.kernel_size if isinstance(layer.kernel_size, int) else \
            "x".join(str(k) for k in layer.kernel_size)
        prefix = {"MaxPool2D": "POOL", "AvgPool2D": "AVGPOOL", "LPPool2D": "LPPOOL"}
        return f"{prefix.get(type(layer).__name__, 'POOL')}{kernel}"
    return f"FC-{out_shape[0]}"


def _bytes(count):
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{count} B"


def _format_shape(shape):
    if len(shape) == 3:
        c, h, w = shape
        return f"[{h}x{w}x{c}]"
    return f"[{'x'.join(str(s) for s in shape)}]"


class NetworkSummary:
    """The arithmetic of a Sequential for one input image.

    Attributes
    ----------
    rows : list of SummaryRow
        The input and every CONV, POOL and FC layer (ReLU works in place and Flatten is a view:
        neither adds activations or parameters).
    total_params : int
        Weights and biases of the whole network.
    total_activations : int
        Numbers in the input and in every CONV, POOL and FC output, for one image.
    itemsize : int
        Bytes per number (the network's dtype).
    forward_bytes_per_image, training_bytes_per_image : int
        Activation memory of one image for a forward pass, and for forward + backward (each
        activation also gets a gradient: twice as much).
    parameter_bytes : int
    """

    def __init__(self, network, input_shape):
        shape = tuple(int(s) for s in input_shape)
        self.rows = [SummaryRow(-1, "INPUT", shape, int(np.prod(shape)), 0)]
        dtypes = [p.dtype for p in network.params.values()]
        self.itemsize = dtypes[0].itemsize if dtypes else 4
        for index, layer in enumerate(network.layers):
            shape = layer.output_shape(shape)
            if layer.kind in ("conv", "pool", "fc"):
                self.rows.append(SummaryRow(index, _layer_name(layer, shape), shape,
                                            int(np.prod(shape)), layer.parameter_count()))
        self.total_params = network.parameter_count()
        self.total_activations = sum(row.activations for row in self.rows)
        self.forward_bytes_per_image = self.total_activations * self.itemsize
        self.training_bytes_per_image = 2 * self.forward_bytes_per_image
        self.parameter_bytes = self.total_params * self.itemsize

    def bytes(self, batch_size=1, training=False):
        """Memory of activations for `batch_size` images plus the parameters (and, when
        training, their gradients): what one forward (+ backward) pass holds at its peak."""
        per_image = self.training_bytes_per_image if training else self.forward_bytes_per_image
        return batch_size * per_image + self.parameter_bytes * (2 if training else 1)

    def __str__(self):
        lines = [f"{'layer':<12}{'output':>16}{'activations':>16}{'parameters':>16}"]
        for row in self.rows:
            lines.append(f"{row.name:<12}{_format_shape(row.output_shape):>16}"
                         f"{row.activations:>16,}{row.parameters:>16,}")
        lines.append(f"{'TOTAL':<12}{'':>16}{self.total_activations:>16,}{self.total_params:>16,}")
        lines.append(f"memory per image: {_bytes(self.forward_bytes_per_image)} forward, "
                     f"{_bytes(self.training_bytes_per_image)} forward + backward; "
                     f"parameters {_bytes(self.parameter_bytes)} ({self.itemsize * 8}-bit numbers)")
        return "\n".join(lines)

    def __repr__(self):
        return str(self)
