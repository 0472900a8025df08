"""MBURST / Multimodal / Unimodal: shapes, errors, state round-trips, angles, learning (MACs: test_energy)."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from neurons.common import MburstError
from rate_bridge.burstprop.models import ModelConfig, build_model, update_angles

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = ModelConfig(n_bins=10, context=4, lip_hw=(6, 8), channels=2, embed=3)


def _batch(cfg, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(n, 1, cfg.context, cfg.n_bins, generator=g)
    visual = torch.rand(n, 1, *cfg.lip_hw, generator=g)
    target = (torch.rand(n, cfg.n_bins, generator=g) < 0.3).float()
    return audio, visual, target


@pytest.mark.parametrize("name", ["mburst", "multimodal", "unimodal"])
def test_small_shapes_and_backward(name):
    torch.manual_seed(0)
    model = build_model(name, SMALL)
    audio, visual, target = _batch(SMALL)
    out = model(audio, None if name == "unimodal" else visual)
    assert out.shape == (3, SMALL.n_bins) and ((out >= 0) & (out <= 1)).all()
    F.binary_cross_entropy(out, target).backward()
    assert all(p.grad is not None for p in model.parameters())
    acts = model.hidden_activities()
    expected = {"audio_conv1", "audio_conv2", "audio_dense"} | (set() if name == "unimodal" else
                                                                {"visual_conv1", "visual_conv2", "visual_dense"})
    assert set(acts) == expected
    assert acts["audio_conv2"].shape == (3, 2, 4, 10) and acts["audio_dense"].shape == (3, 3)
    states = model.layer_states()
    if name == "mburst":
        assert set(states) == expected | {"out"}
        for st in states.values():
            torch.testing.assert_close(st.b, st.p * st.e)
        torch.testing.assert_close(states["out"].bbar, 0.2 * states["out"].e)
    else:
        assert states == {}


def test_unimodal_ignores_visual_and_has_no_visual_branch():
    torch.manual_seed(1)
    model = build_model("unimodal", SMALL)
    audio, visual, _ = _batch(SMALL)
    assert not any(n.startswith("visual") for n, _ in model.named_parameters())
    torch.testing.assert_close(model(audio, visual), model(audio))
    assert model.out.in_features == SMALL.embed


def test_full_size_shapes():
    torch.manual_seed(2)
    cfg = ModelConfig()
    model = build_model("mburst", cfg)
    desc = model.describe()["layers"]
    assert desc["audio_conv2"]["out"] == [32, 8, 500]
    assert desc["audio_dense"]["weight"] == [256, 128000]
    assert desc["visual_conv1"]["out"] == [32, 25, 46] and desc["visual_conv2"]["out"] == [32, 13, 23]
    assert desc["visual_dense"]["weight"] == [256, 32 * 13 * 23]
    assert desc["out"]["weight"] == [500, 512] and desc["out"]["activation"] == "sigmoid"
    with torch.no_grad():
        out = model(torch.randn(2, 1, 8, 500), torch.rand(2, 1, 50, 92))
    assert out.shape == (2, 500)
    multimodal = build_model("multimodal", cfg)
    assert [(n, p.shape) for n, p in multimodal.named_parameters()] == [(n, p.shape) for n, p in model.named_parameters()]
    assert multimodal.learning_rule == "backprop" and model.learning_rule == "burstprop"


def test_bad_inputs_give_clear_errors():
    model = build_model("mburst", SMALL)
    audio, visual, _ = _batch(SMALL)
    with pytest.raises(MburstError, match=r"argument 'audio' must have shape \[B, 1, 4, 10\], got \[3, 1, 4, 9\]"):
        model(audio[..., :9], visual)
    with pytest.raises(MburstError, match="argument 'visual' must have shape"):
        model(audio, visual[:, :, :5])
    with pytest.raises(MburstError, match="argument 'visual' is required"):
        model(audio)
    with pytest.raises(MburstError, match="different batch sizes"):
        model(audio, visual[:2])
    bad = audio.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(MburstError, match="argument 'audio' contains NaN"):
        model(bad, visual)
    bad_v = visual.clone()
    bad_v[1, 0, 2, 2] = float("inf")
    with pytest.raises(MburstError, match="argument 'visual' contains NaN"):
        model(audio, bad_v)
    with pytest.raises(MburstError, match="model name"):
        build_model("trimodal", SMALL)
    with pytest.raises(MburstError, match="channels"):
        ModelConfig(channels=0)
    with pytest.raises(MburstError, match="activation 'softmax'"):
        ModelConfig(activation="softmax")


def test_state_dict_and_config_round_trip():
    torch.manual_seed(3)
    cfg = dataclasses.replace(SMALL, use_z=True, feedback="random")
    model = build_model("mburst", cfg)
    restored = build_model("mburst", ModelConfig(**dataclasses.asdict(cfg)))
    assert restored.config == cfg
    restored.load_state_dict(model.state_dict())
    audio, visual, _ = _batch(cfg)
    with torch.no_grad():
        torch.testing.assert_close(restored(audio, visual), model(audio, visual))
    assert "audio_dense.z" in model.state_dict() and "out.feedback_weight" in model.state_dict()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(MburstError, match="unknown keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 3})
    with pytest.raises(RuntimeError):
        build_model("unimodal", SMALL).load_state_dict(build_model("mburst", SMALL).state_dict())


def test_update_angles_and_rule_switch():
    torch.manual_seed(4)
    model = build_model("mburst", SMALL)
    audio, visual, target = _batch(SMALL, n=8)
    F.binary_cross_entropy(model(audio, visual), target).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    angles = update_angles(model, audio, visual, target, F.binary_cross_entropy)
    assert set(angles) == {"audio_conv1", "audio_conv2", "audio_dense", "visual_conv1", "visual_conv2",
                           "visual_dense", "out"}
    assert angles["out"] < 1e-3  # the output update is the backprop gradient when p stays unclamped
    assert all(0 <= a <= 180 for a in angles.values() if a == a)
    assert model.learning_rule == "burstprop" and model.training
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n])
        torch.testing.assert_close(p.detach(), weights[n])
    model.set_learning_rule("backprop")
    assert all(layer.learning_rule == "backprop" for layer in model.burst_layers().values())
    with pytest.raises(MburstError, match="learning_rule"):
        model.set_learning_rule("feedback-alignment")


def _layer_grads(model, audio, visual, target):
    loss = F.binary_cross_entropy(model(audio, visual), target)
    layers = model.burst_layers()
    grads = torch.autograd.grad(loss, [layer.weight for layer in layers.values()])
    return dict(zip(layers, grads))


def test_rescaled_updates_are_the_plain_ones_divided_by_the_hidden_gain():
    """beta 0.1: g = 0.1 sigma'(0) = 1/40; a layer k hidden layers from the output gets g^-k."""
    cfg = dataclasses.replace(SMALL, beta=0.1, embed=8)
    torch.manual_seed(6)
    plain = build_model("mburst", dataclasses.replace(cfg, rescale_updates=False))
    rescaled = build_model("mburst", cfg)
    rescaled.load_state_dict(plain.state_dict())
    assert rescaled.hidden_gain() == pytest.approx(0.025)
    batch = _batch(cfg, n=8)
    g_plain, g_rescaled = _layer_grads(plain, *batch), _layer_grads(rescaled, *batch)
    depth = {"out": 0, "audio_dense": 1, "visual_dense": 1, "audio_conv2": 2, "visual_conv2": 2,
             "audio_conv1": 3, "visual_conv1": 3}
    for name, k in depth.items():
        torch.testing.assert_close(g_rescaled[name], g_plain[name] * 40.0 ** k, rtol=1e-5, atol=0)


def test_rescaled_hidden_updates_match_backprop_in_size_in_the_linear_regime():
    """Small beta keeps every dendrite linear (u = Y b / e is large where e is small, hence 1e-5 and
    float64): the rescaled burstprop update then has about backprop's norm in every layer, where the
    plain one shrinks by g per hidden layer (g^3 = 1.6e-20 here)."""
    cfg = dataclasses.replace(SMALL, beta=1e-5, embed=8)
    torch.manual_seed(7)
    model = build_model("mburst", cfg).double()
    batch = [t.double() for t in _batch(cfg, n=16)]
    burst = _layer_grads(model, *batch)
    model.set_learning_rule("backprop")
    back = _layer_grads(model, *batch)
    for name in burst:
        ratio = float(burst[name].norm() / back[name].norm())
        assert 0.8 < ratio < 1.25, (name, ratio)
    plain = build_model("mburst", dataclasses.replace(cfg, rescale_updates=False)).double()
    plain.load_state_dict(model.state_dict())
    ratio = float(_layer_grads(plain, *batch)["audio_conv1"].norm() / back["audio_conv1"].norm())
    assert ratio < 1e-15


@pytest.mark.parametrize("beta", [1e-3, 0.1, 1.0])
def test_float32_updates_equal_float64_and_small_beta_equals_backprop(beta):
    """b - bbar is computed without cancellation: float32 updates point where float64 ones do (they
    were 35-43 degrees off in the first convolutions at beta 0.1 when b - bbar was a difference),
    and at small beta every dendrite is linear, so burstprop equals backprop."""
    from rate_bridge.burstprop.layers import angle_deg

    cfg = dataclasses.replace(SMALL, beta=beta, embed=8)
    torch.manual_seed(7)
    model = build_model("mburst", cfg)
    batch = _batch(cfg, n=16)
    g32 = _layer_grads(model, *batch)
    model64 = build_model("mburst", cfg).double()
    model64.load_state_dict(model.state_dict())
    g64 = _layer_grads(model64, *[t.double() for t in batch])
    for name in g32:
        assert angle_deg(g32[name].double(), g64[name]) < 0.05, name
    if beta < 0.01:
        angles = update_angles(model, *batch, F.binary_cross_entropy)
        assert max(angles.values()) < 0.1, angles


def test_sigmoid_step_is_exact_and_finite():
    from rate_bridge.burstprop.functional import sigmoid_step

    y = torch.tensor([-30.0, -2.0, 0.0, 0.0, 3.0, 0.5, 0.0, 10.0], dtype=torch.float64)
    dx = torch.tensor([1e-3, -0.5, 1e-12, -1e-12, 2.0, -40.0, 1e300, -1e300], dtype=torch.float64)
    got = sigmoid_step(y.float(), dx.float())
    want = torch.sigmoid(y + dx) - torch.sigmoid(y)
    small = dx.abs() < 1e-6  # float64's plain difference is itself inexact there: use sigma'(y) dx
    want[small] = (torch.sigmoid(y) * torch.sigmoid(-y) * dx)[small]
    assert torch.isfinite(got).all()
    live = y.abs() <= 10  # a dendrite not saturated: exact to float32 rounding
    torch.testing.assert_close(got.double()[live], want[live], rtol=1e-5, atol=1e-30)
    # saturated (sigma' < 5e-5): the error stays below float32 resolution of the saturation factor
    assert ((got.double() - want).abs() <= 1e-7 * torch.tanh(dx.abs() / 2)).all()


@pytest.mark.parametrize("name", ["mburst", "multimodal"])
def test_adam_training_reduces_loss(name):
    """A learnable toy task: the mask is where the current audio frame is positive."""
    torch.manual_seed(5)
    cfg = ModelConfig(n_bins=12, context=2, lip_hw=(6, 8), channels=3, embed=16)
    model = build_model(name, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-6, foreach=True)
    audio = torch.randn(64, 1, cfg.context, cfg.n_bins)
    visual = torch.rand(64, 1, *cfg.lip_hw)
    target = (audio[:, 0, -1] > 0).float()
    losses = []
    for _ in range(60):
        opt.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy(model(audio, visual), target)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]
