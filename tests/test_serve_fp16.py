"""The fp16 twin for GPU serving (``export.fp16``) and serving through an I/O binding (``serve.io_binding``):
the twin has fp16 weights and arithmetic with fp32 inputs and outputs and says ``precision: fp16``; its
check runs on the serving provider and refuses a twin that differs; a bound run answers exactly what a
plain run does.
On a GPU the same tests run on the CUDA provider (marked cuda)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cgankd.base.errors import CgankdError
from cgankd.compute.providers import cuda_usable
from cgankd.data.prepared import Meta
from cgankd.models import build_model
from cgankd.serve.fp16 import check_fp16, convert_fp16
from cgankd.serve.onnx_export import export_onnx, serving_metadata
from cgankd.serve.runtime import load_onnx

META = Meta(task="classification", source="t", channels=3, resolution=16, classes=list("abcd"))


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fp16") / "student.onnx"
    export_onnx(build_model("convnet_s", 3, 4, 16).eval(), path, 3, 16, 18, False, serving_metadata(META, "nokd"))
    return path


def test_the_fp16_twin_keeps_fp32_io_and_says_what_it_is(student, tmp_path):
    import onnx

    out = tmp_path / "student.fp16.onnx"
    convert_fp16(student, out)
    proto = onnx.load(str(out))
    f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert [i.type.tensor_type.elem_type for i in (*proto.graph.input, *proto.graph.output)] == [f32, f32]
    weights = [t for t in proto.graph.initializer if t.data_type in (f32, f16) and len(t.dims) == 4]
    assert weights and all(t.data_type == f16 for t in weights)  # every conv kernel in fp16
    props = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert props["precision"] == "fp16" and props["classes"] == list("abcd")
    assert out.stat().st_size < 0.6 * student.stat().st_size
    report = check_fp16(student, out, 3, 16, ["CPUExecutionProvider"])  # weights rounded to fp16, sums in fp32
    assert report["provider"] == "CPUExecutionProvider" and report["arithmetic"].startswith("fp32 between casts")
    assert 0 < report["max_abs_diff_batch1"] < 0.01 and 0 < report["max_abs_diff_batch64"] < 0.01


def test_a_twin_that_differs_is_refused_in_one_line(student, tmp_path):
    import onnx
    from onnx import numpy_helper

    out = tmp_path / "student.fp16.onnx"
    convert_fp16(student, out)
    proto = onnx.load(str(out))
    last = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16][-1]
    last.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(last) + np.float16(1.0), last.name))
    onnx.save(proto, str(out))
    with pytest.raises(CgankdError, match="fp16 twin differs from the fp32 model by"):
        check_fp16(student, out, 3, 16, ["CPUExecutionProvider"])


def test_a_bound_run_answers_what_a_plain_run_does(student):
    plain, bound = load_onnx(student, io_binding="off"), load_onnx(student, io_binding="on")
    assert not plain.io_binding and bound.io_binding and bound.metadata()["io_binding"] is True
    assert load_onnx(student).io_binding is (bound.device == "cuda")  # auto: on with the CUDA provider only
    x = np.random.default_rng(0).random((5, 3, 16, 16), dtype=np.float32)
    assert np.array_equal(bound.run(x), plain.run(x))
    assert np.array_equal(bound.run(x[:1]), plain.run(x[:1]))


@pytest.mark.cuda
@pytest.mark.skipif(not cuda_usable(), reason="needs a CUDA GPU (run on the lent GPU machine)")
def test_on_cuda_the_fp16_twin_is_checked_and_served_bound(student, tmp_path):
    out = tmp_path / "student.fp16.onnx"
    convert_fp16(student, out)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    report = check_fp16(student, out, 3, 16, providers)
    assert report["provider"] == "CUDAExecutionProvider" and report["arithmetic"] == "fp16"
    half = load_onnx(out, providers="cuda")
    assert half.io_binding and half.card.public()["precision"] == "fp16"
    x = np.random.default_rng(1).random((8, 3, 16, 16), dtype=np.float32)
    assert np.abs(half.run(x) - load_onnx(student, providers="cuda").run(x)).max() < 0.05
