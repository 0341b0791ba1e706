"""The sections of params.yaml as typed dataclasses, each constraint declared beside its field
(``cgankd.base.checks``). The defaults mirror params.yaml, so a key left out of the file falls
back to the documented default (a test checks they agree)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from cgankd.base.checks import Count, Fraction, OneOf, Positive, Range, Rate, Weight

RESOLUTIONS = (16, 32, 64, 128)  # square image sizes the GANs, models and renderer are built for


@dataclass
class RenderCfg:
    resolution: Annotated[int, OneOf(*RESOLUTIONS)] = 32
    supersample: Positive = 2
    models_per_class: Positive = 4
    model_seed: Count = 1234
    yaw_range: list[float] = field(default_factory=lambda: [0.0, 360.0])
    elevation_range: list[float] = field(default_factory=lambda: [5.0, 45.0])
    scale_range: Annotated[list[float], Range(gt=0)] = field(default_factory=lambda: [0.7, 1.0])
    shift: Weight = 0.08
    clutter: Count = 3
    color_jitter: Weight = 1.0
    ambient_range: Annotated[list[float], Range(ge=0, le=1)] = field(default_factory=lambda: [0.25, 0.55])
    noise: Weight = 0.02


@dataclass
class RcCfg:
    n_models: Count = 49
    angle_step: Rate = 0.1
    train_every: Positive = 2
    split: Annotated[str, OneOf("grid", "indx_train", note="an RC-49 h5 file's training pool")] = "grid"
    n_per_angle: Count = 2
    n_val: Count = 500
    n_test_per_angle: Count = 5
    elevation_range: list[float] = field(default_factory=lambda: [20.0, 40.0])


@dataclass
class DataCfg:
    source: str = "auto"  # a name of cgankd.data.sources (checked against the registry) or auto
    root: str | None = None
    seed: Count = 0
    n_per_class: Annotated[int | None, Range(ge=1)] = 100
    n_val_per_class: Annotated[int, Range(ge=1, note="best-validation checkpoints read it")] = 20
    n_test: Count = 5000
    resolution: Annotated[int | None, OneOf(*RESOLUTIONS, note="the source's own")] = None
    channels: Annotated[int | None, OneOf(1, 3, note="the source's own")] = None
    render: RenderCfg = field(default_factory=RenderCfg)
    rc: RcCfg = field(default_factory=RcCfg)


@dataclass
class TrainCfg:
    arch: str = "resnet20"  # a name of the model zoo (checked against it)
    steps: Positive = 2000
    batch_size: Annotated[int, Range(ge=2)] = 64
    lr: Rate = 0.05
    momentum: Fraction = 0.9
    weight_decay: Weight = 5e-4
    augment: bool = True
    crop: Annotated[str, OneOf("translate", "resized", note="augment's crop: shifts, or RandomResizedCrop")
                    ] = "translate"
    eval_every: Positive = 250
    width: Rate = 1.0
    grad_clip: Rate = 5.0
    epochs: Annotated[int | None, Range(ge=1, note="steps count")] = None
    schedule: Annotated[str, OneOf("cosine", "step")] = "cosine"
    decay_at: Annotated[list[float], Range(gt=0, lt=1)] = field(default_factory=lambda: [0.625, 0.75, 0.875])
    decay_rate: Fraction = 0.1


@dataclass
class TeacherCfg(TrainCfg):
    init: str | None = None  # a released checkpoint (the authors' teacher): loaded and checked, not trained


@dataclass
class StudentCfg(TrainCfg):
    arch: str = "convnet_s"
    steps: Positive = 1200
    fake_ratio: Weight = 2.0
    n_fakes: Annotated[int | None, Range(ge=1, note="every fake")] = None
    mode: Annotated[str, OneOf("scratch", "finetune")] = "finetune"
    finetune_lr: Rate = 0.01
    finetune_steps: Positive = 1000
    finetune_from: Annotated[str, OneOf("own", "nokd-last")] = "own"
    methods: list[str] = field(default_factory=lambda: ["nokd", "cgankd"])
    fakes: str | None = None
    tag: str | None = None
    skip_weak_fakes: bool = False


@dataclass
class VKDCfg:
    steps: Positive = 2000
    batch_size: Positive = 128
    lr: Rate = 2e-4
    kl_weight: Weight = 1.0
    z_dim: Positive = 16
    views: Positive = 8


@dataclass
class ExtractorCfg(TrainCfg):
    arch: str = "resnet8"
    steps: Positive = 600
    eval_every: Positive = 200
    ae: Annotated[str, OneOf("small", "paper", note="regression: the sparse autoencoder")] = "small"
    feat_dim: Annotated[int | None, Range(ge=1, note="C x H x W (ae: paper)")] = 64
    sparsity: Weight = 1e-3
    ae_lr: Rate = 1e-3


@dataclass
class SubsampleCfg:
    enabled: bool | None = None
    dre_lambda: Weight = 0.01
    dre_steps: Positive = 1500
    dre_batch_size: Positive = 256
    dre_lr: Rate = 1e-3
    dre_hidden: Positive = 256
    n_fake_train: Positive = 5000
    max_draw_factor: Positive = 2
    holdout: Annotated[float, Range(ge=0, lt=1)] = 0.3
    dre_weight_decay: Weight = 1e-3
    dre_patience: Annotated[int | None, Range(ge=1, note="no early stopping")] = 5
    dre_net: Annotated[str, OneOf("mlp2", "mlp5")] = "mlp2"
    dre_fakes: Annotated[str, OneOf("pool", "fresh", note="fakes drawn once, or at every step")] = "pool"
    dre_epochs: Annotated[int | None, Range(ge=1, note="dre_steps counts")] = None
    dre_betas: Annotated[list[float], Range(ge=0, lt=1)] = field(default_factory=lambda: [0.9, 0.999])
    dre_decay_at: Annotated[list[float], Range(gt=0, lt=1)] = field(default_factory=list)
    m_quantile: Annotated[float, Range(gt=0, le=1)] = 0.95
    m_per_label: bool = False
    m_burn_in: Annotated[int | None, Range(ge=1, note="the filter's burn-in")] = None


@dataclass
class QualityCfg:
    n_fakes: Positive = 2000
    n_windows: Positive = 19
    window: Annotated[float, Range(gt=0, le=1, note="a fraction of the label range")] = 0.1


@dataclass
class CcganCfg:
    vicinity: Annotated[str, OneOf("hard", "soft")] = "soft"
    sigma: Annotated[float | None, Range(gt=0, note="rule of thumb")] = None
    kappa: Annotated[float | None, Range(gt=0, note="rule of thumb")] = None
    kappa_k: Rate = 1.0
    threshold: Annotated[float, Range(gt=0, lt=1)] = 1e-3
    embedding: Annotated[str, OneOf("sinusoid", "y2h", note="the label embedding")] = "sinusoid"
    embed_arch: str = "resnet20"  # y2h: the x2y network's backbone (a name of the model zoo)
    embed_steps: Positive = 2000  # y2h: SGD steps of x2y
    embed_epochs: Annotated[int | None, Range(ge=1, note="embed_steps counts")] = None
    embed_batch_size: Positive = 128
    embed_decay_at: Annotated[list[float], Range(gt=0, lt=1)] = field(default_factory=list)
    y2h_steps: Positive = 2000  # y2h: SGD steps of y2h (batch 128)
    y2h_epochs: Annotated[int | None, Range(ge=1, note="y2h_steps counts")] = None
    y2h_decay_at: Annotated[list[float], Range(gt=0, lt=1)] = field(default_factory=list)
    y2h_init: str | None = None  # with gan.init: the authors' y2h checkpoint their CcGAN was trained with
    init_label_range: list[float] | None = None  # with gan.init: the labels their [0, 1] spans (null: the data's)


@dataclass
class GanCfg:
    arch: Annotated[str, OneOf("biggan", "biggan_pytorch", "sagan",
                               note="cgankd's small BigGAN, the authors' BigGAN or their SAGAN CcGAN")] = "biggan"
    iterations: Positive = 800
    batch_size: Positive = 64
    z_dim: Positive = 64
    g_ch: Positive = 24
    d_ch: Positive = 24
    embed_dim: Positive = 64
    lr_g: Rate = 2e-4
    lr_d: Rate = 2e-4
    betas: Annotated[list[float], Range(ge=0, lt=1)] = field(default_factory=lambda: [0.0, 0.999])
    d_steps: Positive = 1
    ema_decay: Fraction = 0.999
    ema_start: Count = 200
    diffaug: str = "color,translation,cutout"
    checkpoint_every: Positive = 250
    score_every: Annotated[int, Range(ge=0, note="0 = no checks")] = 200
    score_n: Positive = 50
    stop_patience: Annotated[int | None, Range(ge=1, note="never stop early")] = None
    target_score: Annotated[float | None, Range(gt=0, le=2, note="the label score relative to the teacher's")] = None
    max_minutes: Annotated[float | None, Range(gt=0, note="no time budget")] = None
    ccgan: CcganCfg = field(default_factory=CcganCfg)
    init: str | None = None  # the authors' released GAN (BigGAN-PyTorch G_ema.pth, or their CcGAN): loaded, not trained


@dataclass
class FakesCfg:
    n_per_class: Positive = 1000
    n_labels: Annotated[int, Range(ge=2, note="a grid over the label range")] = 900
    n_per_label: Positive = 10
    batch_size: Positive = 500
    truncation: Annotated[float | None, Range(gt=0, note="no truncation")] = None
    min_relative_score: Annotated[float | None, Range(ge=0, le=2, note="the task's threshold")] = None


@dataclass
class FilterCfg:
    enabled: bool = True
    rho: Annotated[float | None, Range(gt=0, le=1, note="the task's default")] = None
    burn_in: Positive = 1000
    burn_in_from: Annotated[str, OneOf("raw", "subsampled", "whole",
                                       note="where the cut-offs' burn-in comes from")] = "raw"
    max_rounds: Positive = 50
    net: str | None = None  # null: the teacher filters and relabels; a zoo arch: a network of its own does
    net_init: str | None = None  # a released checkpoint of that network (the authors'): loaded, not trained


@dataclass
class AdjustCfg:
    enabled: bool | None = None


@dataclass
class ExportCfg:
    opset: Annotated[int, Range(ge=7)] = 18
    atol: Rate = 1e-4
    dynamo: bool = False
    int8: bool = False
    fp16: bool = False
    int8_calibration: Positive = 512
    int8_max_drop: Weight = 0.5
    int8_max_mae_increase: Weight = 0.02


@dataclass
class TrackingCfg:
    experiment: str = "cgankd"
    model_name: str | None = None
    promotion_margin: Weight = 0.5
    system_metrics: bool = True  # CPU/GPU/memory use on the training stages' runs (MLflow system metrics)


@dataclass
class ServeCfg:
    host: str = "127.0.0.1"
    port: Annotated[int, Range(ge=1, le=65535)] = 8000
    max_body_mb: Rate = 16.0
    max_json_mb: Rate = 4.0
    max_batch: Positive = 1024
    providers: Annotated[str, OneOf("auto", "cpu", "cuda")] = "auto"
    threads: Annotated[int | None, Range(ge=1, note="onnxruntime's default")] = None
    precision: Annotated[str, OneOf("fp32", "int8")] = "fp32"
    io_binding: Annotated[str, OneOf("auto", "on", "off", note="auto: on with the CUDA provider")] = "auto"
    max_in_flight: Positive = 64
    batching: bool = True
    batch_max: Positive = 32
    batch_wait_ms: Rate = 2.0
    body_timeout_s: Rate = 10.0
    header_timeout_s: Rate = 10.0
    max_connections: Positive = 512
    token_file: str | None = None
    allowed_hosts: list[str] | None = None
