"""Whole networks: state dicts (save/load, PyTorch's nn.Sequential weights give PyTorch's
outputs), Sequential.summary() against arithmetic done here from the architectures (VGG-16,
AlexNet, LeNet-5), turning FC layers into convolutions, and a smoke test of the digits demo.
Layer-by-layer gradients and bookkeeping are in test_layers.py."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastconv import models
from fastconv.layers import (
    Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def raises(exc, *fragments):
    """pytest.raises(exc) whose message contains every fragment (literally, in this order)."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


def random_images(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def randomise_biases(net, seed=1):
    """He initialisation leaves biases at 0, which would hide a bias that is never applied."""
    rng = np.random.default_rng(seed)
    for key, value in net.params.items():
        if key.endswith(".bias"):
            value[...] = 0.1 * rng.standard_normal(value.shape)
    return net


# ---------------------------------------------------------------------------------------------
# state_dict, save and load
# ---------------------------------------------------------------------------------------------
def test_save_then_load_into_a_differently_seeded_net_gives_identical_outputs(tmp_path):
    source = randomise_biases(models.lenet5(seed=1))
    target = models.lenet5(seed=2)
    x = random_images((3, 1, 28, 28))
    expected = source.forward(x)
    assert not np.allclose(target.forward(x), expected), "the two seeds gave the same network"
    path = tmp_path / "lenet5.npz"
    source.save(path)
    with np.load(path) as data:
        assert sorted(data.files) == sorted(source.params)
    arrays = {key: value for key, value in target.params.items()}
    target.load(path)
    np.testing.assert_array_equal(target.forward(x), expected)
    for key, value in target.params.items():
        assert value is arrays[key], f"{key}: load replaced the array instead of filling it"
        np.testing.assert_array_equal(value, source.params[key])


def test_state_dict_round_trip_gives_identical_outputs():
    source = randomise_biases(models.cifar_simple(seed=3))
    target = models.cifar_simple(seed=4)
    x = random_images((2, 3, 32, 32))
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target.forward(x), source.forward(x))


def test_state_dict_holds_copies_under_pytorch_keys():
    net = models.cifar_simple(seed=5)
    state = net.state_dict()
    assert list(state) == ["0.weight", "0.bias", "4.weight", "4.bias"]
    for key, value in state.items():
        assert value is not net.params[key] and not np.shares_memory(value, net.params[key])
        np.testing.assert_array_equal(value, net.params[key])
    before = net.params["0.weight"].copy()
    state["0.weight"][...] = 0
    np.testing.assert_array_equal(net.params["0.weight"], before)


def test_load_state_dict_rejects_missing_keys():
    net = models.cifar_simple(seed=6)
    state = net.state_dict()
    del state["4.bias"]
    with raises(ValueError, "load_state_dict", "missing ['4.bias']"):
        net.load_state_dict(state)


def test_load_state_dict_rejects_unexpected_keys():
    net = models.cifar_simple(seed=7)
    state = net.state_dict()
    state["5.weight"] = np.zeros((10, 10), np.float32)
    with raises(ValueError, "load_state_dict", "unexpected ['5.weight']"):
        net.load_state_dict(state)


def test_load_state_dict_rejects_wrong_shapes_and_leaves_nothing_half_loaded_for_that_key():
    net = models.cifar_simple(seed=8)
    state = net.state_dict()
    state["4.weight"] = np.zeros((10, 3000), np.float32)
    before = net.params["4.weight"].copy()
    with raises(ValueError, "load_state_dict", "4.weight", "(10, 3072)", "(10, 3000)"):
        net.load_state_dict(state)
    np.testing.assert_array_equal(net.params["4.weight"], before)


def test_load_state_dict_rejects_non_numeric_arrays():
    net = models.cifar_simple(seed=9)
    state = net.state_dict()
    state["0.bias"] = np.array(["a"] * 12)
    with raises(TypeError, "load_state_dict", "0.bias", "numeric"):
        net.load_state_dict(state)


# ---------------------------------------------------------------------------------------------
# PyTorch's nn.Sequential weights give PyTorch's outputs (and gradients)
# ---------------------------------------------------------------------------------------------
def torch_cifar_simple(nn):
    return nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3072, 10))


def torch_lenet5(nn):
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


TORCH_PAIRS = {
    "cifar_simple": (models.cifar_simple, torch_cifar_simple, (4, 3, 32, 32)),
    "lenet5": (models.lenet5, torch_lenet5, (4, 1, 28, 28)),
}


@pytest.mark.parametrize("name", sorted(TORCH_PAIRS))
def test_pytorch_state_dict_loads_and_gives_pytorchs_outputs(name):
    torch = pytest.importorskip("torch")
    ours_factory, torch_factory, x_shape = TORCH_PAIRS[name]
    torch.manual_seed(0)
    theirs = torch_factory(torch.nn).eval()
    ours = ours_factory(seed=1)
    state = {key: value.detach().numpy() for key, value in theirs.state_dict().items()}
    assert list(state) == list(ours.params)
    ours.load_state_dict(state)
    x = random_images(x_shape, seed=2)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    got = ours.forward(x)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("name", sorted(TORCH_PAIRS))
def test_backward_gives_pytorch_autograd_gradients_in_float64(name):
    torch = pytest.importorskip("torch")
    ours_factory, torch_factory, x_shape = TORCH_PAIRS[name]
    torch.manual_seed(3)
    theirs = torch_factory(torch.nn).double()
    ours = ours_factory(dtype=np.float64, seed=4)
    ours.load_state_dict({key: value.detach().numpy()
                          for key, value in theirs.state_dict().items()})
    x = random_images(x_shape, seed=5, dtype=np.float64)
    r = np.random.default_rng(6).standard_normal((x_shape[0], 10))
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    (theirs(tx) * torch.from_numpy(r)).sum().backward()
    ours.forward(x)
    dx = ours.backward(r)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for key, parameter in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[key], parameter.grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=key)


# ---------------------------------------------------------------------------------------------
# summary(): VGG-16, AlexNet, LeNet-5
# ---------------------------------------------------------------------------------------------
# Configuration D of Simonyan & Zisserman, written out here rather than taken from the package.
VGG16_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M"]


def vgg16_arithmetic(image=224, classes=1000):
    """(parameters, activations) of VGG-16 for one image: 3x3 pad-1 convolutions keep the size,
    2x2 pools halve it; activations are the input plus every CONV, POOL and FC output."""
    size, channels = image, 3
    parameters, activations = 0, channels * size * size
    for item in VGG16_LAYERS:
        if item == "M":
            size //= 2
        else:
            parameters += (3 * 3 * channels + 1) * item
            channels = item
        activations += channels * size * size
    features = channels * size * size
    for width in (4096, 4096, classes):
        parameters += (features + 1) * width
        activations += width
        features = width
    return parameters, activations


@pytest.fixture(scope="module")
def vgg16_summary():
    """Built once: constructing VGG-16 (138 M parameters) takes seconds."""
    net = models.vgg16(seed=0)
    return net.summary((3, 224, 224))


def test_vgg16_architecture_written_here_is_the_packages():
    assert list(models.VGG16_CONFIGURATION_D) == VGG16_LAYERS


def test_vgg16_summary_totals_match_arithmetic_done_independently(vgg16_summary):
    parameters, activations = vgg16_arithmetic()
    assert parameters == 138_357_544
    assert vgg16_summary.total_params == 138_357_544
    assert vgg16_summary.total_activations == activations
    assert sum(row.parameters for row in vgg16_summary.rows) == parameters
    assert sum(row.activations for row in vgg16_summary.rows) == activations


def test_vgg16_summary_rows(vgg16_summary):
    rows = vgg16_summary.rows
    assert len(rows) == 1 + 13 + 5 + 3          # input, CONV, POOL and FC layers; no ReLU
    assert (rows[0].name, rows[0].output_shape, rows[0].activations, rows[0].parameters) == \
        ("INPUT", (3, 224, 224), 150_528, 0)
    first_conv = rows[1]
    assert first_conv.name == "CONV3-64"
    assert first_conv.output_shape == (64, 224, 224)
    assert first_conv.activations == 3_211_264
    assert first_conv.parameters == 1_792
    pools = [row for row in rows if row.name.startswith("POOL")]
    assert [row.output_shape for row in pools] == [(64, 112, 112), (128, 56, 56), (256, 28, 28),
                                                   (512, 14, 14), (512, 7, 7)]
    assert all(row.parameters == 0 for row in pools)
    fcs = [row for row in rows if row.name.startswith("FC")]
    assert [row.name for row in fcs] == ["FC-4096", "FC-4096", "FC-1000"]
    assert fcs[0].output_shape == (4096,)
    assert fcs[0].parameters == 102_764_544
    assert [row.parameters for row in fcs[1:]] == [16_781_312, 4_097_000]
    assert [row.index for row in rows[:4]] == [-1, 0, 2, 4]   # positions in the Sequential


def test_vgg16_summary_text_has_thousands_separators_and_the_totals(vgg16_summary):
    _, activations = vgg16_arithmetic()
    text = str(vgg16_summary)
    assert "138,357,544" in text
    assert f"{activations:,}" in text
    assert "102,764,544" in text and "3,211,264" in text and "1,792" in text
    total_line = next(line for line in text.splitlines() if line.startswith("TOTAL"))
    assert f"{activations:,}" in total_line and "138,357,544" in total_line
    assert f"{activations * 4 / 2**20:,.1f} MiB" in text
    assert repr(vgg16_summary) == text


def test_vgg16_summary_memory_is_consistent(vgg16_summary):
    parameters, activations = vgg16_arithmetic()
    s = vgg16_summary
    assert s.itemsize == 4
    assert s.forward_bytes_per_image == activations * 4
    assert s.training_bytes_per_image == 2 * s.forward_bytes_per_image
    assert s.parameter_bytes == parameters * 4
    assert s.bytes() == activations * 4 + parameters * 4
    assert s.bytes(batch_size=8) == 8 * activations * 4 + parameters * 4
    # Training: every activation and every parameter also has a gradient.
    assert s.bytes(batch_size=8, training=True) == 8 * 2 * activations * 4 + 2 * parameters * 4


def test_summary_itemsize_follows_the_network_dtype():
    s = models.lenet5(dtype=np.float64, seed=0).summary((1, 28, 28))
    assert s.itemsize == 8
    assert s.forward_bytes_per_image == 8 * s.total_activations


@pytest.fixture(scope="module")
def alexnet_summary():
    return models.alexnet(seed=0).summary((3, 227, 227))


def test_alexnet_summary_on_227_images(alexnet_summary):
    rows = alexnet_summary.rows
    assert rows[1].name == "CONV11-96"
    assert rows[1].output_shape == (96, 55, 55)            # (227 - 11) / 4 + 1
    assert rows[1].parameters == 11 * 11 * 3 * 96 + 96
    assert [row.output_shape for row in rows if row.name.startswith("POOL")] == \
        [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    conv = [(11, 3, 96), (5, 96, 256), (3, 256, 384), (3, 384, 384), (3, 384, 256)]
    fc = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]
    parameters = (sum(f * f * c * k + k for f, c, k in conv)
                  + sum(i * o + o for i, o in fc))
    assert parameters == 62_378_344
    assert alexnet_summary.total_params == parameters


def test_lenet5_summary_parameters_by_hand():
    s = models.lenet5(seed=0).summary((1, 28, 28))
    by_hand = (5 * 5 * 1 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (400 * 120 + 120) + (120 * 84 + 84) \
        + (84 * 10 + 10)
    assert by_hand == 61_706
    assert s.total_params == by_hand
    assert [row.output_shape for row in s.rows] == [
        (1, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120,), (84,), (10,)]
    assert [row.name for row in s.rows] == ["INPUT", "CONV5-6", "POOL2", "CONV5-16", "POOL2",
                                            "FC-120", "FC-84", "FC-10"]
    assert s.total_activations == 784 + 4704 + 1176 + 1600 + 400 + 120 + 84 + 10


def test_cifar_simple_summary_is_the_cs231n_example():
    s = models.cifar_simple(seed=0).summary((3, 32, 32))
    assert [row.output_shape for row in s.rows] == [(3, 32, 32), (12, 32, 32), (12, 16, 16),
                                                    (10,)]
    assert s.total_params == (3 * 3 * 3 * 12 + 12) + (3072 * 10 + 10)


def test_models_are_reproducible_with_the_seed():
    a, b, c = models.lenet5(seed=7), models.lenet5(seed=7), models.lenet5(seed=8)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    assert not np.array_equal(a.params["0.weight"], c.params["0.weight"])
    # One independent seed per layer: scaled to unit variance, the first weights of two layers
    # are not the same normal draws.
    first = a.params["0.weight"].ravel()[:20] / np.sqrt(2 / 25)
    second = a.params["3.weight"].ravel()[:20] / np.sqrt(2 / 150)
    assert not np.allclose(first, second, rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# FC -> CONV
# ---------------------------------------------------------------------------------------------
def test_linear_to_conv2d_gives_identical_outputs_on_its_volume():
    rng = np.random.default_rng(10)
    linear = Linear(2 * 3 * 4, 5, dtype=np.float64, seed=11)
    linear.params["bias"][...] = rng.standard_normal(5)
    conv = linear.to_conv2d((2, 3, 4))
    assert isinstance(conv, Conv2D)
    assert conv.params["weight"].shape == (5, 2, 3, 4)
    assert not np.shares_memory(conv.params["weight"], linear.params["weight"])
    x = rng.standard_normal((3, 2, 3, 4))
    y = conv.forward(x)
    assert y.shape == (3, 5, 1, 1)
    np.testing.assert_allclose(y[:, :, 0, 0], linear.forward(x.reshape(3, -1)),
                               rtol=1e-12, atol=1e-12)


def test_linear_to_conv2d_rejects_a_volume_of_the_wrong_size():
    with raises(ValueError, "to_conv2d", "24", "(2, 3, 5)"):
        Linear(24, 5).to_conv2d((2, 3, 5))


FULLY_CONVOLUTIONAL_CASES = {
    # conv 3x3 (no pad) -> relu -> pool 2 -> flatten -> fc -> relu -> fc: total stride 2.
    "stride_2": (lambda: Sequential(
        Conv2D(3, 8, 3, dtype=np.float64, seed=20), ReLU(), MaxPool2D(2), Flatten(),
        Linear(8 * 5 * 5, 16, dtype=np.float64, seed=21), ReLU(),
        Linear(16, 4, dtype=np.float64, seed=22)), (3, 12, 12), 2),
    # strided conv then pool: total stride 4; non-square input.
    "stride_4_non_square": (lambda: Sequential(
        Conv2D(2, 6, 3, stride=2, dtype=np.float64, seed=23), ReLU(), MaxPool2D(2), Flatten(),
        Linear(6 * 3 * 2, 5, dtype=np.float64, seed=24)), (2, 13, 9), 4),
}


@pytest.mark.parametrize("case", sorted(FULLY_CONVOLUTIONAL_CASES))
def test_fully_convolutional_map_equals_the_network_on_every_strided_crop(case):
    make, (C, H, W), S = FULLY_CONVOLUTIONAL_CASES[case]
    net = randomise_biases(make(), seed=25)
    fcn = net.to_fully_convolutional((C, H, W))
    big_h, big_w = H + 5 * S, W + 4 * S            # 4+ strides larger in each direction
    x = random_images((2, C, big_h, big_w), seed=26, dtype=np.float64)
    scores = fcn.forward(x)
    rows, cols = (big_h - H) // S + 1, (big_w - W) // S + 1
    classes = net.output_shape((C, H, W))[0]
    assert scores.shape == (2, classes, rows, cols)
    crops = np.stack([x[:, :, i * S:i * S + H, j * S:j * S + W]
                      for i in range(rows) for j in range(cols)])   # (positions, N, C, H, W)
    expected = net.forward(crops.reshape(-1, C, H, W)).reshape(rows, cols, 2, classes)
    np.testing.assert_allclose(scores, expected.transpose(2, 3, 0, 1), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", sorted(FULLY_CONVOLUTIONAL_CASES))
def test_fully_convolutional_network_on_its_own_input_size_gives_the_original_scores(case):
    make, shape, _ = FULLY_CONVOLUTIONAL_CASES[case]
    net = randomise_biases(make(), seed=27)
    fcn = net.to_fully_convolutional(shape)
    x = random_images((3,) + shape, seed=28, dtype=np.float64)
    scores = fcn.forward(x)
    assert scores.shape[2:] == (1, 1)
    np.testing.assert_allclose(scores[:, :, 0, 0], net.forward(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", sorted(FULLY_CONVOLUTIONAL_CASES))
def test_fully_convolutional_network_has_no_flatten_or_linear_and_shares_no_arrays(case):
    make, shape, _ = FULLY_CONVOLUTIONAL_CASES[case]
    net = make()
    fcn = net.to_fully_convolutional(shape)
    assert not any(isinstance(layer, (Flatten, Linear)) for layer in fcn.layers)
    assert sum(isinstance(layer, Conv2D) for layer in fcn.layers) == \
        sum(isinstance(layer, (Conv2D, Linear)) for layer in net.layers)
    assert fcn.parameter_count() == net.parameter_count()
    for new in list(fcn.params.values()) + list(fcn.grads.values()):
        for old in list(net.params.values()) + list(net.grads.values()):
            assert not np.shares_memory(new, old)
    assert all(new is not old for new in fcn.layers for old in net.layers)
    before = {key: value.copy() for key, value in net.params.items()}
    for value in fcn.params.values():
        value[...] = 0
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, before[key])


# ---------------------------------------------------------------------------------------------
# The digits demo
# ---------------------------------------------------------------------------------------------
def test_demo_training_loop_lowers_the_loss_and_beats_chance():
    pytest.importorskip("sklearn")
    from fastconv import _demo
    x_train, x_test, y_train, y_test = _demo.load_digits_split()
    assert x_train.shape[1:] == (1, 8, 8) and x_train.dtype == np.float32
    network = _demo.digits_network(seed=0)
    history = _demo.train(network, x_train[:300], y_train[:300], x_test, y_test, epochs=2,
                          show_progress=False)
    assert len(history["loss"]) == len(history["test_accuracy"]) == 2
    assert history["loss"][1] < history["loss"][0]
    assert history["test_accuracy"][-1] > 0.3          # chance is 0.1 on ten classes
    assert history["test_accuracy"][-1] == _demo.accuracy(network, x_test, y_test)


def test_demo_command_prints_the_test_accuracy_and_exits_0():
    pytest.importorskip("sklearn")
    result = subprocess.run([sys.executable, "-m", "fastconv", "demo", "--epochs", "1"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^test accuracy: 0\.\d{3}$", result.stdout, re.MULTILINE), result.stdout
    assert "TOTAL" in result.stdout                      # the network summary is printed
