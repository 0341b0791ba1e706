"""GAN and fake-set quality in the feature space of a network trained on the data itself."""
