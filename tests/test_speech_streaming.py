"""Streaming enhancement: equal to offline enhancement, causal, latency, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.data.features import HOP
from experiments.speech.enhance import enhance
from experiments.speech.masking import torch_mask_fn
from experiments.speech.resynthesis import frames_for
from experiments.speech.streaming import StreamingEnhancer
from neurons.common import MburstError
from test_speech_helpers import FS, TinyModel, lips_for, random_stats


@pytest.fixture(scope="module")
def model_fn():
    return torch_mask_fn(TinyModel())


@pytest.fixture(scope="module")
def stats():
    return random_stats()


@pytest.mark.parametrize("n,mask,upper,floor", [(48_000, "soft", "attenuate", 0.0), (48_000 + 123, "binary", "pass", 0.0),
                                               (7 * HOP + 400, "soft", "attenuate", "mean"), (500, "soft", "pass", 0.0)])
def test_streaming_equals_offline(model_fn, stats, n, mask, upper, floor):
    x = np.random.default_rng(n).standard_normal(n) * 0.1
    lips = lips_for(n)
    offline = enhance(x, lips, model_fn, stats, mask=mask, upper=upper, floor=floor)
    streamer = StreamingEnhancer(model_fn, stats, mask=mask, upper=upper, floor=floor)
    online = streamer.run(x, lips)
    assert online.shape == offline.audio.shape == x.shape
    np.testing.assert_allclose(online, offline.audio, rtol=1e-5, atol=1e-6)
    assert streamer.times.count == frames_for(n) and streamer.times.worst >= streamer.times.mean > 0
    assert streamer.latency_ms == pytest.approx(1000 * (2 * 640 + 302) / FS)


def test_streaming_is_causal(model_fn, stats):
    # changing the input after sample k must not change output samples emitted before it arrived
    n = 20 * HOP
    x = np.random.default_rng(0).standard_normal(n) * 0.1
    y = x.copy()
    y[12 * HOP:] = 0.0
    lips = lips_for(n)
    a, b = StreamingEnhancer(model_fn, stats), StreamingEnhancer(model_fn, stats)
    out_a = np.concatenate([a.push(x[k * HOP:(k + 1) * HOP], lips[k]) for k in range(12)])
    out_b = np.concatenate([b.push(y[k * HOP:(k + 1) * HOP], lips[k]) for k in range(12)])
    assert len(out_a) == 10 * HOP + 338  # everything before frame 11's first sample (11*640 - 302)
    np.testing.assert_array_equal(out_a, out_b)


def test_band_model_streams_like_offline(stats):
    import torch

    from rate_bridge.burstprop.models import ModelConfig, build_model

    torch.manual_seed(0)
    fn = torch_mask_fn(build_model("mburst", ModelConfig(n_bins=100, channels=1, embed=4)))
    x = np.random.default_rng(9).standard_normal(10 * HOP + 7) * 0.1
    lips = lips_for(len(x))
    np.testing.assert_allclose(StreamingEnhancer(fn, stats).run(x, lips), enhance(x, lips, fn, stats).audio,
                               rtol=1e-5, atol=1e-6)


def test_streaming_bad_inputs(model_fn):
    with pytest.raises(MburstError, match="hop: expected 640 samples"):
        StreamingEnhancer(model_fn).push(np.zeros(100), np.zeros((50, 92)))
    with pytest.raises(MburstError, match=r"lip: expected shape \(50, 92\)"):
        StreamingEnhancer(model_fn).push(np.zeros(HOP), np.zeros((50, 90)))
    with pytest.raises(MburstError, match="lip: no lip frame given for the only"):
        StreamingEnhancer(model_fn).finish(np.zeros(100))
    with pytest.raises(MburstError, match="--mask"):
        StreamingEnhancer(model_fn, mask="hard")
    done = StreamingEnhancer(model_fn)
    done.run(np.zeros(2 * HOP), np.zeros((2, 50, 92)))
    with pytest.raises(MburstError, match="the stream has finished"):
        done.push(np.zeros(HOP), np.zeros((50, 92)))
    with pytest.raises(MburstError, match="already finished"):
        done.finish()


@pytest.mark.parametrize("block", [2, 7, 64])
def test_blocks_of_hops_give_the_same_output(model_fn, stats, block):
    """Several hops per model call (offline file enhancement) give what one hop at a time gives, with fewer calls."""
    n = 48_000 + 123
    x = np.random.default_rng(4).standard_normal(n) * 0.1
    lips = lips_for(n)
    one = StreamingEnhancer(model_fn, stats)
    many = StreamingEnhancer(model_fn, stats)
    np.testing.assert_allclose(many.run(x, lips, block=block), one.run(x, lips), rtol=1e-5, atol=1e-6)
    assert many.times.count == one.times.count == frames_for(n)
    with pytest.raises(MburstError, match=r"hops: expected whole 640-sample hops and one \(50, 92\) lip frame each"):
        StreamingEnhancer(model_fn).push_hops(np.zeros(2 * HOP), np.zeros((3, 50, 92)))
