"""Burstprop layers: exactness against backprop, conv == unrolled dense, h(e) safety, Z, autograd wiring.

"Linear regime" used here: the burst-probability sigmoid sigma(u) is evaluated
where it is nearly linear and flat-sloped, i.e. |ubar| << 1 and |u - ubar| << 1, so
sigma'(ubar) ~ 1/4 for every unit.  We get it by making the feedback small relative
to the activity: (a) sigmoid hidden units with every weight ~ N(0, 0.05^2), or (b) ReLU
hidden units kept active (bias 1, weights ~ N(0, 0.1^2), output weights ~ N(0, 0.01^2)),
since ReLU's h(e) = 1/e needs Y b << e.  There, the hidden update is
sigma'(ubar) * (backprop update), hence parallel to it.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neurons.common import MburstError
from rate_bridge.burstprop.activations import (Activation, activation_names, general_h, get_activation, h_of_e,
                                               register_activation, unregister_activation)
from rate_bridge.burstprop.functional import BurstParams, output_burst_prob
from rate_bridge.burstprop.layers import BurstConv2d, BurstLinear, angle_deg
from rate_bridge.burstprop.routing import BurstPass

pytestmark = pytest.mark.usefixtures("one_torch_thread")


DT = torch.float64


def _mlp(sizes, hidden_act, scales, teaching, feedback="tied", seed=0, hidden_bias=None):
    torch.manual_seed(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layer = BurstLinear(n_in, n_out, "sigmoid" if last else hidden_act, output=last, feedback=feedback,
                            name=f"l{i}").to(DT)
        with torch.no_grad():
            layer.weight.normal_(0.0, scales[i])
            layer.bias.normal_(0.0, scales[i])
            if hidden_bias is not None and not last:
                layer.bias.fill_(hidden_bias)
            if layer.feedback_weight is not None:
                layer.feedback_weight.copy_(layer.weight)
        layers.append(layer)
    return layers, BurstParams(teaching=teaching)


def _run(layers, params, x, rule, loss_fn):
    for layer in layers:
        layer.learning_rule = rule
        layer.zero_grad(set_to_none=True)
    bp = BurstPass(params)
    h = x
    for layer in layers:
        h = layer(h, bp)
    loss_fn(h).backward()
    return [(layer.weight.grad.clone(), layer.bias.grad.clone()) for layer in layers], bp


def _mse(target):
    # per-sample loss 0.5 sum (t - e)^2, averaged over the batch: the public code's MSE rule
    return lambda e: 0.5 * ((target - e) ** 2).sum(1).mean()


@pytest.mark.parametrize("hidden_act, scales, hidden_bias", [("sigmoid", (0.05, 0.05, 0.05), None),
                                                              ("relu", (0.1, 0.1, 0.01), 1.0)])
def test_mse_teaching_is_pbar_times_backprop_and_hidden_aligned(hidden_act, scales, hidden_bias):
    torch.manual_seed(1)
    x = torch.rand(64, 12, dtype=DT)
    target = (torch.rand(64, 5, dtype=DT) < 0.5).to(DT)
    layers, params = _mlp([12, 10, 8, 5], hidden_act, scales, "mse", hidden_bias=hidden_bias)
    burst, bp = _run(layers, params, x, "burstprop", _mse(target))
    back, _ = _run(layers, params, x, "backprop", _mse(target))
    # output layer: W.grad = pbar dL/dW exactly (weights and bias)
    torch.testing.assert_close(burst[-1][0], params.pbar_out * back[-1][0], rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(burst[-1][1], params.pbar_out * back[-1][1], rtol=1e-10, atol=1e-14)
    # hidden layers: within 10 degrees of backprop in the linear regime
    for (gw, gb), (bw, bb) in zip(burst[:-1], back[:-1]):
        assert angle_deg(gw, bw) < 10.0
        assert angle_deg(gb, bb) < 10.0
    # the regime really is linear: |ubar| small for the hidden layers
    for name in ("l0", "l1"):
        assert torch.logit(bp.states[name].pbar).abs().max() < 0.5


def test_gradient_teaching_output_equals_backprop():
    """teaching='gradient', unclamped (small per-sample gradients): W_out.grad == dL/dW."""
    torch.manual_seed(2)
    x = torch.rand(16, 7, dtype=DT)
    target = (torch.rand(16, 30, dtype=DT) < 0.3).to(DT)
    layers, params = _mlp([7, 9, 30], "relu", (0.5, 0.1), "gradient")
    loss = lambda e: F.binary_cross_entropy(e, target)  # mean over units: p stays inside (0, 1)
    burst, bp = _run(layers, params, x, "burstprop", loss)
    back, _ = _run(layers, params, x, "backprop", loss)
    assert 0.0 < bp.states["l1"].p.min() and bp.states["l1"].p.max() < 1.0
    torch.testing.assert_close(burst[-1][0], back[-1][0], rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(burst[-1][1], back[-1][1], rtol=1e-10, atol=1e-14)


def test_states_follow_the_equations():
    torch.manual_seed(3)
    x = torch.rand(8, 6, dtype=DT)
    target = (torch.rand(8, 4, dtype=DT) < 0.5).to(DT)
    layers, params = _mlp([6, 5, 4], "sigmoid", (0.5, 0.5), "mse")
    _, bp = _run(layers, params, x, "burstprop", _mse(target))
    out, hid = bp.states["l1"], bp.states["l0"]
    torch.testing.assert_close(out.p, (params.pbar_out * ((target - out.e) * (1 - out.e) + 1)).clamp(0, 1))
    torch.testing.assert_close(out.b, out.p * out.e)
    torch.testing.assert_close(out.bbar, params.pbar_out * out.e)
    w = layers[1].weight.detach()
    ubar = (1 - hid.e) * (out.bbar @ w)
    u = (1 - hid.e) * (out.b @ w)
    torch.testing.assert_close(torch.logit(hid.pbar), ubar)
    torch.testing.assert_close(hid.p, torch.sigmoid(u))
    torch.testing.assert_close(hid.bbar, torch.sigmoid(ubar) * hid.e)
    # Delta W_0 = -(b - bbar) x^T averaged over the batch
    torch.testing.assert_close(layers[0].weight.grad, -((hid.b - hid.bbar).t() @ x) / x.shape[0])


def _toeplitz(weight, in_shape, stride, padding):
    """Dense matrix T(W) with T vec(x) = vec(conv2d(x, W)); differentiable in W."""
    n_in = math.prod(in_shape)
    basis = torch.eye(n_in, dtype=weight.dtype).reshape(n_in, *in_shape)
    cols = F.conv2d(basis, weight, None, stride, padding)  # [n_in, C_out, Ho, Wo]
    return cols.reshape(n_in, -1).t(), cols.shape[1:]


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_equals_unrolled_dense(stride):
    """conv0 -> [conv | Toeplitz dense] -> flatten -> dense sigmoid output: same forward, same W/Y updates,
    and the transposed-convolution feedback reaches conv0 identically."""
    torch.manual_seed(4)
    in_shape = (2, 5, 6)
    x = torch.randn(6, 1, *in_shape[1:], dtype=DT)
    conv0 = BurstConv2d(1, 2, 3, 1, 1, "relu", name="conv0").to(DT)
    conv = BurstConv2d(2, 3, 3, stride, 1, "relu", feedback="random", name="mid").to(DT)
    t_w, out_shape = _toeplitz(conv.weight, in_shape, stride, 1)
    t_y, _ = _toeplitz(conv.feedback_weight, in_shape, stride, 1)
    n_mid = math.prod(out_shape)
    dense = BurstLinear(math.prod(in_shape), n_mid, "relu", feedback="random", name="mid").to(DT)
    with torch.no_grad():
        dense.weight.copy_(t_w)
        dense.feedback_weight.copy_(t_y)
        dense.bias.copy_(conv.bias.repeat_interleave(out_shape[1] * out_shape[2]))
    out = BurstLinear(n_mid, 4, "sigmoid", output=True, name="out").to(DT)
    target = (torch.rand(6, 4, dtype=DT) < 0.5).to(DT)

    def run(use_conv):
        for m in (conv0, conv, dense, out):
            m.zero_grad(set_to_none=True)
        bp = BurstPass(BurstParams())
        h0 = conv0(x, bp)
        h1 = conv(h0, bp) if use_conv else dense(bp.flatten(h0), bp)
        e = out(bp.flatten(h1) if use_conv else h1, bp)
        F.binary_cross_entropy(e, target).backward()
        return e.detach(), bp

    e_conv, bp_conv = run(True)
    grads_conv = {n: p.grad.clone() for n, p in [("w0", conv0.weight), ("b0", conv0.bias), ("w", conv.weight),
                                                 ("y", conv.feedback_weight), ("b", conv.bias), ("out", out.weight)]}
    e_dense, bp_dense = run(False)
    torch.testing.assert_close(e_conv, e_dense)
    # map the dense updates back onto the shared conv weights: J(W)^T G
    dense_w = torch.autograd.grad(_toeplitz(conv.weight, in_shape, stride, 1)[0], conv.weight, dense.weight.grad)[0]
    dense_y = torch.autograd.grad(_toeplitz(conv.feedback_weight, in_shape, stride, 1)[0], conv.feedback_weight,
                                  dense.feedback_weight.grad)[0]
    dense_b = dense.bias.grad.reshape(out_shape).sum((1, 2))
    torch.testing.assert_close(grads_conv["w"], dense_w)
    torch.testing.assert_close(grads_conv["y"], dense_y)
    torch.testing.assert_close(grads_conv["b"], dense_b)
    torch.testing.assert_close(grads_conv["out"], out.weight.grad)
    torch.testing.assert_close(grads_conv["w0"], conv0.weight.grad)
    torch.testing.assert_close(grads_conv["b0"], conv0.bias.grad)
    for field in ("p", "b", "bbar"):
        torch.testing.assert_close(getattr(bp_conv.states["mid"], field).flatten(1),
                                   getattr(bp_dense.states["mid"], field))
    assert grads_conv["w0"].abs().sum() > 0


def test_h_is_finite_for_silent_relu_and_saturated_sigmoid():
    e = torch.tensor([0.0, 1e-45, 1e-30, 0.5, 3.0])
    h = h_of_e(e, "relu")
    assert torch.isfinite(h).all() and h[0] == 0
    torch.testing.assert_close(h[3:], 1 / e[3:])
    assert torch.isfinite(h * 1e15).all()
    s = torch.tensor([1.0, 0.0, 0.3])
    torch.testing.assert_close(h_of_e(s, "sigmoid"), 1 - s)
    p = output_burst_prob(torch.tensor([1.0, 0.0]), h_of_e(torch.tensor([1.0, 0.0]), "sigmoid"),
                          torch.tensor([math.inf, -math.inf]), BurstParams())
    assert torch.isfinite(p).all() and ((0 <= p) & (p <= 1)).all()


def test_saturated_network_gives_finite_updates():
    """Huge weights saturate the output sigmoid and silence ReLUs: no NaN/inf anywhere."""
    torch.manual_seed(5)
    hid = BurstLinear(4, 6, "relu", name="h")
    out = BurstLinear(6, 3, "sigmoid", output=True, name="o")
    with torch.no_grad():
        hid.weight.mul_(1e3)
        out.weight.mul_(1e4)
    bp = BurstPass()
    e = out(hid(torch.randn(5, 4), bp), bp)
    assert ((e == 0) | (e == 1)).any()
    F.binary_cross_entropy(e, torch.ones(5, 3)).backward()
    for p in (hid.weight, hid.bias, out.weight, out.bias):
        assert torch.isfinite(p.grad).all()


def test_z_off_on():
    torch.manual_seed(6)
    x = torch.rand(32, 8)
    target = (torch.rand(32, 5) < 0.5).float()

    def net(z, act="relu"):
        torch.manual_seed(7)
        hid = BurstLinear(8, 6, act, name="h", recurrent=z)
        torch.manual_seed(8)
        out = BurstLinear(6, 5, "sigmoid", output=True, name="o")
        with torch.no_grad():
            out.weight.mul_(5.0)  # a strong baseline feedback for Z to cancel
        return hid, out

    def step(hid, out, params=BurstParams()):
        hid.zero_grad(), out.zero_grad()
        bp = BurstPass(params)
        F.binary_cross_entropy(out(hid(x, bp), bp), target).backward()
        return hid.weight.grad.clone(), bp.states["h"]

    off = net(False)
    assert off[0].z is None and "z" not in off[0].state_dict()
    on = net(True)
    assert on[0].z.shape == (6, 6) and 0 < on[0].z.abs().max() <= 0.01 and "z" in on[0].state_dict()
    with torch.no_grad():
        on[0].z.zero_()
    on[0].eval()  # eval: Z does not learn; Z = 0 gives exactly the Z-off update
    g_on, _ = step(*on)
    g_off, _ = step(*off)
    torch.testing.assert_close(g_on, g_off)
    assert on[0].z.abs().max() == 0
    # in training mode Z learns to push the no-teaching dendritic potential ubar towards 0,
    # which brings the burst probability towards 0.5 (sigmoid hidden units: h(e) bounded)
    hid, out = net(True, "sigmoid")
    params = BurstParams(z_lr=0.5)  # the default 1e-4 is far slower; the direction is what is tested
    _, first = step(hid, out, params)
    for _ in range(30):
        _, last = step(hid, out, params)
    assert torch.logit(last.pbar).square().mean() < 0.2 * torch.logit(first.pbar).square().mean()
    assert (last.pbar - 0.5).abs().mean() < 0.5 * (first.pbar - 0.5).abs().mean()


def test_backward_fills_grad_and_adam_moves_weights():
    torch.manual_seed(8)
    conv = BurstConv2d(1, 3, 3, 1, 1, "relu", feedback="random", name="c")
    out = BurstLinear(3 * 4 * 5, 6, "sigmoid", output=True, feedback="random", name="o")
    params = list(conv.parameters()) + list(out.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-6, foreach=True)
    before = [p.detach().clone() for p in params]
    bp = BurstPass()
    e = out(bp.flatten(conv(torch.randn(4, 1, 4, 5), bp)), bp)
    F.binary_cross_entropy(e, (torch.rand(4, 6) < 0.3).float()).backward()
    for layer in (conv, out):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
        torch.testing.assert_close(layer.feedback_weight.grad, layer.weight.grad)  # Delta Y = Delta W
        assert layer.feedback_weight.grad.data_ptr() != layer.weight.grad.data_ptr()
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, params))


def test_symmetric_feedback_stays_equal_to_tied():
    """Delta Y = Delta W under Adam: a separate Y that starts at W stays W, so 'tied' is exact."""
    torch.manual_seed(9)
    x, target = torch.randn(16, 5), (torch.rand(16, 3) < 0.4).float()

    def make(fb):
        torch.manual_seed(10)
        return [BurstLinear(5, 7, "relu", feedback=fb, name="h"), BurstLinear(7, 3, "sigmoid", output=True,
                                                                                feedback=fb, name="o")]

    nets = {fb: make(fb) for fb in ("tied", "symmetric")}
    opts = {fb: torch.optim.Adam([p for m in ls for p in m.parameters()], lr=1e-2, weight_decay=1e-6)
            for fb, ls in nets.items()}
    for _ in range(5):
        for fb, (hid, out) in nets.items():
            opts[fb].zero_grad()
            bp = BurstPass()
            F.binary_cross_entropy(out(hid(x, bp), bp), target).backward()
            opts[fb].step()
    for (th, to), (sh, so) in [(nets["tied"], nets["symmetric"])]:
        torch.testing.assert_close(sh.feedback_weight, sh.weight)
        torch.testing.assert_close(so.feedback_weight, so.weight)
        torch.testing.assert_close(th.weight, sh.weight)
        torch.testing.assert_close(to.weight, so.weight)


def test_wiring_errors_are_clear():
    hid = BurstLinear(4, 3, "relu", name="lonely")
    bp = BurstPass()
    e = hid(torch.randn(2, 4), bp)
    with pytest.raises(MburstError, match="lonely.*received no feedback"):
        e.sum().backward()
    out = BurstLinear(3, 2, "sigmoid", output=True, name="top")
    bp = BurstPass()
    with pytest.raises(MburstError, match="top.*non-burstprop"):
        out(hid(torch.randn(2, 4), bp) * 2.0, bp)
    with pytest.raises(MburstError, match="activation 'tanhh'"):
        get_activation("tanhh")
    with pytest.raises(MburstError, match="learning_rule"):
        hid.learning_rule = "hebb"
    with pytest.raises(MburstError, match="pbar"):
        BurstParams(pbar_out=1.5)


def test_backprop_mode_matches_torch_layers():
    torch.manual_seed(11)
    layer = BurstConv2d(2, 3, 3, 2, 1, "relu", learning_rule="backprop")
    ref = torch.nn.Conv2d(2, 3, 3, 2, 1)
    ref.load_state_dict({"weight": layer.weight.detach(), "bias": layer.bias.detach()})
    x = torch.randn(3, 2, 7, 8)
    layer(x).square().sum().backward()
    torch.relu(ref(x)).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad)


@pytest.fixture
def registered():
    """Register test activations; they are removed again after the test."""
    names = []

    def register(act):
        names.append(register_activation(act).name)
        return act

    yield register
    for name in set(names) & set(activation_names()):
        unregister_activation(name)


def test_registry_adds_and_removes_activations(registered):
    assert {"relu", "sigmoid", "calibrated", "calibrated-quiet"} <= set(activation_names())
    assert get_activation("calibrated").needs_v  # the calibrated ones need no import of their own
    act = registered(Activation("square_test", torch.square, general_h(lambda v: 2 * v), needs_v=True))
    assert get_activation("square_test") is act and "square_test" in activation_names()
    with pytest.raises(MburstError, match="already registered"):
        register_activation(act)
    for name in ("relu", "calibrated"):
        with pytest.raises(MburstError, match="built in"):
            register_activation(act._replace(name=name), replace=True)
        with pytest.raises(MburstError, match="built in"):
            unregister_activation(name)
    unregister_activation("square_test")
    with pytest.raises(MburstError, match="'square_test' is unknown"):
        get_activation("square_test")


def test_relu_fast_path_equals_plain_h(registered):
    """The fused ReLU dendrite (fb / e) gives the same updates as the general h(e) * fb path."""
    registered(get_activation("relu")._replace(name="relu_plain_test", fn_=None, dendrite=None))
    grads = {}
    for act in ("relu", "relu_plain_test"):
        torch.manual_seed(12)
        conv = BurstConv2d(1, 3, 3, 1, 1, act, name="c")
        hid = BurstLinear(3 * 4 * 5, 6, act, name="h")
        out = BurstLinear(6, 4, "sigmoid", output=True, name="o")
        bp = BurstPass()
        e = out(hid(bp.flatten(conv(torch.randn(5, 1, 4, 5), bp)), bp), bp)
        F.binary_cross_entropy(e, (torch.rand(5, 4) < 0.5).float()).backward()
        assert (bp.states["c"].e == 0).any()  # silent units are exercised
        grads[act] = [p.grad.clone() for m in (conv, hid) for p in m.parameters()]
        torch.testing.assert_close(bp.states["c"].p[bp.states["c"].e == 0],
                                   torch.full_like(bp.states["c"].p[bp.states["c"].e == 0], 0.5))
    for a, b in zip(grads["relu"], grads["relu_plain_test"]):
        torch.testing.assert_close(a, b)


def test_registered_activation_uses_general_h(registered):
    """The hook for a calibrated transfer function: softplus, h(e) = f'(v) / e = sigmoid(v) / e."""
    registered(Activation("softplus_test", F.softplus, general_h(torch.sigmoid), needs_v=True))
    torch.manual_seed(13)
    x = torch.rand(6, 5, dtype=DT)
    hid = BurstLinear(5, 4, "softplus_test", name="h").to(DT)
    out = BurstLinear(4, 3, "sigmoid", output=True, name="o").to(DT)
    bp = BurstPass()
    F.binary_cross_entropy(out(hid(x, bp), bp), (torch.rand(6, 3, dtype=DT) < 0.5).to(DT)).backward()
    v = F.linear(x, hid.weight, hid.bias).detach()
    st, top = bp.states["h"], bp.states["o"]
    torch.testing.assert_close(st.e, F.softplus(v))
    h = torch.sigmoid(v) / F.softplus(v)
    w = out.weight.detach()
    torch.testing.assert_close(st.pbar, torch.sigmoid(h * (top.bbar @ w)))
    torch.testing.assert_close(st.p, torch.sigmoid(h * (top.b @ w)))
    torch.testing.assert_close(hid.weight.grad, -(st.d.t() @ x) / 6)
