"""One onnxruntime session per served model; ``run`` is safe to call from many threads at once
(onnxruntime's ``InferenceSession.run`` is thread-safe and releases the GIL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.compute.providers import check_providers, choose_providers
from cgankd.serve.card import ModelCard


def make_session(path: Path, providers: list[str], threads: int | None = None, choice: str = "auto"):
    import sys

    import onnxruntime as ort

    if "CUDAExecutionProvider" in providers and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA / cuDNN from the nvidia wheels, whether or not torch was imported first
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CgankdError(str(path), f"onnxruntime cannot load it: {str(exc).splitlines()[0]}") from exc
    note = check_providers(providers, sess.get_providers(), choice, str(path))
    if note:
        print(note, file=sys.stderr)
    return sess


@dataclass
class ServedModel:
    """An ONNX student, its card, and where it came from (name, version, alias, uri)."""

    session: Any
    card: ModelCard
    info: dict[str, Any] = field(default_factory=dict)
    io_binding: bool = False  # run through an I/O binding: the output allocated by onnxruntime on the device

    def __post_init__(self) -> None:
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        static = list(inp.shape[1:])
        if all(isinstance(d, int) for d in static) and tuple(static) != self.card.shape:
            raise CgankdError(self.info.get("uri", "model"),
                              f"graph input {static} disagrees with its metadata {list(self.card.shape)}")

    def run(self, x: np.ndarray) -> np.ndarray:
        """float32 N x C x H x W in [0, 1] -> raw outputs."""
        if not self.io_binding:
            return self.session.run([self.output_name], {self.input_name: x})[0]
        binding = self.session.io_binding()  # one per call: a binding is not shared between threads
        binding.bind_cpu_input(self.input_name, np.ascontiguousarray(x))  # one copy to the device
        binding.bind_output(self.output_name, self.device)  # left where it is made, copied out once
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    @property
    def device(self) -> str:
        return "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"

    def predict(self, x: np.ndarray) -> list[dict[str, Any]]:
        return self.card.postprocess(self.run(x))

    def metadata(self) -> dict[str, Any]:
        """What any client may read: the model's name, version and alias, its registry URI or file name
        (never a path on this machine, a run id or the registry's tags), the card, the providers."""
        uri = str(self.info.get("uri", ""))
        return {**{k: self.info.get(k) for k in ("name", "version", "alias")},
                "uri": uri if uri.startswith("models:/") else Path(uri).name,
                **self.card.public(), "providers": self.session.get_providers(), "io_binding": self.io_binding}


def load_onnx(path: Path, info: dict[str, Any] | None = None, providers: str = "auto",
              threads: int | None = None, io_binding: str = "auto") -> ServedModel:
    """``io_binding``: auto (on with the CUDA provider), on or off."""
    if not path.is_file():
        raise CgankdError(str(path), "ONNX file not found")
    sess = make_session(path, choose_providers(providers), threads, providers)
    card = ModelCard.from_props(dict(sess.get_modelmeta().custom_metadata_map), str(path))
    model = ServedModel(sess, card, {"name": path.stem, "version": None, "uri": str(path), **(info or {})})
    model.io_binding = io_binding == "on" or (io_binding == "auto" and model.device == "cuda")
    return model


def load_model(source: str, providers: str = "auto", threads: int | None = None,
               precision: str = "fp32", io_binding: str = "auto") -> ServedModel:
    """``source``: a .onnx path, ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` (with
    ``precision="int8"``: that version's int8 twin)."""
    if source.startswith("models:/"):
        import tempfile

        from cgankd.ops.model_registry import fetch_registered

        with tempfile.TemporaryDirectory(prefix="cgankd-serve-") as tmp:  # the session keeps the weights
            path, info = fetch_registered(source, Path(tmp), precision)
            return load_onnx(path, info, providers, threads, io_binding)
    if precision != "fp32":
        raise CgankdError("param serve.precision", f"{precision} picks a registered version's twin; a .onnx file "
                          "is served as it is (export/student.int8.onnx is the int8 one)")
    path = Path(source)
    if path.suffix != ".onnx":
        raise CgankdError(source, "expected a .onnx file, models:/<name>@<alias> or models:/<name>/<version>")
    return load_onnx(path, None, providers, threads, io_binding)
