"""Conditional GANs: class-conditional (BigGAN-style) for classification."""
