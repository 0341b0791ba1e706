"""cgankd: knowledge distillation through cGAN-generated samples (cGAN-KD)."""

__version__ = "0.1.0"
