"""The torch MobileFaceNet follows the EFM3 layer list: channels, order, names, shapes, output."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from onnxfit.errors import OnnxfitError
from onnxfit.exporters.efm3 import ARCHS, plan, scale_channels, tensor_specs
from onnxfit.exporters.mobilefacenet import MobileFaceNet, load_checkpoint, randomize_

# max(8, round(c * width / 8) * 8) of 64, 128, 512, worked out by hand from the EFM3 contract.
EXPECTED_CHANNELS = {
    "nano": (24, 48, 184, 256),
    "tiny": (32, 72, 280, 512),
    "standard": (56, 112, 464, 512),
    "xs": (88, 176, 688, 512),
}


@pytest.mark.parametrize("name", list(ARCHS))
def test_arch_channels_follow_the_width_formula(name):
    arch = ARCHS[name]
    assert (*arch.channels, arch.embedding) == EXPECTED_CHANNELS[name]
    assert [(s.t, s.n, s.s) for s in arch.stages] == [(2, 5, 2), (4, 1, 2), (2, 6, 1), (4, 1, 2), (2, 2, 1)]


def test_channel_rounding_is_half_away_from_zero_not_bankers():
    # 20 * 1.0 / 8 = 2.5: roundf gives 3 (24 channels); Python's round() would give 2 (16).
    assert scale_channels(20, 1.0) == 24
    assert scale_channels(64, 0.05) == 8  # the floor of 8 channels


def test_layer_list_matches_the_contract_order_and_shapes():
    layers = plan(ARCHS["nano"]).layers()
    assert [layer.name for layer in layers[:5]] == [
        "stem", "dw_stem", "stages.0.0.expand", "stages.0.0.dw", "stages.0.0.project"]
    assert [layer.name for layer in layers[-3:]] == ["final_conv", "gdconv", "embed_proj"]
    assert len(layers) == 2 + 3 * 15 + 3
    assert sum(layer.prelu for layer in layers) == 2 + 2 * 15 + 1
    stem, dw_stem, gdconv = layers[0], layers[1], layers[-2]
    assert (stem.weight_shape, stem.stride, stem.padding) == ((24, 3, 3, 3), 2, 1)
    assert (dw_stem.weight_shape, dw_stem.groups) == ((24, 1, 3, 3), 24)
    assert (gdconv.weight_shape, gdconv.padding, gdconv.prelu) == ((184, 1, 7, 7), 0, False)
    stages = plan(ARCHS["nano"]).stages
    # Stage 1 outputs stem channels, later stages block channels; hidden = input channels * t.
    assert [b.project.out_channels for b in stages[0]] == [24] * 5
    assert [stage[0].project.out_channels for stage in stages[1:]] == [48] * 4
    assert stages[1][0].expand.out_channels == 24 * 4
    assert [[b.residual for b in stage] for stage in stages] == [
        [False, True, True, True, True], [False], [True] * 6, [False], [True, True]]


def test_state_dict_keys_are_the_efm3_tensor_names_in_file_order():
    model = MobileFaceNet("tiny")
    keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    specs = tensor_specs(ARCHS["tiny"])
    assert keys == [name for name, _ in specs]
    assert [tuple(model.state_dict()[k].shape) for k in keys] == [shape for _, shape in specs]
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


def test_forward_returns_unit_embeddings_of_the_arch_dimension():
    model = randomize_(MobileFaceNet("nano"), seed=3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 112, 112))
    assert out.shape == (2, 256)
    np.testing.assert_allclose(out.norm(dim=1).numpy(), 1.0, atol=1e-6)


def test_randomize_is_seeded_and_leaves_global_rng_alone():
    first, second = MobileFaceNet("nano"), MobileFaceNet("nano")  # torch's default init uses the global RNG
    state = torch.random.get_rng_state()
    a = randomize_(first, seed=5).state_dict()
    b = randomize_(second, seed=5).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.allclose(a["stem.bn.running_var"], torch.ones(24))  # BN stats really randomised


def test_load_checkpoint_reads_a_pickled_mobilefacenet_with_weights_only(tmp_path):
    model = randomize_(MobileFaceNet("nano"), seed=1)
    model.stem.bn.eps = 1e-3
    torch.save(model, tmp_path / "module.pt")
    state_dict, eps = load_checkpoint(tmp_path / "module.pt")
    assert all(torch.equal(state_dict[k], v) for k, v in model.state_dict().items())
    assert eps["stem.bn"] == 1e-3 and eps["embed_proj.bn"] == 1e-5


def test_load_checkpoint_refuses_foreign_pickled_modules_and_garbage(tmp_path):
    torch.save(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), tmp_path / "foreign.pt")
    with pytest.raises(OnnxfitError, match="weights_only=True.*state_dict"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(OnnxfitError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(OnnxfitError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pt")


def test_gdconv_sees_a_7x7_map_for_112_input():
    model = MobileFaceNet("nano").eval()
    seen = {}
    model.gdconv.register_forward_hook(lambda m, args, out: seen.update(shape=tuple(args[0].shape)))
    with torch.no_grad():
        model(torch.zeros(1, 3, 112, 112))
    assert seen["shape"] == (1, 184, 7, 7)
    assert math.prod(seen["shape"][2:]) == 49
