"""Generate -> subsample (cDR-RS, optional) -> filter -> adjust: draw fakes per group (a class, or
a label on a grid covering the whole label range) until the requested number per group passes.

The two tasks differ only in a ``TaskSpec`` (how a group becomes G's label, how the teacher scores
a fake, how cut-offs and rejection-sampling groups are formed), picked by task from ``SPECS``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cgankd.base.progress import Progress
from cgankd.config import Config
from cgankd.data.prepared import Meta
from cgankd.fakes.adjust import adjust_labels
from cgankd.fakes.filter import class_cutoffs, cross_entropy, keep_mask, regression_cutoff
from cgankd.gan.train import sample
from cgankd.subsample.rejection import RejectionSampler
from cgankd.task import task_of
from cgankd.train.evaluate import predict

Sample = Callable[[np.ndarray], np.ndarray]  # group ids -> uint8 images
Score = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (images, groups) -> teacher score, lower = better
Accept = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (images, groups) -> keep-mask (subsampling)
Ratio = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (images, G's labels) -> density ratio


@dataclass
class FakeSet:
    images: np.ndarray
    labels: np.ndarray  # labels the student trains on (adjusted when enabled), in the label's unit
    assigned: np.ndarray  # the labels G was conditioned on, in the label's unit
    score: np.ndarray  # teacher CE w.r.t. the assigned class, or |teacher - assigned| (scaled)
    cutoffs: np.ndarray  # per group
    burn_in_score: np.ndarray
    burn_in_groups: np.ndarray
    group: np.ndarray  # each kept fake's group
    generated: np.ndarray  # fakes drawn per group (before subsampling and filtering)
    acceptance_rate: float = 1.0  # cDR-RS: accepted / offered (1 without subsampling)
    ratio_max: float = float("nan")  # the final M of rejection sampling (max over groups)
    offered: np.ndarray | None = None  # cDR-RS: fakes offered to rejection sampling per group ...
    accepted: np.ndarray | None = None  # ... and accepted by it
    pool: dict[str, np.ndarray] = field(default_factory=dict)  # unprocessed fakes + step masks
    teacher_out: np.ndarray | None = None  # the teacher's raw outputs on ``images``
    made: np.ndarray | None = None  # filter.burn_in_from=whole: the fakes made per group before the filter


@dataclass
class TaskSpec:
    n_groups: int
    g_labels: Callable[[np.ndarray], np.ndarray]  # group ids -> G's conditioning labels
    score: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (teacher outputs, groups) -> score
    cutoffs: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (burn-in scores, groups) -> per group
    burn_in_groups: np.ndarray
    rs_group: Callable[[np.ndarray], np.ndarray]  # group ids -> rejection-sampling group (own M)
    unscale: Callable[[np.ndarray], np.ndarray]  # G's labels -> the label's unit
    slack: int


def label_grid(n: int) -> np.ndarray:
    """``n`` labels evenly covering the scaled range [0, 1], seen and unseen in training alike."""
    return np.linspace(0.0, 1.0, n).astype(np.float32)


def class_spec(cfg: Config, meta: Meta, rng: np.random.Generator) -> TaskSpec:
    """Per class: cut-off = rho-quantile of the teacher's CE on a burn-in batch of that class;
    one rejection-sampling bound M per class."""
    n = meta.num_classes
    return TaskSpec(n, lambda g: g, lambda out, g: cross_entropy(out, g),
                    lambda s, g: class_cutoffs(s, g, n, cfg.rho),
                    np.repeat(np.arange(n), max(cfg.filter.burn_in // n, 1)), lambda g: g,
                    lambda y: y, slack=8)


def regression_spec(cfg: Config, meta: Meta, rng: np.random.Generator) -> TaskSpec:
    """One global cut-off: the rho-quantile of |teacher(x) - y| over a burn-in of fakes at random
    grid labels; one M shared by all labels (it bounds the ratio at every label), or with
    ``subsample.m_per_label`` one M per grid label (the authors'; a label without burn-in starts
    from the overall bound, and M rises as larger ratios appear when ``m_quantile`` is 1)."""
    grid = label_grid(cfg.fakes.n_labels)
    rs_group = (lambda g: g) if cfg.subsample.m_per_label else (lambda g: np.zeros(len(g), np.int64))
    return TaskSpec(len(grid), lambda g: grid[g], lambda out, g: np.abs(out.reshape(-1) - grid[g]),
                    lambda s, g: np.full(len(grid), regression_cutoff(s, cfg.rho)),
                    np.sort(rng.integers(0, len(grid), max(cfg.filter.burn_in, 1))),
                    rs_group, lambda y: meta.unscale(y), slack=1)


SPECS = {"classification": class_spec, "regression": regression_spec}


def generate_and_filter(sample_fn: Sample, score_fn: Score, cutoffs: np.ndarray, target: int, rho: float,
                        max_rounds: int, slack: int = 8, accept: Accept | None = None,
                        accept_rate: float = 1.0, max_draws: int | None = None,
                        round_cap: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns kept images, their scores, their groups, and the number drawn per group.
    Each round asks every unfinished group for its shortfall / (rho x acceptance rate) (+10%,
    + ``slack``); without filtering or subsampling exactly for its shortfall. Subsampling runs
    before the teacher, so rejected fakes cost no teacher pass. At most ``round_cap`` fakes are
    held per round and ``max_draws`` drawn in all (groups then stay short; the caller reports it)."""
    n_groups = len(cutoffs)
    kept_x: list[np.ndarray] = []
    kept_s: list[np.ndarray] = []
    kept_g: list[np.ndarray] = []
    n_kept = np.zeros(n_groups, np.int64)
    generated = np.zeros(n_groups, np.int64)
    rate = max(min(rho, 1.0), 0.05) * max(accept_rate, 0.02) if accept is not None else rho
    shape = np.empty((0,), np.uint8)  # the empty result before any draw
    with Progress(target * n_groups, "make-fakes") as bar:
        for _ in range(max_rounds):
            need = np.maximum(target - n_kept, 0)
            if need.sum() == 0:
                break
            ask = need if rate >= 1.0 else np.where(
                need > 0, np.ceil(need / max(rate, 0.001) * 1.1).astype(np.int64) + slack, 0)
            room = min(round_cap, max_draws - int(generated.sum())) if max_draws else round_cap
            if room <= 0:
                break
            if ask.sum() > room:  # share the room in proportion, at least one per unfinished group
                ask = np.where(need > 0, np.maximum(ask * room // ask.sum(), 1), 0)
                ask = np.minimum(ask, np.maximum(room - (np.cumsum(ask) - ask), 0))  # "at least one" stays in room
            groups = np.repeat(np.arange(n_groups), ask)
            x = sample_fn(groups)
            shape = x[:0]
            generated += ask
            if accept is not None:
                ok = accept(x, groups)
                x, groups = x[ok], groups[ok]
                if len(x) == 0:  # subsampling rejected the whole round: nothing for the teacher to score
                    continue
            score = score_fn(x, groups)
            keep = keep_mask(score, groups, cutoffs, rho)
            # the first `need` kept fakes of each group (groups stay contiguous and sorted)
            csum = np.cumsum(keep)
            counts = np.bincount(groups, minlength=n_groups)
            starts = np.concatenate([[0], np.cumsum(counts)])[:-1]
            before = np.repeat(np.concatenate([[0], csum])[starts], counts)
            sel = keep & (csum - before <= need[groups])
            kept_x.append(x[sel])
            kept_s.append(score[sel])
            kept_g.append(groups[sel])
            n_kept += np.bincount(groups[sel], minlength=n_groups)
            bar.update(int(sel.sum()))
    if not kept_g:  # every round rejected whole (or no room to draw): an empty set, shaped like a sample
        return shape, np.empty(0, np.float32), np.empty(0, np.int64), generated
    order = np.argsort(np.concatenate(kept_g), kind="stable")
    return (np.concatenate(kept_x)[order], np.concatenate(kept_s)[order],
            np.concatenate(kept_g)[order], generated)


def make_fakes(cfg: Config, g: nn.Module, teacher: nn.Module, meta: Meta, seed: int,
               ratio: Ratio | None = None, judge: nn.Module | None = None) -> FakeSet:
    """The fake set of docs/method.md stages 3-6. ``ratio`` (cDR-RS) turns subsampling on. ``judge``
    filters and relabels (``filter.net``; default the teacher); the label scores stay the teacher's.
    Also draws ``quality.n_fakes`` unprocessed fakes with a mask per processing step (``pool``) so
    the stage can measure what each step does."""
    judge = teacher if judge is None else judge
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    fc, fl, rho = cfg.fakes, cfg.filter, cfg.rho
    spec = SPECS[meta.task](cfg, meta, rng)

    def sample_fn(groups: np.ndarray) -> np.ndarray:
        return sample(g, spec.g_labels(groups), cfg.gan.z_dim, gen, fc.batch_size, fc.truncation)

    def score_fn(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
        # the judge sees the fakes as they are: no augmentation (a defect of the reference code)
        return spec.score(predict(judge, x), groups)

    whole = fl.burn_in_from == "whole" and rho < 1.0  # the authors' regression: the set made, then its quantile
    burn_groups = spec.burn_in_groups
    burn_x = sample_fn(burn_groups)
    # the filter's cut-offs come from the raw burn-in (subsampling may accept too few for a quantile); with
    # ``whole`` from the set itself, so the burn-in only gives rejection sampling its first M
    burn_score = np.empty(0, np.float32) if whole else score_fn(burn_x, burn_groups)
    sampler, accept = None, None
    offered, accepted = np.zeros(spec.n_groups, np.int64), np.zeros(spec.n_groups, np.int64)
    if ratio is not None:  # the same burn-in (or subsample.m_burn_in's) gives rejection sampling its first M
        n_rs = int(spec.rs_group(np.arange(spec.n_groups)).max()) + 1
        m_groups, r = m_burn_in(cfg, spec, sample_fn, ratio, burn_x, burn_groups)
        sampler = RejectionSampler(r, spec.rs_group(m_groups), n_rs, np.random.default_rng(seed + 1),
                                   cfg.subsample.m_quantile)

        def accept(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
            ok = sampler.accept(ratio(x, spec.g_labels(groups)), spec.rs_group(groups))
            np.add.at(offered, groups, 1)
            np.add.at(accepted, groups, ok)
            return ok

        sampler.accept(r, spec.rs_group(m_groups))  # a first acceptance-rate estimate
    if sampler is not None and fl.burn_in_from == "subsampled":  # the authors': cut-offs of fakes cDR-RS kept
        burn_score, burn_groups = subsampled_burn_in(cfg, spec, sample_fn, score_fn, ratio, sampler,
                                                     burn_score, burn_groups)
    target = task_of(meta.task).fakes_per_group(fc)
    rate = sampler.acceptance_rate if sampler is not None else 1.0
    budget = cfg.subsample.max_draw_factor * target * spec.n_groups if ratio is not None else None
    made = None
    if whole:
        images, score, group, generated = generate_and_filter(
            sample_fn, score_fn, np.full(spec.n_groups, np.inf), target, 1.0, fl.max_rounds, spec.slack, accept,
            rate, budget)
        made, burn_score, burn_groups = np.bincount(group, minlength=spec.n_groups), score, group
        cutoffs = spec.cutoffs(score, group)
        keep = keep_mask(score, group, cutoffs, rho)
        images, score, group = images[keep], score[keep], group[keep]
    else:
        cutoffs = spec.cutoffs(burn_score, burn_groups)
        images, score, group, generated = generate_and_filter(
            sample_fn, score_fn, cutoffs, target, rho, fl.max_rounds, spec.slack, accept, rate, budget)
    assigned = spec.unscale(spec.g_labels(group))
    labels = assigned
    teacher_out = predict(teacher, images) if len(images) else np.empty((0, 1), np.float32)
    if cfg.adjust_labels:
        judged = teacher_out if judge is teacher or not len(images) else predict(judge, images)
        out = adjust_labels(judged, meta.task)
        labels = out if task_of(meta.task).categorical else meta.unscale(np.clip(out, 0.0, 1.0))
    fs = FakeSet(images, labels, assigned, score, cutoffs, burn_score, burn_groups, group, generated,
                 teacher_out=teacher_out, made=made)
    if sampler is not None:
        fs.acceptance_rate, fs.ratio_max = sampler.acceptance_rate, float(sampler.m.max())
        fs.offered, fs.accepted = offered, accepted
    fs.pool = quality_pool(cfg, spec, sample_fn, teacher, judge, cutoffs, rho, ratio, sampler, rng)
    return fs


def m_burn_in(cfg: Config, spec: TaskSpec, sample_fn: Sample, ratio: Ratio, burn_x: np.ndarray,
              burn_groups: np.ndarray, chunk: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """The groups and density ratios that set rejection sampling's first M: the filter's raw burn-in,
    or with ``subsample.m_burn_in`` that many fresh fakes per group (the authors': 5,000 per class for
    CIFAR-100, 100 per label for UTKFace), drawn and scored a chunk at a time (only ratios are kept)."""
    n = cfg.subsample.m_burn_in
    if n is None:
        return burn_groups, ratio(burn_x, spec.g_labels(burn_groups))
    groups = np.repeat(np.arange(spec.n_groups), n)
    r = [ratio(sample_fn(groups[i:i + chunk]), spec.g_labels(groups[i:i + chunk]))
         for i in range(0, len(groups), chunk)]
    return groups, np.concatenate(r)


def subsampled_burn_in(cfg: Config, spec: TaskSpec, sample_fn: Sample, score_fn: Score, ratio: Ratio,
                       sampler: RejectionSampler, raw_score: np.ndarray, raw_groups: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The scores and groups of a filter burn-in drawn through cDR-RS: ``filter.burn_in`` fakes spread
    over the groups, each accepted by the rejection sampler, scored by the teacher (nothing filtered
    yet). A group the sampler left empty within the draw budget keeps its raw burn-in, said once."""
    per_group = max(cfg.filter.burn_in // spec.n_groups, 1)

    def accept(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
        return sampler.accept(ratio(x, spec.g_labels(groups)), spec.rs_group(groups))

    budget = cfg.subsample.max_draw_factor * per_group * spec.n_groups
    _, score, groups, _ = generate_and_filter(sample_fn, score_fn, np.full(spec.n_groups, np.inf), per_group, 1.0,
                                              cfg.filter.max_rounds, spec.slack, accept, sampler.acceptance_rate,
                                              budget)
    empty = np.setdiff1d(np.unique(raw_groups), groups)
    if len(empty):
        print(f"make-fakes: cDR-RS accepted no burn-in fake for {len(empty)} of {spec.n_groups} groups within "
              "its draw budget: their filter cut-offs come from raw fakes", file=sys.stderr)
        raw = np.isin(raw_groups, empty)
        score, groups = np.concatenate([score, raw_score[raw]]), np.concatenate([groups, raw_groups[raw]])
    return score, groups


def quality_pool(cfg: Config, spec: TaskSpec, sample_fn: Sample, teacher: nn.Module, judge: nn.Module,
                 cutoffs: np.ndarray, rho: float, ratio: Ratio | None, sampler: RejectionSampler | None,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Unprocessed fakes spread evenly over the groups, with the masks of each step applied to
    them alone (subsampling with the final M, filtering with the final cut-offs: the judge's) and
    combined."""
    n = cfg.quality.n_fakes
    groups = np.arange(n, dtype=np.int64) * spec.n_groups // n  # sorted, as even as n allows
    x = sample_fn(groups)
    out = predict(teacher, x)  # kept: the stage's label scores read it instead of a second pass
    judged = out if judge is teacher else predict(judge, x)
    pool = {"images": x, "groups": groups, "labels": spec.unscale(spec.g_labels(groups)),
            "teacher_out": out, "score": spec.score(judged, groups)}
    if ratio is not None and sampler is not None:
        r = ratio(x, spec.g_labels(groups))
        pool["ratio"] = r
        pool["subsampled"] = rng.random(len(r)) <= r / sampler.m[spec.rs_group(groups)]
    if rho < 1.0:
        pool["filtered"] = keep_mask(pool["score"], groups, cutoffs, rho)
    if "subsampled" in pool and "filtered" in pool:
        pool["subsampled_filtered"] = pool["subsampled"] & pool["filtered"]
    return pool

