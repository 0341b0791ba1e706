"""Where tensors run: the device/precision/compile runtime and torchrun (DDP)."""
