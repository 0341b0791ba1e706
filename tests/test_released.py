"""Released classifier checkpoints load into the zoo (``teacher.init``, ``filter.net_init``): a WRN saved the
way the authors' RepDistiller saves one (its module names and order, derived from CIFAR-100/RepDistiller/
models/wrn.py at 8fcb117: ``{'model': state_dict}``, through nn.DataParallel) is matched tensor by tensor,
scored instead of trained, and another architecture is refused in one line naming the first tensor off."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import shrunk
from kit import make_cifar

from cgankd.base.errors import CgankdError
from cgankd.config import load_config
from cgankd.models import build_model
from cgankd.models.released import load_released
from cgankd.stages import prepare, train_teacher
from cgankd.store import files


def _bn(name: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
            f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()}


def repdistiller_wrn(depth: int, widen: int, classes: int) -> dict[str, tuple[int, ...]]:
    """RepDistiller's WideResNet in registration order: conv1, block1..3 (NetworkBlock.layer of BasicBlocks:
    bn1, conv1, bn2, conv2, convShortcut where the widths differ), bn1, fc."""
    n, ch = (depth - 4) // 6, [16, 16 * widen, 32 * widen, 64 * widen]
    keys = {"conv1.weight": (16, 3, 3, 3)}
    for b in range(3):
        for j in range(n):
            cin, cout, p = ch[b] if j == 0 else ch[b + 1], ch[b + 1], f"block{b + 1}.layer.{j}"
            keys.update({**_bn(f"{p}.bn1", cin), f"{p}.conv1.weight": (cout, cin, 3, 3), **_bn(f"{p}.bn2", cout),
                         f"{p}.conv2.weight": (cout, cout, 3, 3)})
            if cin != cout:
                keys[f"{p}.convShortcut.weight"] = (cout, cin, 1, 1)
    return {**keys, **_bn("bn1", ch[3]), "fc.weight": (classes, ch[3]), "fc.bias": (classes,)}


def _their_file(path, depth: int, widen: int, classes: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randint(0, 9, s) if k.endswith("num_batches_tracked") else torch.rand(s, generator=g) + 0.1)
             for k, s in repdistiller_wrn(depth, widen, classes).items()}
    torch.save({"epoch": 240, "model": {f"module.{k}": v for k, v in state.items()}, "accuracy": 0.0}, path)
    return state


def test_a_repdistiller_wrn_maps_onto_the_zoos_by_position(tmp_path):
    theirs = _their_file(tmp_path / "ckpt_wrn_16_2.pth", 16, 2, 10)
    model = build_model("wrn_16_2", 3, 10, 32)
    mapping = load_released(tmp_path / "ckpt_wrn_16_2.pth", model, "wrn_16_2", "param teacher.init")
    assert mapping["backbone.fc.weight"] == "fc.weight" and mapping["backbone.bn.running_var"] == "bn1.running_var"
    assert mapping["backbone.groups.1.0.short.weight"] == "block2.layer.0.convShortcut.weight"
    assert mapping["backbone.groups.2.1.conv2.weight"] == "block3.layer.1.conv2.weight"
    assert all(torch.equal(model.state_dict()[ok], theirs[tk]) for ok, tk in mapping.items())


def test_another_architecture_is_refused_in_one_line(tmp_path):
    _their_file(tmp_path / "w161.pth", 16, 1, 10)
    with pytest.raises(CgankdError, match=r"tensor 6 is block1.layer.0.conv1.weight \(16, 16, 3, 3\), cgankd's "
                                          r"wrn_40_2 has backbone.groups.0.0.conv1.weight \(32, 16, 3, 3\) there"):
        load_released(tmp_path / "w161.pth", build_model("wrn_40_2", 3, 10, 32), "wrn_40_2", "param teacher.init")
    state = _their_file(tmp_path / "w162.pth", 16, 2, 10)
    torch.save({"model": {k: v for k, v in state.items() if not k.startswith("fc.")}}, tmp_path / "headless.pth")
    with pytest.raises(CgankdError, match="has 81 tensors, cgankd's wrn_16_2 83: another architecture"):
        load_released(tmp_path / "headless.pth", build_model("wrn_16_2", 3, 10, 32), "wrn_16_2", "param teacher.init")
    torch.save({"optimizer": {"lr": 0.1}}, tmp_path / "odd.pth")
    with pytest.raises(CgankdError, match=r"holds no state dict of tensors under model / net_state_dict"):
        load_released(tmp_path / "odd.pth", build_model("resnet8", 3, 10, 32), "resnet8", "param teacher.init")
    with pytest.raises(CgankdError, match="filter.net_init"):
        load_config(None, ["filter.net_init=x.pth"])


def test_train_teacher_scores_the_released_teacher_instead_of_training(tmp_path):
    root = make_cifar(tmp_path / "data", hundred=True)
    _their_file(tmp_path / "ckpt.pth", 16, 2, 10)
    cfg = shrunk(tmp_path / "out", "data.source=cifar100", f"data.root={root}", "data.n_per_class=3",
                 "data.n_val_per_class=1", "data.resolution=32", "teacher.arch=wrn_16_2", "teacher.width=1.0",
                 f"teacher.init={tmp_path / 'ckpt.pth'}")
    prepare.run(cfg)
    m = train_teacher.run(cfg)
    assert m["best_step"] == 0 and "val_acc" in m and "test_acc" in m
    meta, state = files.read(tmp_path / "out" / "teacher" / "model.pt", "image_model")
    assert meta["source"] == str(tmp_path / "ckpt.pth")
    assert json.loads((tmp_path / "out" / "metrics" / "teacher.json").read_text())["best_step"] == 0


def test_their_regression_vgg_maps_onto_vgg11_mlp(tmp_path):
    """UTKFace/models/vgg.py's vgg11 in registration order: features (conv with bias, BN, ReLU; max-pools),
    then fc.0 / fc.1 / fc.3 / fc.4 / fc.6 (Linear, BN, Linear, BN, Linear)."""
    keys, cin, i = {}, 3, 0
    for c in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if c == "M":
            i += 1
            continue
        keys.update({f"features.{i}.weight": (c, cin, 3, 3), f"features.{i}.bias": (c,), **_bn(f"features.{i + 1}", c)})
        cin, i = c, i + 3
    keys.update({"fc.0.weight": (512, 2048), "fc.0.bias": (512,), **_bn("fc.1", 512), "fc.3.weight": (512, 512),
                 "fc.3.bias": (512,), **_bn("fc.4", 512), "fc.6.weight": (1, 512), "fc.6.bias": (1,)})
    state = {k: torch.zeros(s, dtype=torch.long) if k.endswith("tracked") else torch.rand(s) for k, s in keys.items()}
    torch.save({"net_state_dict": state}, tmp_path / "ckpt_vgg11_epoch_350_last.pth")
    model = build_model("vgg11_mlp", 3, 1, 64)
    mapping = load_released(tmp_path / "ckpt_vgg11_epoch_350_last.pth", model, "vgg11_mlp", "param teacher.init")
    assert mapping["backbone.blocks.0.0.bias"] == "features.0.bias" and mapping["backbone.fc.weight"] == "fc.6.weight"
    assert mapping["backbone.blocks.4.3.weight"] == "features.25.weight"  # the last conv, after 4 pools
    assert torch.equal(model.state_dict()["backbone.mlp.4.running_var"], state["fc.4.running_var"])
