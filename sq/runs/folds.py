"""The time windows of a walk-forward (`--wfo`) and of a purged cross-validation (`--cv`).

Every window is a half-open [lo, hi) range of ns since the epoch over the input's span
[t0, t1) (t0 = the first event's ts, t1 = the last event's ts + 1 ns).

Walk-forward `train=T,test=S[,step=P][,anchored]` (P defaults to S): fold i (i = 0, 1, …)
tests on [t0 + T + iP, t0 + T + iP + S) and trains on the T before it, [t0 + iP, t0 + T + iP)
(anchored: on everything before it, [t0, t0 + T + iP)). Folds go on while the test window
starts before t1; the last one's test window is cut at t1, and dropped when that leaves less
than half of S.

Purged CV: the span is cut into N groups of equal time, [t0 + (t1-t0)·g/N, t0 + (t1-t0)·(g+1)/N)
(integer division). `cpcv:groups=N,test=k` tests on every combination of k groups (C(N, k)
splits, López de Prado's combinatorial purged CV); `kfold:k=N` on each group once. A split
trains on every other group, minus `purge` before each contiguous block of test groups and
`embargo` after it (both default 0), so that no training data lies right before (purge) or
after (embargo) the data it is tested on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sq.core.durations import parse_duration_ns
from sq.core.exits import UsageError

MIN_FOLDS = 2
MAX_SPLITS = 1_000

Span = tuple[int, int]


@dataclass(frozen=True)
class WfoSpec:
    train_ns: int
    test_ns: int
    step_ns: int
    anchored: bool
    text: str


@dataclass(frozen=True)
class CvSpec:
    kind: str  # cpcv | kfold
    groups: int
    test: int
    embargo_ns: int
    purge_ns: int
    text: str


@dataclass(frozen=True)
class Split:
    """One fold or CV split: the training spans (a union for CV) and the test spans."""

    number: int
    train: tuple[Span, ...]
    test: tuple[Span, ...]
    test_groups: tuple[int, ...] = ()

    @property
    def train_ns(self) -> int:
        return sum(hi - lo for lo, hi in self.train)

    @property
    def test_ns(self) -> int:
        return sum(hi - lo for lo, hi in self.test)


def _items(text: str, option: str) -> tuple[dict[str, str], list[str]]:
    keyed, flags = {}, []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise UsageError(f"{option} {text!r}: an empty item")
        k, eq, v = part.partition("=")
        if eq:
            if k.strip().lower() in keyed:
                raise UsageError(f"{option} {text!r}: {k.strip()} is given twice")
            keyed[k.strip().lower()] = v.strip()
        else:
            flags.append(part.lower())
    return keyed, flags


def _duration(text: str, value: str, option: str) -> int:
    ns = parse_duration_ns(value, option=f"{option} {text!r}")
    if ns <= 0:
        raise UsageError(f"{option} {text!r}: {value!r} must be a positive duration")
    return ns


def parse_wfo(text: str) -> WfoSpec:
    """`train=30d,test=7d[,step=7d][,anchored]` → a WfoSpec (a one-line usage error otherwise)."""
    keyed, flags = _items(text, "--wfo")
    unknown = [k for k in keyed if k not in ("train", "test", "step")] + [f for f in flags if f != "anchored"]
    if unknown:
        raise UsageError(f"--wfo {text!r}: unknown item {unknown[0]!r}; expected train=DUR,test=DUR[,step=DUR][,anchored]")
    if "train" not in keyed or "test" not in keyed:
        raise UsageError(f"--wfo {text!r}: needs train= and test=, e.g. train=30d,test=7d")
    train = _duration(text, keyed["train"], "--wfo")
    test = _duration(text, keyed["test"], "--wfo")
    step = _duration(text, keyed["step"], "--wfo") if "step" in keyed else test
    return WfoSpec(train, test, step, "anchored" in flags, text)


def parse_cv(text: str) -> CvSpec:
    """`cpcv:groups=N,test=k[,embargo=DUR][,purge=DUR]` or `kfold:k=N[,embargo=DUR][,purge=DUR]`."""
    kind, colon, rest = text.strip().partition(":")
    kind = kind.lower()
    if kind not in ("cpcv", "kfold") or not colon:
        raise UsageError(f"--cv {text!r}: expected cpcv:groups=6,test=2[,embargo=1h] or kfold:k=5[,embargo=1h]")
    keyed, flags = _items(rest, "--cv")
    allowed = ("groups", "test") if kind == "cpcv" else ("k",)
    unknown = [k for k in keyed if k not in allowed + ("embargo", "purge")] + flags
    if unknown:
        raise UsageError(f"--cv {text!r}: unknown item {unknown[0]!r}; {kind} takes {', '.join(allowed)}, embargo, purge")

    def count(name: str) -> int:
        if name not in keyed:
            raise UsageError(f"--cv {text!r}: needs {name}=N")
        try:
            n = int(keyed[name])
        except ValueError:
            raise UsageError(f"--cv {text!r}: {name} must be a whole number, got {keyed[name]!r}") from None
        if n < 1:
            raise UsageError(f"--cv {text!r}: {name} must be ≥ 1")
        return n

    if kind == "cpcv":
        groups, test = count("groups"), count("test")
        if groups <= test:
            raise UsageError(f"--cv {text!r}: groups ({groups}) must be more than test ({test}): some groups must be left to train on")
    else:
        groups, test = count("k"), 1
        if groups < 2:
            raise UsageError(f"--cv {text!r}: k must be ≥ 2")
    splits = _comb(groups, test)
    if splits > MAX_SPLITS:
        raise UsageError(f"--cv {text!r}: {splits:,} splits; at most {MAX_SPLITS:,}")
    embargo = parse_duration_ns(keyed["embargo"], option=f"--cv {text!r}") if "embargo" in keyed else 0
    purge = parse_duration_ns(keyed["purge"], option=f"--cv {text!r}") if "purge" in keyed else 0
    return CvSpec(kind, groups, test, embargo, purge, text)


def _comb(n: int, k: int) -> int:
    import math

    return math.comb(n, k)


def span_text(t0: int, t1: int) -> str:
    from sq.core.datasets import spans_text

    return f"{spans_text(((t0, t1),))} ({_human(t1 - t0)})"


def _human(ns: int) -> str:
    s = ns / 1e9
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.4g}{unit}"
    return f"{s:.4g}s"


def wfo_splits(spec: WfoSpec, t0: int, t1: int) -> list[Split]:
    """The folds over [t0, t1); a test window longer than the span, or fewer than MIN_FOLDS
    folds, is a usage error naming the span."""
    if spec.test_ns > t1 - t0:
        raise UsageError(f"--wfo {spec.text!r}: the test window ({_human(spec.test_ns)}) is longer than the input's span {span_text(t0, t1)}")
    out = []
    i = 0
    while True:
        test_lo = t0 + spec.train_ns + i * spec.step_ns
        if test_lo >= t1:
            break
        test_hi = min(test_lo + spec.test_ns, t1)
        if 2 * (test_hi - test_lo) < spec.test_ns:
            break
        train_lo = t0 if spec.anchored else test_lo - spec.train_ns
        out.append(Split(i, ((train_lo, test_lo),), ((test_lo, test_hi),)))
        i += 1
    if len(out) < MIN_FOLDS:
        need = spec.train_ns + spec.test_ns + (MIN_FOLDS - 1) * spec.step_ns
        raise UsageError(f"--wfo {spec.text!r}: {len(out)} fold(s) fit in the input's span {span_text(t0, t1)}; at least {MIN_FOLDS} "
                         f"need {_human(need)} (train + test + step)")
    return out


def groups(n: int, t0: int, t1: int) -> list[Span]:
    """N groups of equal time over [t0, t1), in order."""
    bounds = [t0 + (t1 - t0) * g // n for g in range(n + 1)]
    return [(bounds[g], bounds[g + 1]) for g in range(n)]


def _blocks(spans: list[Span]) -> list[Span]:
    """Adjacent spans merged."""
    out: list[list[int]] = []
    for lo, hi in sorted(spans):
        if out and out[-1][1] >= lo:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def cv_splits(spec: CvSpec, t0: int, t1: int) -> list[Split]:
    """Every split of the purged CV over [t0, t1), combinations in lexicographic order."""
    gs = groups(spec.groups, t0, t1)
    if any(hi <= lo for lo, hi in gs):
        raise UsageError(f"--cv {spec.text!r}: the input's span {span_text(t0, t1)} is too short for {spec.groups} groups")
    out = []
    for n, combo in enumerate(itertools.combinations(range(spec.groups), spec.test)):
        test = _blocks([gs[g] for g in combo])
        train = _blocks([gs[g] for g in range(spec.groups) if g not in combo])
        for lo, hi in test:  # purge before, embargo after each contiguous test block
            cut = (lo - spec.purge_ns, hi + spec.embargo_ns)
            train = [piece for a, b in train for piece in ((a, min(b, cut[0])), (max(a, cut[1]), b)) if piece[1] > piece[0]]
        if not train:
            raise UsageError(f"--cv {spec.text!r}: split {n} has no training data left after purge and embargo "
                             f"(the input's span is {span_text(t0, t1)})")
        out.append(Split(n, tuple(_blocks(train)), tuple(test), tuple(combo)))
    return out
