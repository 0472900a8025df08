"""Energy accounting: device table, MAC counts by hand, exact spike/synapse counts."""
from __future__ import annotations

import math

import numpy as np
import pytest

from neurons.common import MburstError
from rate_bridge import energy
from rate_bridge.burstprop.models import ModelConfig, build_model


def hand_macs(name, c=32, embed=256, bins=500, ctx=8, lip=(50, 92)):
    """The paper's network counted by hand: conv out_h*out_w*C_out*C_in*9, dense in*out."""
    a1 = ctx * bins * c * 1 * 9
    a2 = ctx * bins * c * c * 9
    a3 = c * ctx * bins * embed
    total = a1 + a2 + a3
    n_cat = embed
    if name != "unimodal":
        h1, w1 = (lip[0] + 2 - 3) // 2 + 1, (lip[1] + 2 - 3) // 2 + 1  # 25, 46
        h2, w2 = (h1 + 2 - 3) // 2 + 1, (w1 + 2 - 3) // 2 + 1  # 13, 23
        total += h1 * w1 * c * 9 + h2 * w2 * c * c * 9 + c * h2 * w2 * embed
        n_cat += embed
    return total + n_cat * bins


@pytest.mark.parametrize("name", ["mburst", "multimodal", "unimodal"])
def test_mac_counts_match_hand_calculation(name):
    model = build_model(name, ModelConfig())
    macs = energy.model_macs(model)
    assert macs["total"] == hand_macs(name)
    # concrete numbers for the paper's size (audio conv2: 8*500*32*32*9)
    assert macs["audio_conv2"] == 36_864_000
    assert macs["out"] == (512 if name != "unimodal" else 256) * 500


def test_mac_counts_by_layer():
    # audio 4x10: conv1 4*10*2*1*9, conv2 4*10*2*2*9, dense (2*4*10)*3;
    # visual 6x8 -> 3x4 -> 2x2: conv1 3*4*2*9, conv2 2*2*2*2*9, dense (2*2*2)*3; out (3+3)*10
    cfg = ModelConfig(n_bins=10, context=4, lip_hw=(6, 8), channels=2, embed=3)
    expected = {"audio_conv1": 720, "audio_conv2": 1440, "audio_dense": 240, "visual_conv1": 216,
                "visual_conv2": 144, "visual_dense": 24, "out": 60}
    assert energy.model_macs(build_model("mburst", cfg)) == {**expected, "total": sum(expected.values())}
    uni = energy.model_macs(build_model("unimodal", cfg))
    assert "visual_dense" not in uni and uni["out"] == 30 and uni["audio_dense"] == 240


def test_mac_counts_small_config():
    cfg = ModelConfig(channels=2, embed=4, n_bins=10, context=3, lip_hw=(6, 8))
    m = energy.model_macs(build_model("mburst", cfg))
    assert m["total"] == hand_macs("mburst", c=2, embed=4, bins=10, ctx=3, lip=(6, 8))
    assert m["visual_conv1"] == 3 * 4 * 2 * 9


def test_rate_energy_and_precisions():
    assert energy.rate_energy_j(1_000_000) == pytest.approx(4.6e-6)
    assert energy.rate_energy_j(10, "int8") == pytest.approx(2.3e-12)
    with pytest.raises(MburstError, match="precision"):
        energy.rate_energy_j(1, "fp64")


def test_device_table_and_registry():
    assert energy.get_device("Loihi").j_per_synop == 23.6e-12
    assert energy.get_device("SpiNNaker2").j_per_neuron_update == 2.19e-9
    assert 35e-12 <= energy.get_device("biology").j_per_spike <= 65e-12
    with pytest.raises(MburstError, match="unknown; known devices: CPU, GPU"):
        energy.get_device("TrueNorth")
    assert energy.device_names() == ("CPU", "GPU", "ARM", "Loihi", "SpiNNaker", "SpiNNaker2", "biology")
    loihi = energy.get_device("Loihi")
    assert (loihi.step_s, loihi.j_per_neuron_update, loihi.j_idle, loihi.j_per_spike) == (1e-3, 81e-12, 52e-12, 3.5e-12)
    assert "Energy per neuron update (active / inactive)" in loihi.source_of("j_per_idle_update")
    assert all(energy.get_device(d).source_of(k) for d in energy.device_names() for k in energy.get_device(d).given())
    dev = energy.register_device("TestChip", 1e-12, 2e-12, source="test")
    try:
        assert energy.device_names()[-1] == "TestChip"  # the `mburst energy --device` help lists it
        assert dev.joules(10, 5, 3) == pytest.approx(10e-12 + 10e-12)
        with pytest.raises(MburstError, match="already registered"):
            energy.register_device("TestChip", 1e-12, 2e-12)
        with pytest.raises(MburstError, match="j_per_synop"):
            energy.register_device("Bad", -1.0, 0.0)
    finally:
        energy.DEVICES.pop("TestChip")


def test_activation_rate_proxy():
    import torch

    acts = {"a": torch.tensor([[0.0, 1.0, 2.0, 0.0]]), "b": torch.tensor([[1.0, 1.0]])}
    p = energy.activation_rate_proxy(acts)
    assert p["a"] == {"active": 0.5, "mean_e": 0.75}
    assert p["overall"]["active"] == pytest.approx(4 / 6)
    assert p["overall"]["mean_e"] == pytest.approx(5 / 6)


def test_synaptic_events_formula():
    # fan-out: neuron 0 -> 3 targets, 1 -> 1, 2 -> 0
    assert energy.synaptic_events([0, 0, 1, 2], [0, 0, 0, 1], 3) == 7
    with pytest.raises(MburstError, match="out of range"):
        energy.synaptic_events([5], [0], 3)


def test_counts_from_brian2_network_are_exact():
    """A SpikeGeneratorGroup with known spikes into a known fan-out; Brian2 itself counts deliveries."""
    from brian2 import NeuronGroup, Network, SpikeGeneratorGroup, SpikeMonitor, Synapses, ms, start_scope

    from neurons.device import use_target

    use_target("numpy")  # also leaves a standalone device that an earlier test may have activated
    start_scope()
    # neuron 0: spikes at 0, 5 (burst: ISI < 16 ms), 30 ms (new event); neuron 1: 10 ms; neuron 2: 40, 60 ms
    times = np.array([0, 5, 30, 10, 40, 60]) * 1.0
    idx = np.array([0, 0, 0, 1, 2, 2])
    gen = SpikeGeneratorGroup(3, idx, times * ms, dt=0.1 * ms)
    post = NeuronGroup(4, "n_fwd : 1\nn_fb : 1", threshold="False", dt=0.1 * ms)
    fwd = Synapses(gen, post, on_pre="n_fwd_post += 1", dt=0.1 * ms)
    fwd.connect(i=[0, 0, 0, 1, 2], j=[0, 1, 2, 3, 3])
    fb = Synapses(gen, post, on_pre="n_fb_post += 1", dt=0.1 * ms)
    fb.connect(i=[1, 1], j=[0, 1])
    mon = SpikeMonitor(gen)
    post_mon = SpikeMonitor(post)  # no spikes; counted for updates
    net = Network(gen, post, fwd, fb, mon, post_mon)
    net.run(80 * ms)

    ledger = energy.SpikeLedger(dt=1e-4)
    ledger.add_population("gen", "input", 3, mon, updates=False, pyramidal=True)
    ledger.add_population("post", "hidden", 4, post_mon)
    ledger.add_synapses("gen", fwd.i[:], "forward", "spike", post="post", post_index=fwd.j[:])
    ledger.add_synapses("gen", fb.i[:], "feedback", "spike", post="post", post_index=fb.j[:])
    # same wiring, transmitting on events
    ledger.add_synapses("gen", fwd.i[:], "interneuron", "event", post="post", post_index=fwd.j[:])
    counts = ledger.count(0.0, 0.08)
    inp = counts["input"]
    assert inp.spikes == 6
    assert inp.events == 5 and inp.bursts == 1  # events: n0@0 (a burst with 5 ms), n0@30, n1@10, n2@40, n2@60
    assert inp.syn_forward == int(post.n_fwd[:].sum()) == 3 * 3 + 1 + 2 * 1
    assert inp.syn_feedback == int(post.n_fb[:].sum()) == 2
    assert inp.syn_interneuron == 2 * 3 + 1 * 1 + 2 * 1
    assert inp.neuron_updates == 0
    assert counts["hidden"].neuron_updates == 4 * 800
    # window: only spikes in [20, 80) ms
    late = ledger.count(0.02, 0.08)["input"]
    assert late.spikes == 3 and late.syn_forward == 3 + 1 + 1
    # a synapse onto a current shared by an ensemble of 5 cells counts as 5 synaptic events
    ledger.add_synapses("gen", fb.i[:], "feedback", "spike", copies=5)
    assert ledger.count(0.0, 0.08)["input"].syn_feedback == 2 + 5 * 2
    with pytest.raises(MburstError, match="copies=0 must be an integer >= 1"):
        ledger.add_synapses("gen", fb.i[:], "feedback", "spike", copies=0)
    tot = energy.total_counts(counts)
    # Loihi counts at 1 ms: 4 cells x 80 steps. Active: cells 0-2 get forward spikes in steps 0, 5, 30 (and the
    # interneuron events of steps 0, 30), cells 0-1 the feedback of step 10; cell 3 steps 10, 40, 60: 9 + 2 + 3.
    loihi = tot.at_step(1e-3)
    assert (loihi.updates, loihi.active, loihi.idle, loihi.assumed_active) == (320, 14, 306, 0)
    j = energy.spiking_energy_j(tot, "Loihi")
    assert j == pytest.approx(tot.synops * 23.6e-12 + 14 * 81e-12 + 306 * 52e-12 + 6 * 3.5e-12, rel=1e-12)
    assert energy.spiking_energy_j(tot, "CPU") == pytest.approx((tot.synops + 3200) * 8.6e-9)  # simulation step
    assert math.isfinite(energy.spiking_energy_j(tot, "biology"))
