"""The GAN step's structure (cgankd/gan/step.py, spectral.py): the same spectral norm as torch's,
one D call per D step, no D gradients in the G step, old checkpoints still load."""

import numpy as np
import torch
from torch import nn
from torch.nn.utils import spectral_norm as torch_sn

from cgankd.config import GanCfg
from cgankd.gan.biggan import Discriminator
from cgankd.gan.spectral import spectral_norm
from cgankd.gan.train import train_gan


def _net(sn) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(sn(nn.Conv2d(3, 8, 3)), nn.ReLU(), sn(nn.Conv2d(8, 4, 3)), nn.Flatten(),
                         sn(nn.Linear(4 * 4 * 4, 1)))


def _train(net: nn.Module) -> tuple[torch.Tensor, dict]:
    opt = torch.optim.Adam(net.parameters())
    torch.manual_seed(1)
    for _ in range(5):
        net(torch.randn(4, 3, 8, 8)).mean().backward()
        opt.step()
        opt.zero_grad()
    net.eval()
    return net(torch.ones(1, 3, 8, 8)), net.state_dict()


def test_spectral_norm_is_torchs_bit_for_bit_and_loads_its_checkpoints():
    out_t, state_t = _train(_net(torch_sn))
    out_m, state_m = _train(_net(spectral_norm))
    assert torch.equal(out_t, out_m)
    assert list(state_t) == list(state_m) and all(torch.equal(state_t[k], state_m[k]) for k in state_t)
    fresh = _net(spectral_norm)
    fresh.load_state_dict(state_t)  # a generator.pt written with torch's hooks
    assert torch.equal(fresh.eval()(torch.ones(1, 3, 8, 8)), out_t)


def test_one_d_call_per_d_step_and_no_d_gradients_in_the_g_step(tmp_path, monkeypatch):
    calls: list[tuple[int, bool]] = []
    real_forward = Discriminator.forward

    def counting(self, x, y):
        out = real_forward(self, x, y)
        calls.append((x.size(0), any(p.requires_grad for p in self.parameters())))
        return out

    monkeypatch.setattr(Discriminator, "forward", counting)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (20, 3, 16, 16), dtype=np.uint8), np.arange(20) % 4
    cfg = GanCfg(iterations=2, batch_size=6, z_dim=8, g_ch=4, d_ch=4, embed_dim=8, d_steps=3,
                 checkpoint_every=100, ema_start=1)
    train_gan(cfg, x, y, 4, seed=0, ckpt_path=tmp_path / "ck.pt")
    # per iteration: 3 D steps on real + fake together (12 images, D trainable), 1 G step (6, frozen)
    assert calls == [(12, True)] * 3 + [(6, False)] + [(12, True)] * 3 + [(6, False)]
