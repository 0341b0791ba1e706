import numpy as np
import pytest
import torch

from cgankd.base.errors import CgankdError
from cgankd.models import build_model
from cgankd.serve.onnx_export import INPUT, OUTPUT, export_onnx, parity, session


@pytest.mark.parametrize("arch, ch, res", [("convnet_s", 3, 32), ("resnet8", 1, 16), ("wrn_16_2", 3, 32),
                                           ("vgg8", 1, 16), ("MobileNetV2", 3, 32), ("ShuffleNetV1", 3, 32),
                                           ("ShuffleNetV2", 1, 16)])
def test_onnx_parity_and_dynamic_batch(tmp_path, arch, ch, res):
    torch.manual_seed(0)
    model = build_model(arch, ch, 10, res).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, path, ch, res, opset=18, dynamo=False)
    report = parity(model, path, ch, res, atol=1e-4)
    assert report["ok"] and report["max_abs_diff_batch1"] < 1e-4 and report["max_abs_diff_batch64"] < 1e-4
    sess = session(path)
    for b in (1, 3, 64):
        out = sess.run([OUTPUT], {INPUT: np.random.rand(b, ch, res, res).astype(np.float32)})[0]
        assert out.shape == (b, 10)


def test_parity_failure_is_reported(tmp_path):
    model = build_model("convnet_xs", 3, 4, 16).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, path, 3, 16, opset=18, dynamo=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    with pytest.raises(CgankdError, match="parity failed"):
        parity(model, path, 3, 16, atol=1e-4)


def test_regressor_export_carries_its_label_range(tmp_path):
    import json

    import onnx

    torch.manual_seed(0)
    model = build_model("convnet_xs", 3, 1, 16).eval()
    path = tmp_path / "r.onnx"
    export_onnx(model, path, 3, 16, opset=18, dynamo=False,
                metadata={"task": "regression", "label_range": [0.0, 90.0], "label_unit": "degrees"})
    props = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert props == {"task": "regression", "label_range": [0.0, 90.0], "label_unit": "degrees"}
    assert parity(model, path, 3, 16, atol=1e-4)["ok"]
    assert session(path).run([OUTPUT], {INPUT: np.zeros((2, 3, 16, 16), np.float32)})[0].shape == (2, 1)
