"""One home for model files: every kind round-trips with weights_only=True; pickled payloads and
files of an older cgankd are refused with one line; the layout says what has run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PicklePayload, shrunk

from cgankd import store
from cgankd.base.errors import CgankdError
from cgankd.config import GanCfg
from cgankd.config.layout import Layout
from cgankd.features.sparse_ae import SparseAE
from cgankd.gan.biggan import Generator
from cgankd.kd.vkd_generator import VirtualKnowledgeGenerator
from cgankd.models import build_model
from cgankd.pipeline.runner import recorded
from cgankd.pipeline.spec import TABLE
from cgankd.subsample.dre import RatioMLP


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _weights_only(path: Path) -> None:
    torch.load(path, weights_only=True)  # the file itself needs no unpickling of code


def test_every_kind_round_trips(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet8", 3, 5, 16)
    model.meta.update({"task": "classification", "classes": ["a", "b", "c", "d", "e"], "label_range": [0.0, 1.0],
                       "label_unit": ""})
    store.save_model(model, tmp_path / "m.pt", {"best_step": np.int64(7), "method": "nokd"})
    _same(model, store.load_model(tmp_path / "m.pt"))
    meta, _ = store.read(tmp_path / "m.pt", "image_model")
    assert {k: v for k, v in meta.items() if k != "model"} == {"best_step": 7, "method": "nokd"}
    assert type(meta["best_step"]) is int  # numpy scalars saved as plain numbers

    g = Generator(None, 16, 1, z_dim=8, ch=4, embed_dim=8)
    gan = GanCfg(z_dim=8, g_ch=4, embed_dim=8)
    store.save_gan_generator(g, tmp_path / "g.pt", {"num_classes": None, "task": "regression", "resolution": 16,
                                                    "channels": 1, "label_range": [np.float32(0), 90.0],
                                                    "gan": asdict(gan)})
    _same(g, store.load(tmp_path / "g.pt", "gan_generator"))

    v = VirtualKnowledgeGenerator(5, 4)
    store.save_vkd_generator(v, tmp_path / "v.pt", {"temperature": 4.0})
    _same(v, store.load(tmp_path / "v.pt", "vkd_generator"))

    ae = SparseAE(1, 16, 8)
    store.save_extractor(ae, {"kind": "sparse_ae", "channels": 1, "resolution": 16, "feat_dim": 8}, tmp_path / "e.pt")
    _same(ae, store.load(tmp_path / "e.pt", "extractor"))
    store.save_extractor(model, {"kind": "classifier", **model.meta}, tmp_path / "c.pt")
    _same(model, store.load(tmp_path / "c.pt", "extractor"))

    dre = RatioMLP(8, 5, 16)
    store.save_dre(dre, tmp_path / "d.pt")
    _same(dre, store.load(tmp_path / "d.pt", "dre"))

    opt = torch.optim.Adam(g.parameters())
    g(torch.rand(2, 8), torch.rand(2)).sum().backward()
    opt.step()
    store.save(tmp_path / "k.pt", "gan_checkpoint", {"fingerprint": "x", "step": 3, "history": [{"step": 1}]},
               {"opt": opt.state_dict(), "gen": torch.Generator().get_state()})
    meta, state = store.read(tmp_path / "k.pt", "gan_checkpoint")
    assert meta["step"] == 3 and torch.equal(state["gen"], torch.Generator().get_state())
    torch.optim.Adam(g.parameters()).load_state_dict(state["opt"])
    for name in ("m", "g", "v", "e", "c", "d", "k"):
        _weights_only(tmp_path / f"{name}.pt")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave nothing behind


def test_pickled_payload_is_refused_and_never_runs(tmp_path):
    evil, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    torch.save({"format": store.FORMAT, "kind": "image_model", "meta": {"x": PicklePayload(marker)}, "state": {}}, evil)
    with pytest.raises(CgankdError, match="holds pickled Python objects, refused"):
        store.load_model(evil)
    assert not marker.exists()


def test_old_and_wrong_files_get_one_line_errors(tmp_path):
    model = build_model("convnet_xs", 3, 2, 16)
    torch.save({"state_dict": model.state_dict(), "meta": model.meta}, tmp_path / "old.pt")  # the earlier layout
    with pytest.raises(CgankdError, match="older cgankd .*re-run"):
        store.load_model(tmp_path / "old.pt")
    store.save_dre(RatioMLP(4, 2, 8), tmp_path / "dre.pt")
    with pytest.raises(CgankdError, match="holds a dre, expected a image_model"):
        store.load_model(tmp_path / "dre.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CgankdError, match="not a readable model file"):
        store.load_model(tmp_path / "junk.pt")
    with pytest.raises(CgankdError, match="not found .*re-run `cgankd train-teacher`"):
        store.load(tmp_path / "none.pt", "image_model", stage="train-teacher")


def test_old_gan_checkpoint_starts_afresh_with_a_notice(tmp_path, capsys):
    from cgankd.gan.train import train_gan

    torch.save({"fingerprint": "whatever", "step": 1}, tmp_path / "ck.pt")  # pickled dict of an old run
    rng = np.random.default_rng(0)
    cfg = GanCfg(iterations=2, batch_size=4, z_dim=8, g_ch=4, d_ch=4, embed_dim=8, checkpoint_every=1)
    _, hist = train_gan(cfg, rng.integers(0, 256, (8, 3, 16, 16), dtype=np.uint8), np.arange(8) % 2, 2, 0,
                        tmp_path / "ck.pt")
    assert len(hist) == 2 and "ignoring checkpoint" in capsys.readouterr().err


def test_layout_names_every_output(tmp_path):
    cfg = shrunk(tmp_path, "student.tag=small")
    lay = Layout(cfg)
    assert lay.path("teacher") == tmp_path / "teacher" / "model.pt"
    assert lay.path("student", "cgankd") == tmp_path / "students" / "small" / "cgankd" / "model.pt"
    assert lay.path("student_metrics", "nokd") == tmp_path / "metrics" / "student_small_nokd.json"
    assert lay.rel("student_dir:cgankd+blkd") == "students/small/cgankd+blkd"
    with pytest.raises(ValueError, match="needs a student method"):
        lay.path("student")
    # every key of the stage table is a key of the layout
    for s in TABLE:
        keys = (*s.deps_for(cfg, "cgankd+blkd"), *s.outs, *s.plots, *s.artifacts, *s.metrics, s.done or "prepared")
        for key in keys:
            assert lay.path(key, "nokd").is_relative_to(tmp_path), (s.name, key)


def test_a_stage_s_recorded_result_is_read_back_for_reuse(tmp_path):
    cfg = shrunk(tmp_path)
    assert recorded(cfg, "train-teacher") is None and recorded(cfg, "prepare") is None
    assert recorded(cfg, "export") is None  # nothing marks it: always re-run
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "teacher.json").write_text('{"test_acc": 50.0}')
    assert recorded(cfg, "train-teacher") == {"test_acc": 50.0}
    (tmp_path / "prepared").mkdir()
    (tmp_path / "prepared" / "meta.json").write_text("{}")
    assert recorded(cfg, "prepare") == {"reused": True}
