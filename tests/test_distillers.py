"""Each distiller's loss on hand-made tensors against values computed by hand (golden values),
the T^2 scaling, the teacher kept frozen in eval mode, and VKD's generator."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cgankd.kd import DISTILLERS, parse_method
from cgankd.kd.base import KDContext
from cgankd.kd.blkd import kd_kl
from cgankd.kd.fitnet import hint_loss
from cgankd.kd.vkd_generator import (
    VirtualKnowledgeGenerator,
    VKDTrainCfg,
    class_means,
    match_metrics,
    train_generator,
)
from cgankd.models import build_model

S = torch.tensor([[1.0, 2.0, 3.0]])  # student logits
T = torch.tensor([[3.0, 2.0, 1.0]])  # teacher (or virtual) logits
# By hand: softmax([3, 2, 1] / T) and softmax([1, 2, 3] / T) are mirror images, so
# KL(p_t || p_s) = (p_t[0] - p_t[2]) * log(p_t[0] / p_t[2]) = (p_t[0] - p_t[2]) * 2 / T.
# T = 1: p_t = [0.665241, 0.244728, 0.090031] -> KL = 0.575210 * 2 = 1.150420
# T = 2: p_t = [0.506480, 0.307196, 0.186324] -> KL = 0.320156 * 1 = 0.320156, times T^2 = 1.280624
KL_T1, KL_T2 = 1.150420, 0.320156
CE_Y2 = 0.407606  # -log softmax([1, 2, 3])[2]


class Fixed(nn.Module):
    """Returns the same logits for every input (a hand-made student / teacher / generator)."""

    def __init__(self, logits: torch.Tensor, learnable: bool = False) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits.clone(), requires_grad=learnable)

    def forward(self, x: torch.Tensor, *_: object) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


def make(name: str, student: torch.nn.Module, task: str = "classification", shape: tuple[int, int, int] = (3, 8, 8),
         teacher: object = None, generator: object = None, **settings: object):
    """The distiller ``name`` with its own settings (``kd.<name>``): ``settings`` over their defaults."""
    cls = DISTILLERS.get(name)
    own = cls.Settings(**settings) if cls.Settings else None
    return cls(student, KDContext(task=task, input_shape=shape, teacher=teacher, generator=generator), own)


def test_kd_kl_golden_values_and_t_squared_scaling() -> None:
    assert kd_kl(S, T, 1.0).item() == pytest.approx(KL_T1, abs=1e-5)
    assert kd_kl(S, T, 2.0).item() == pytest.approx(4 * KL_T2, abs=1e-5)  # T^2 * KL
    assert kd_kl(T, T, 3.0).item() == pytest.approx(0.0, abs=1e-7)
    # batchmean: a batch of two identical rows gives the same value
    assert kd_kl(S.repeat(2, 1), T.repeat(2, 1), 2.0).item() == pytest.approx(4 * KL_T2, abs=1e-5)


def test_blkd_classification_golden() -> None:
    d = make("blkd", Fixed(S, True), teacher=Fixed(T), temperature=2.0, alpha=0.9)
    _, terms = d.forward_train(torch.zeros(1, 3, 8, 8), torch.tensor([2]))
    assert set(terms) == {"loss_ce", "loss_kd"}
    assert terms["loss_ce"].item() == pytest.approx(0.1 * CE_Y2, abs=1e-5)
    assert terms["loss_kd"].item() == pytest.approx(0.9 * 4 * KL_T2, abs=1e-5)


def test_blkd_regression_uses_the_teacher_output_as_a_second_target() -> None:
    student, teacher = Fixed(torch.tensor([[0.2], [0.6]]), True), Fixed(torch.tensor([[0.4], [0.4]]))
    d = make("blkd", student, "regression", teacher=teacher, alpha=0.5)
    _, terms = d.forward_train(torch.zeros(2, 3, 8, 8), torch.tensor([0.0, 1.0]))
    # MSE(s, y) = (0.2^2 + 0.4^2) / 2 = 0.1; MSE(s, t) = (0.2^2 + 0.2^2) / 2 = 0.04
    assert terms["loss_mse"].item() == pytest.approx(0.5 * 0.1, abs=1e-6)
    assert terms["loss_kd"].item() == pytest.approx(0.5 * 0.04, abs=1e-6)


def test_nokd_is_the_hard_loss() -> None:
    d = make("nokd", Fixed(S, True))
    _, terms = d.forward_train(torch.zeros(1, 3, 8, 8), torch.tensor([2]))
    assert terms["loss_ce"].item() == pytest.approx(CE_Y2, abs=1e-5)


def test_hint_loss_golden_and_pooling_to_the_smaller_map() -> None:
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert hint_loss(s, torch.zeros_like(s)).item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    assert hint_loss(s, torch.tensor([[[[2.0]]]])).item() == pytest.approx(0.25)  # mean(s) = 2.5


def test_fitnet_on_zoo_models_keeps_the_teacher_frozen() -> None:
    torch.manual_seed(0)
    student, teacher = build_model("convnet_xs", 3, 10, 16), build_model("resnet8", 3, 10, 16)
    d = make("fitnet", student, shape=(3, 16, 16), teacher=teacher, beta=2.0)
    d.train()
    assert d.student.training and not d.teacher.training
    x, y = torch.rand(4, 3, 16, 16), torch.randint(0, 10, (4,))
    _, terms = d.forward_train(x, y)
    assert set(terms) == {"loss_ce", "loss_hint"} and terms["loss_hint"].item() > 0
    sum(terms.values()).backward()
    assert all(p.grad is None for p in d.teacher.parameters())
    assert d.regressor[0].weight.grad is not None
    trainable = {id(p) for p in d.trainable()}
    assert all(id(p) not in trainable for p in d.teacher.parameters())
    assert all(id(p) in trainable for p in d.regressor.parameters())
    with pytest.raises(ValueError, match="needs a teacher"):
        make("fitnet", student, shape=(3, 16, 16))


def test_fitnet_with_the_soft_term_as_the_authors_run_it() -> None:
    """RepDistiller's -a 1 -b 100: CE + T^2 KL(teacher || student) + 100 * hint; 0 leaves KL out."""
    torch.manual_seed(0)
    student, teacher = build_model("convnet_xs", 3, 10, 16), build_model("resnet8", 3, 10, 16)
    x, y = torch.rand(4, 3, 16, 16), torch.randint(0, 10, (4,))
    d = make("fitnet", student, shape=(3, 16, 16), teacher=teacher, hint_kd=1.0)
    d.train()
    out, terms = d.forward_train(x, y)
    assert list(terms) == ["loss_ce", "loss_kd", "loss_hint"]
    with torch.no_grad():
        t_out = teacher(x)
    assert torch.allclose(terms["loss_kd"], kd_kl(out, t_out, 4.0))
    reg = make("fitnet", build_model("convnet_xs", 3, 1, 16), "regression", (3, 16, 16),
               teacher=build_model("resnet8", 3, 1, 16), hint_kd=0.5)
    out, terms = reg.forward_train(x, torch.rand(4))
    assert torch.allclose(terms["loss_kd"], 0.5 * torch.nn.functional.mse_loss(out, reg.teacher(x)))


def test_vkd_loss_golden_with_a_fixed_generator() -> None:
    gen = VirtualKnowledgeGenerator(3)
    gen.forward = lambda y, z=None: T.expand(len(y), -1)  # V's logits fixed to [3, 2, 1]
    d = make("vkd", Fixed(S, True), generator=gen, temperature=2.0, alpha=0.5)
    _, terms = d.forward_train(torch.zeros(1, 3, 8, 8), torch.tensor([2]))
    assert terms["loss_ce"].item() == pytest.approx(CE_Y2, abs=1e-5)  # the full CE (docs/method.md)
    assert terms["loss_vkd"].item() == pytest.approx(0.5 * 4 * KL_T2, abs=1e-5)
    with pytest.raises(ValueError, match="classification only"):
        make("vkd", Fixed(S, True), "regression", generator=gen)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_vkd_generator_output_shape_and_normalisation(temperature: float) -> None:
    torch.manual_seed(0)
    v = VirtualKnowledgeGenerator(num_classes=7, z_dim=5)
    y = torch.tensor([0, 3, 6, 6])
    assert v(y).shape == (4, 7)
    p = v.soft(y, temperature)
    assert p.shape == (4, 7) and (p > 0).all()
    assert torch.allclose(p.sum(1), torch.ones(4), atol=1e-6)
    z = torch.randn(4, 5)
    assert torch.equal(v(y, z), v(y, z)) and not torch.equal(v(y, z), v(y, torch.randn(4, 5)))


def test_class_means_golden() -> None:
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    got = class_means(p, torch.tensor([0, 1, 0]), 2)
    assert torch.allclose(got, torch.tensor([[0.75, 0.25], [0.0, 1.0]]))


def test_vkd_generator_learns_the_teachers_class_distributions() -> None:
    torch.manual_seed(0)
    c, n = 4, 400
    y = torch.arange(c).repeat(n // c)
    logits = 3.0 * nn.functional.one_hot(y, c).float() + 0.3 * torch.randn(n, c)
    cfg = VKDTrainCfg(temperature=2.0, steps=400, batch_size=64, lr=2e-3, kl_weight=1.0, z_dim=4)
    v, history = train_generator(logits, y, c, cfg, seed=0)
    m = match_metrics(v, logits, y, c, 2.0, seed=0)
    assert m["vkd_class_mean_kl"] < 0.02 and m["vkd_top1_agree_label"] > 95
    assert history and {"loss_d", "loss_adv", "loss_kl"} <= set(history[-1])
    again, _ = train_generator(logits, y, c, cfg, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(v.state_dict().values(), again.state_dict().values(), strict=True))


def test_method_names() -> None:
    names = DISTILLERS.names()
    assert parse_method("cgankd", names) == parse_method("cgankd", names)
    assert (parse_method("cgankd", names).distiller, parse_method("cgankd", names).fakes) == ("nokd", True)
    assert (parse_method("cgankd+vkd", names).distiller, parse_method("cgankd+vkd", names).fakes) == ("vkd", True)
    assert not parse_method("fitnet", names).fakes
    for bad in ("cgankd+nokd", "hinton", "cgankd+", "blkd+cgankd"):
        with pytest.raises(ValueError, match="choose from"):
            parse_method(bad, names)


def test_golden_constants_are_the_hand_computed_ones() -> None:
    def softmax(v: list[float]) -> list[float]:
        e = [math.exp(a) for a in v]
        return [a / sum(e) for a in e]

    for t, kl in ((1.0, KL_T1), (2.0, KL_T2)):
        p = softmax([3 / t, 2 / t, 1 / t])
        q = softmax([1 / t, 2 / t, 3 / t])
        assert sum(a * math.log(a / b) for a, b in zip(p, q, strict=True)) == pytest.approx(kl, abs=1e-6)
    assert -math.log(softmax([1, 2, 3])[2]) == pytest.approx(CE_Y2, abs=1e-6)
