"""The stages' names and order, importable without torch (the CLI's parser reads them)."""

STAGE_ORDER = ("prepare", "train-teacher", "train-extractor", "train-gan", "make-fakes", "train-vkd",
               "train-student", "export", "evaluate", "register")
FAKE_STAGES = ("train-extractor", "train-gan", "make-fakes")
DDP_STAGES = ("train-teacher", "train-extractor", "train-gan", "train-student")  # run under torchrun
