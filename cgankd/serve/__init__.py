"""Serving exported students: model card from ONNX metadata, onnxruntime session, request decoding,
the FastAPI app (``cgankd serve``) and batch prediction (``cgankd predict``).

Edge code: imports onnxruntime (and FastAPI for the app), never torch.
"""
