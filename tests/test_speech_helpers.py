"""Shared helpers of the speech tests (a tiny torch model, speech-like audio, random lips), and their own checks."""
from __future__ import annotations

import numpy as np

from experiments.data.features import N_BINS
from experiments.speech.resynthesis import frames_for

FS = 16_000


def speechlike(n: int) -> np.ndarray:
    """A voiced, syllable-modulated harmonic complex with pauses, ``n`` samples at 16 kHz."""
    t = np.arange(n) / FS
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.5 * t)) / FS
    voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
    return 0.1 * voiced * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2 * (np.sin(2 * np.pi * 0.7 * t) > -0.3)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2)))


def lips_for(n_samples: int, seed: int = 0) -> np.ndarray:
    """Random uint8 lip crops, one per started hop of ``n_samples``."""
    return np.random.default_rng(seed).integers(0, 256, (frames_for(n_samples), 50, 92), dtype=np.uint8)


def random_stats(seed: int = 3):
    """Plausible training statistics (log-power mean about -6, std 1..3; lips 110 +- 40)."""
    from experiments.data.frames import Stats

    rng = np.random.default_rng(seed)
    return Stats(rng.normal(-6, 1, N_BINS), rng.uniform(1, 3, N_BINS), 110.0, 40.0)


class TinyModel:
    """A small torch network with the model interface: audio [B,1,8,500] + visual [B,1,50,92] -> probs [B,500]."""

    def __new__(cls, seed: int = 0):
        import torch

        torch.manual_seed(seed)

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
                self.audio = torch.nn.Linear(2 * 8 * N_BINS, 16)
                self.visual = torch.nn.Linear(50 * 92, 16)
                self.out = torch.nn.Linear(32, N_BINS)

            def forward(self, audio, visual):
                a = torch.relu(self.audio(torch.relu(self.conv(audio)).flatten(1)))
                v = torch.relu(self.visual(visual.flatten(1)))
                return torch.sigmoid(self.out(torch.cat([a, v], 1)))

        return Net()


def test_helpers_are_seeded_and_shaped():
    import torch

    a, b = TinyModel(1), TinyModel(1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert lips_for(48_000 + 1).shape == (76, 50, 92) and np.array_equal(lips_for(640), lips_for(640))
    assert random_stats().mean.shape == (N_BINS,)
