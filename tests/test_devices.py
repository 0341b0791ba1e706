"""Everything a stage builds lands on the stage's device, checked without a GPU: the ``meta``
device stands in for CUDA (an op that mixes a meta tensor with a CPU tensor raises), so a tensor
or module left on the CPU by a distiller, a model or the GAN fails here as it would on CUDA."""

import pytest
import torch

from cgankd.gan.archs import build_discriminator, build_generator
from cgankd.gan.losses import d_hinge, g_hinge
from cgankd.kd import DISTILLERS
from cgankd.kd.base import KDContext
from cgankd.kd.vkd_generator import VirtualKnowledgeGenerator
from cgankd.models import build_model

META = torch.device("meta")
SHAPE = (3, 16, 16)


def on(module: torch.nn.Module, device: torch.device) -> list[str]:
    """Names of the parameters and buffers of ``module`` that are not on ``device``."""
    return [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.device != device]


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("name", sorted(DISTILLERS.names()))
def test_every_distiller_lives_and_trains_on_the_students_device(name, task):
    cls = DISTILLERS.get(name)
    if task == "regression" and cls.needs_generator:
        pytest.skip("VKD is classification only")
    outputs = 10 if task == "classification" else 1
    student = build_model("convnet_s", 3, outputs, 16).to(META)
    teacher = build_model("resnet8", 3, outputs, 16).to(META) if cls.needs_teacher else None
    generator = VirtualKnowledgeGenerator(10).to(META) if cls.needs_generator else None
    distiller = cls(student, KDContext(task=task, input_shape=SHAPE, teacher=teacher, generator=generator))
    assert on(distiller, META) == []
    x = torch.empty(4, *SHAPE, device=META)
    y = torch.zeros(4, dtype=torch.long, device=META) if task == "classification" else torch.empty(4, device=META)
    out, losses = distiller.train().forward_train(x, y)
    assert out.device == META and all(v.device == META for v in losses.values())
    sum(losses.values()).backward()


@pytest.mark.parametrize("arch", ["biggan", "sagan"])
@pytest.mark.parametrize("num_classes", [10, None])  # class-conditional, CcGAN
def test_gan_models_step_on_the_device(num_classes, arch):
    gan = {"arch": arch, "z_dim": 8, "g_ch": 8, "d_ch": 8, "embed_dim": 8}
    g = build_generator(gan, num_classes, 16, 3).to(META)
    d = build_discriminator(gan, num_classes, 16, 3).to(META)
    y = (torch.zeros(4, dtype=torch.long, device=META) if num_classes else torch.empty(4, device=META))
    fake = g(torch.empty(4, 8, device=META), y)
    real = torch.empty(4, *SHAPE, device=META)
    (d_hinge(d(real, y), d(fake.detach(), y)) + g_hinge(d(fake, y))).backward()
    assert on(g, META) == [] and on(d, META) == []
