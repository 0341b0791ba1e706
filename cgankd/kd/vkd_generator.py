"""VKD's virtual knowledge generator (Kim, IEEE Access 2022; this project's reading of the abstract,
see docs/method.md section 2): V(y, z) -> logits over C classes whose softened distribution
softmax(V/T) mimics the teacher's softmax(f_t(x)/T) on real images x of class y.

V is trained after the teacher, from the teacher's softened outputs on augmented views of the
real training images: a conditional discriminator D(p, y) (projection) tells the teacher's
distributions from V's (hinge loss), and V also minimises KL(class-mean teacher distribution ||
V's distribution). At student-training time V replaces the teacher: no teacher forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class VirtualKnowledgeGenerator(nn.Module):
    def __init__(self, num_classes: int, z_dim: int = 16, hidden: int = 128, embed: int = 32) -> None:
        super().__init__()
        self.num_classes, self.z_dim = num_classes, z_dim
        self.embed = nn.Embedding(num_classes, embed)
        self.net = nn.Sequential(nn.Linear(embed + z_dim, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, num_classes))

    def forward(self, y: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Logits N x C for labels ``y`` (N,) and noise ``z`` (N x z_dim; drawn when None)."""
        if z is None:
            z = torch.randn(len(y), self.z_dim, device=y.device)
        return self.net(torch.cat([self.embed(y), z], 1))

    def soft(self, y: torch.Tensor, temperature: float, z: torch.Tensor | None = None) -> torch.Tensor:
        """The softened distribution softmax(V(y, z) / T): rows are probabilities summing to 1."""
        return F.softmax(self(y, z) / temperature, dim=1)


class Critic(nn.Module):
    """D(p, y) on a distribution p: an MLP score plus a projection onto the label's embedding."""

    def __init__(self, num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(num_classes, hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(hidden, hidden), nn.LeakyReLU(0.2))
        self.out = nn.Linear(hidden, 1)
        self.embed = nn.Embedding(num_classes, hidden)

    def forward(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(p)
        return self.out(h).squeeze(1) + (self.embed(y) * h).sum(1)


@dataclass
class VKDTrainCfg:
    temperature: float
    steps: int
    batch_size: int
    lr: float
    kl_weight: float
    z_dim: int


def class_means(p: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C x C: the mean softened teacher distribution of each class."""
    out = torch.zeros(num_classes, p.shape[1], device=p.device)
    out.index_add_(0, y, p)
    return out / torch.bincount(y, minlength=num_classes).clamp_min(1).unsqueeze(1).float()


def train_generator(teacher_logits: torch.Tensor, y: torch.Tensor, num_classes: int, cfg: VKDTrainCfg,
                    seed: int, on_step=None) -> tuple[VirtualKnowledgeGenerator, list[dict[str, float]]]:  # noqa: ANN001
    """Fit V to the teacher's logits on real images (``teacher_logits`` N x C, labels ``y``), on their
    device. ``on_step(step, row)`` is called with the losses every ``steps // 20`` steps and at the
    end (one read from the device each time)."""
    dev = teacher_logits.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    torch.manual_seed(seed)
    p_t = F.softmax(teacher_logits / cfg.temperature, dim=1)
    means = class_means(p_t, y, num_classes)
    v, d = VirtualKnowledgeGenerator(num_classes, cfg.z_dim).to(dev), Critic(num_classes).to(dev)
    opt_v = torch.optim.Adam(v.parameters(), cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), cfg.lr, betas=(0.5, 0.999))
    history = []
    for step in range(1, cfg.steps + 1):
        i = torch.randint(0, len(y), (cfg.batch_size,), generator=gen, device=dev)
        yb, pb = y[i], p_t[i]
        z = torch.randn(len(yb), cfg.z_dim, generator=gen, device=dev)
        with torch.no_grad():
            fake = v.soft(yb, cfg.temperature, z)
        loss_d = F.relu(1 - d(pb, yb)).mean() + F.relu(1 + d(fake, yb)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        q = v.soft(yb, cfg.temperature, z)
        loss_adv = -d(q, yb).mean()
        loss_kl = F.kl_div(q.clamp_min(1e-12).log(), means[yb], reduction="batchmean")
        loss_v = loss_adv + cfg.kl_weight * loss_kl
        opt_v.zero_grad(set_to_none=True)
        loss_v.backward()
        opt_v.step()
        if step % max(1, cfg.steps // 20) == 0 or step == cfg.steps:
            ld, la, lk = torch.stack([loss_d.detach(), loss_adv.detach(), loss_kl.detach()]).tolist()
            row = {"step": step, "loss_d": ld, "loss_adv": la, "loss_kl": lk}
            history.append(row)
            if on_step:
                on_step(step, row)
    return v.eval(), history


@torch.no_grad()
def match_metrics(v: VirtualKnowledgeGenerator, teacher_logits: torch.Tensor, y: torch.Tensor,
                  num_classes: int, temperature: float, seed: int) -> dict[str, float]:
    """How close V's distributions are to the teacher's, on the same labels."""
    torch.manual_seed(seed)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    q = v.soft(y, temperature)
    mt, mv = class_means(p_t, y, num_classes), class_means(q, y, num_classes)
    ent = lambda p: float(-(p * p.clamp_min(1e-12).log()).sum(1).mean())  # noqa: E731
    return {"vkd_class_mean_kl": float(F.kl_div(mv.clamp_min(1e-12).log(), mt, reduction="batchmean")),
            "vkd_top1_agree_label": float((q.argmax(1) == y).float().mean() * 100),
            "teacher_top1_agree_label": float((p_t.argmax(1) == y).float().mean() * 100),
            "vkd_entropy": ent(q), "teacher_entropy": ent(p_t),
            "vkd_within_class_std": within_class_std(q, y, num_classes),
            "teacher_within_class_std": within_class_std(p_t, y, num_classes)}


def within_class_std(p: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """The spread of the distributions given to one class, averaged over classes and entries."""
    stds = [p[y == c].std(0).mean() for c in range(num_classes) if (y == c).sum() > 1]
    return float(torch.stack(stds).mean()) if stds else 0.0
