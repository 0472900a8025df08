"""Device-aware counting: a hand-built network with known spikes, known active/idle device steps and a device with
its own step and two update energies; devices refused for a missing source or a bad step."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from neurons.common import MburstError
from rate_bridge import energy
from rate_bridge.devices import DEVICES, register_device
from rate_bridge.ledger import LayerCounts, SpikeLedger, total_counts

MS = 1e-3


def _monitor(i, t_ms):
    return SimpleNamespace(i=np.asarray(i, dtype=np.int64), t=np.asarray(t_ms, dtype=float) * MS)


def hand_network() -> SpikeLedger:
    """gen (2 inputs, not updated) -> hid (3 cells); 'drive' (2 cells) has no registered input.

    gen 0 spikes at 0.5, 1.2, 1.4 ms, gen 1 at 2.5 ms; hid 2 at 3.5 ms. Synapses gen 0 -> hid 0, 1; gen 1 -> hid 1.
    """
    led = SpikeLedger(dt=0.1 * MS)
    led.add_population("gen", "input", 2, _monitor([0, 0, 0, 1], [0.5, 1.2, 1.4, 2.5]), updates=False)
    led.add_population("hid", "hidden", 3, _monitor([2], [3.5]))
    led.add_population("drive", "hidden", 2, _monitor([], []))
    led.add_synapses("gen", [0, 0, 1], "forward", post="hid", post_index=[0, 1, 1])
    return led


def test_counts_at_two_device_steps_are_exact():
    counts = hand_network().count(0.0, 5 * MS, device_steps=(1 * MS, 2 * MS))
    inp, hid = counts["input"], counts["hidden"]
    assert (inp.spikes, inp.syn_forward, hid.spikes) == (4, 3 * 2 + 1, 1)
    assert hid.neuron_updates == 5 * 50  # simulation step: 5 cells x 50 steps of 0.1 ms
    # 1 ms steps 0..4. hid 0: input in steps 0, 1; hid 1: 0, 1, 2; hid 2 spikes in step 3 -> 6 active of 15.
    # 'drive' (inputs unknown): all 2 x 5 updates counted active.
    one = hid.at_step(1 * MS)
    assert (one.updates, one.active, one.idle, one.assumed_active) == (25, 6 + 10, 9, 10)
    assert inp.at_step(1 * MS).crowded == 1  # gen 0 spikes twice in step 1 (1.2, 1.4 ms)
    assert inp.at_step(1 * MS).updates == 0
    # 2 ms steps start at 0, 2, 4 ms: hid 0 step 0; hid 1 steps 0, 1; hid 2 step 1 -> 4 active of 9
    two = hid.at_step(2 * MS)
    assert (two.updates, two.active, two.idle) == (15, 4 + 6, 5)


def test_joules_on_a_two_speed_device_are_exact():
    tot = total_counts(hand_network().count(0.0, 5 * MS, device_steps=(1 * MS, 2 * MS)))
    kw = dict(source="test", j_per_idle_update=2e-12)
    fast = register_device("TestFast", 1e-12, 10e-12, 0.5e-12, step_s=1 * MS, **kw)
    slow = register_device("TestSlow", 1e-12, 10e-12, 0.5e-12, step_s=2 * MS, **kw)
    try:
        # synops 7, spikes 5; 1 ms: 16 active, 9 idle; 2 ms: 10 active, 5 idle
        assert energy.spiking_energy_j(tot, fast) == pytest.approx((7 + 16 * 10 + 9 * 2 + 5 * 0.5) * 1e-12, rel=1e-12)
        assert energy.spiking_energy_j(tot, "TestSlow") == pytest.approx((7 + 10 * 10 + 5 * 2 + 2.5) * 1e-12, rel=1e-12)
        assert energy.device_updates(tot, slow) == (10, 5)
        with pytest.raises(MburstError, match="no neuron updates counted at a 3 ms step"):
            energy.spiking_energy_j(tot, register_device("Test3", 1e-12, 1e-12, step_s=3 * MS, source="test"))
    finally:
        for name in ("TestFast", "TestSlow", "Test3"):
            DEVICES.pop(name, None)


def test_windows_and_shared_currents():
    led = hand_network()
    # windows [0, 2) and [3, 5) ms at 1 ms: steps 0, 1, 3, 4. Active: hid 0 {0, 1}, hid 1 {0, 1}, hid 2 {3}
    sc = led.count([0.0, 3 * MS], [2 * MS, 5 * MS], device_steps=(1 * MS,))["hidden"].at_step(1 * MS)
    assert (sc.updates, sc.active - sc.assumed_active, sc.idle) == (12 + 8, 5, 7)  # + drive: 2 cells x 4 steps
    # a synapse onto an ensemble's shared current reaches `copies` cells: post_index [n_syn, copies]
    led.add_synapses("gen", [1], "feedback", copies=2, post="hid", post_index=[[0, 2]])
    counts = led.count(0.0, 5 * MS, device_steps=(1 * MS,))
    assert counts["input"].syn_feedback == 2
    assert counts["hidden"].at_step(1 * MS).active == 16 + 2  # hid 0 and hid 2 in step 2
    with pytest.raises(MburstError, match=r"post_index must have shape .* or \(1, 2\), got \(1,\)"):
        led.add_synapses("gen", [1], "feedback", copies=2, post="hid", post_index=[0])
    with pytest.raises(MburstError, match="out of range"):
        led.add_synapses("gen", [1], "feedback", post="hid", post_index=[3])


def test_counts_round_trip_through_json_dict():
    tot = total_counts(hand_network().count(0.0, 5 * MS, device_steps=(1 * MS,)))
    back = LayerCounts.from_dict(tot.as_dict())
    assert back.as_dict() == tot.as_dict() and back.at_step(1e-3).idle == 9


def test_default_steps_include_loihi():
    counts = hand_network().count(0.0, 5 * MS)
    assert counts["hidden"].at_step(1e-3).idle == 9  # Loihi's 1 ms step is counted by default


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "no source for j_per_synop"),
    (dict(sources={"j_per_synop": "a", "j_per_neuron_update": "b"}, step_s=1e-3), "no source for step_s"),
    (dict(source="x", step_s=-1e-3), "step_s=-0.001 must be a positive time step"),
    (dict(source="x", step_s=0.0), "step_s=0.0 must be a positive time step"),
    (dict(source="x", j_per_idle_update=-1.0), "j_per_idle_update=-1.0 must be a finite number"),
    (dict(source="  "), "no source for j_per_synop"),
    (dict(source="x", sources={"j_per_magic": "y"}), "unknown keys"),
])
def test_bad_devices_are_refused_with_one_line(kwargs, message):
    with pytest.raises(MburstError, match=message) as err:
        register_device("TestBad", 1e-12, 1e-12, **kwargs)
    assert "\n" not in str(err.value)
    assert "TestBad" not in DEVICES


@pytest.mark.parametrize("bitmap, chunk", [(0, 1), (1 << 28, 2)])
def test_sorted_keys_and_small_chunks_give_the_same_counts(monkeypatch, bitmap, chunk):
    monkeypatch.setattr("rate_bridge.ledger._BITMAP", bitmap)  # 0: the sorted-unique path for large networks
    monkeypatch.setattr("rate_bridge.ledger._CHUNK", chunk)
    one = hand_network().count(0.0, 5 * MS, device_steps=(1 * MS,))["hidden"].at_step(1 * MS)
    assert (one.active, one.idle) == (16, 9)
