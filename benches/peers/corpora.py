"""Maintained peer detectors from PyPI over a directory of labelled corpora (issue 17).

Usage (normally through the wrapper benches/peers/corpora, which makes the virtualenvs and runs
merlion-default in its own one):
    benches/peers/corpora IN OUT [PEER ...] [--skip PEER=CORPUS ...]
    VENV/bin/python benches/peers/corpora.py IN OUT [PEER ...] [--skip PEER=CORPUS ...]

Input: IN/<corpus>/<series>.csv with the header `timestamp,value,label` (the layout that
scripts/fetch-corpora writes). Only the `value` column is read: detectors never see the label
(nor the timestamp, which none of these peers uses).

Output, per peer:
    OUT/<peer>/<corpus>/<series>.csv   header `score`, exactly one row per input row, in order;
                                       higher = more anomalous; finite and >= 0; 0 while the
                                       detector warms up
    OUT/<peer>/timing.json             {"points": N, "seconds": S}: CPU seconds
                                       (time.process_time) spent in the scoring loops only, not in
                                       reading, writing or one-off JIT compilation
With no peer named, all peers run, one after the other in this process, on one thread (the
BLAS, OpenMP and numba thread counts are pinned to 1 below, before numpy is imported; the JVM
that Merlion starts is told it has one CPU).

Every peer is strictly streaming unless its comment says otherwise: each point is scored before
it is learnt, and a score depends only on the points before it (and the point itself).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
# Merlion's random cut forest runs in an in-process JVM: one GC thread, one CPU as far as it knows.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:+UseSerialGC -XX:ActiveProcessorCount=1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Peers. Each factory returns a fresh scorer for one series: a function from the list of values
# to the list of scores (one per value). Streaming peers build it from a per-point `step`.


def streaming(make_step):
    """A series scorer from a factory of per-point step functions (score, then learn)."""

    def score_series(values):
        step = make_step()
        return [step(v) for v in values]

    return score_series


def zscore_100():
    """Reference baseline: |x - mean| / std over the previous 100 points (population std). 0 while
    fewer than 2 points precede it, and 0 when the window's std is 0."""
    window = deque(maxlen=100)

    def step(x):
        n = len(window)
        score = 0.0
        if n >= 2:
            mean = sum(window) / n
            var = sum((v - mean) ** 2 for v in window) / n
            if var > 0.0:
                score = abs(x - mean) / math.sqrt(var)
        window.append(x)
        return score

    return step


def river_hst():
    """river 0.26 `anomaly.HalfSpaceTrees` with its documented defaults (n_trees=10, height=8,
    window_size=250; seed fixed at 42 as in the documentation's example), preceded by
    `preprocessing.MinMaxScaler` as that example does, on the single feature {"x": value}.
    Docs: https://riverml.xyz/latest/api/anomaly/HalfSpaceTrees/ (river 0.26.1 API reference).
    score_one then learn_one, the order River documents for progressive validation; 0 for the
    first window_size points, before the trees have a reference window (River scores them 1)."""
    from river import anomaly, compose, preprocessing

    hst = anomaly.HalfSpaceTrees(seed=42)
    model = compose.Pipeline(preprocessing.MinMaxScaler(), hst)
    learnt = 0

    def step(x):
        nonlocal learnt
        features = {"x": x}
        # Until the first window of `window_size` points has been learnt the trees have no
        # reference mass and score every point 1: not warmed up, so 0 here.
        score = model.score_one(features) if learnt >= hst.window_size else 0.0
        model.learn_one(features)
        learnt += 1
        return score

    return step


def pysad_rrcf():
    """pysad 0.7 `models.RobustRandomCutForest` (Guha et al. 2016; trees after rrcf 0.4.4), with
    4 trees over shingles of 4 consecutive values (the paper's shingle for its synthetic stream;
    4 trees rather than the default 100 to keep pure-Python tree walks affordable), the
    documented defaults otherwise (tree_size=256, time_decay=0), seeded.
    Docs: https://pysad.readthedocs.io/en/latest/generated/pysad.models.RobustRandomCutForest.html
    (and the class docstring). score_partial then fit_partial; 0 for the first 3 points, before
    the first shingle is full.
    Score: collusive displacement averaged over the trees."""
    import numpy as np
    from pysad.models import RobustRandomCutForest

    model = RobustRandomCutForest(num_trees=4, shingle_size=4, random_state=42)

    def step(x):
        point = np.array([x], dtype=np.float64)
        score = model.score_partial(point)
        model.fit_partial(point)
        return score

    return step


STUMPY_M = 32  # subsequence length: one fixed, documented choice for every series (not tuned)
STUMPY_WARMUP = 4 * STUMPY_M  # points buffered (scored 0) before the first matrix profile


def stumpy_stumpi():
    """stumpy 1.14 `stumpi` (incremental z-normalised matrix profile, STAMPI), egress=False so the
    whole history is kept, window m = 32. The first 4*m points are buffered and scored 0, then
    `stumpi(T[:4m], m, egress=False)` is built and every later point is appended with `update`;
    the score of a point is the newest matrix-profile value after its update: the distance from
    the subsequence ending at that point to its nearest neighbour in the past (a discord score;
    inf, when no non-trivial match exists yet, becomes 0). No look-ahead: the profile of the
    newest subsequence only involves earlier subsequences. Per-point cost grows with the history
    (O(n) per update, O(n^2) per series).
    Docs: https://stumpy.readthedocs.io/en/latest/api.html#stumpy.stumpi and the tutorial
    https://stumpy.readthedocs.io/en/latest/Tutorial_Matrix_Profiles_For_Streaming_Data.html"""
    import warnings

    import numpy as np
    import stumpy

    # stumpy warns when many profile values are ~0 (flat or exactly repeating stretches); the
    # values are still right, so keep the output readable.
    warnings.filterwarnings("ignore", message="A large number of values", category=UserWarning)
    buffer = []
    stream = None

    def step(x):
        nonlocal stream
        if stream is None:
            buffer.append(x)
            if len(buffer) < STUMPY_WARMUP:
                return 0.0
            stream = stumpy.stumpi(np.array(buffer, dtype=np.float64), m=STUMPY_M, egress=False)
            return 0.0
        stream.update(x)
        return float(stream.P_[-1])

    return step


MERLION_TRAIN_FRACTION = 0.3


def merlion_default():
    """Salesforce Merlion 2.0 `DefaultDetector` (univariate: an ensemble of AutoETS, a random cut
    forest with online updates and ZMS, with Merlion's calibration and threshold post-rule),
    default config. NOT strictly streaming: it is trained on the first 30 % of each series
    (scored 0 there), then `get_anomaly_score` scores the remaining 70 % as one batch (the ETS
    part forecasts that whole stretch from the end of training; the forest updates online). The
    score is |ensemble score|, the members' calibrated (z-score-like) scores combined, before
    Merlion's alarm post-rule: `get_anomaly_label` applies that rule (AggregateAlarms, threshold
    3, alarms suppressed for 120 minutes after one), which leaves almost every point 0 and gives
    a threshold sweep nothing to rank. The series is given a regular 1-minute index, so no
    resampling changes the row count (timestamps are not read).
    Docs: https://opensource.salesforce.com/Merlion/latest/merlion.models.html#merlion.models.defaults.DefaultDetector
    and the anomaly-detection quick start of the same documentation.
    Needs numpy < 2 and pandas < 2 (so its own virtualenv) and a Java runtime (the forest is
    the AWS Java implementation, driven through JPype)."""
    import logging

    import numpy as np
    import pandas as pd
    from merlion.models.defaults import DefaultDetector, DefaultDetectorConfig
    from merlion.utils import TimeSeries

    import warnings

    logging.getLogger("merlion").setLevel(logging.ERROR)
    # statsmodels warns (divide by zero, convergence) on flat or short stretches; the ensemble
    # copes (a part that fails is left out by Merlion), so keep the output readable.
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    warnings.filterwarnings("ignore", module="statsmodels")

    def score_series(values):
        n = len(values)
        k = int(MERLION_TRAIN_FRACTION * n)
        scores = [0.0] * n
        if n - k < 1 or k < 10:
            return scores  # too short to train on: never warmed up
        index = pd.date_range("2024-01-01", periods=n, freq="min")
        series = pd.Series(np.asarray(values, dtype=np.float64), index=index, name="value")
        train = TimeSeries.from_pd(series.iloc[:k])
        test = TimeSeries.from_pd(series.iloc[k:])
        model = DefaultDetector(DefaultDetectorConfig())
        model.train(train)
        anomaly = model.get_anomaly_score(test, time_series_prev=train).to_pd().iloc[:, 0]
        scores[k:] = anomaly.reindex(series.index[k:]).fillna(0.0).abs().tolist()
        return scores

    return score_series


PEERS = {
    "zscore-100": lambda: streaming(zscore_100),
    "river-hst": lambda: streaming(river_hst),
    "pysad-rrcf": lambda: streaming(pysad_rrcf),
    "stumpy-stumpi": lambda: streaming(stumpy_stumpi),
    "merlion-default": merlion_default,
}


def warm_up(peer):
    """Runs a peer once on a small synthetic series outside the timed loops, so that one-off
    imports and numba JIT compilation are not counted as detector time."""
    values = [math.sin(i / 5.0) + 0.01 * (i % 7) for i in range(300)]
    PEERS[peer]()(values)


# ---------------------------------------------------------------------------------------------
# Corpus I/O


def series_paths(root):
    """(corpus, series file name, path) for every IN/<corpus>/<series>.csv, sorted."""
    found = []
    for corpus in sorted(os.listdir(root)):
        directory = os.path.join(root, corpus)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if name.endswith(".csv"):
                found.append((corpus, name, os.path.join(directory, name)))
    return found


def read_values(path):
    """The `value` column only (the label is never read)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header[:2] != ["timestamp", "value"]:
            raise SystemExit(f"{path}: expected the header timestamp,value,label, found {header}")
        return [float(row[1]) for row in reader if row]


def clean(score):
    """Scores as written: finite and non-negative (anything else becomes 0 and is counted)."""
    score = float(score)
    if math.isfinite(score) and score >= 0.0:
        return score, False
    return 0.0, True


def run_peer(peer, series, out, skip):
    points = 0
    seconds = 0.0
    cleaned = 0
    skipped = []
    for corpus, name, path in series:
        if corpus in skip:
            skipped.append(f"{corpus}/{name}")
            continue
        values = read_values(path)
        score_series = PEERS[peer]()
        start = time.process_time()
        scores = score_series(values)
        seconds += time.process_time() - start
        if len(scores) != len(values):
            raise SystemExit(f"{peer} returned {len(scores)} scores for {len(values)} rows of {path}")
        points += len(values)
        directory = os.path.join(out, peer, corpus)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, name), "w") as f:
            f.write("score\n")
            for s in scores:
                s, bad = clean(s)
                cleaned += bad
                f.write(f"{s!r}\n")
    with open(os.path.join(out, peer, "timing.json"), "w") as f:
        json.dump({"points": points, "seconds": round(seconds, 3)}, f)
        f.write("\n")
    rate = points / seconds if seconds > 0 else float("inf")
    note = f" ({cleaned} non-finite or negative scores written as 0)" if cleaned else ""
    if skipped:
        note += f" (skipped {len(skipped)} series of {', '.join(sorted(skip))})"
    print(f"{peer:<16} {points:>9} points {seconds:>9.2f} s {rate:>11.0f} points/s{note}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", metavar="IN", help="IN/<corpus>/<series>.csv")
    parser.add_argument("output", metavar="OUT", help="scores go to OUT/<peer>/<corpus>/<series>.csv")
    parser.add_argument("peers", nargs="*", metavar="PEER", help=f"default: all of {', '.join(PEERS)}")
    parser.add_argument("--skip", action="append", default=[], metavar="PEER=CORPUS",
                        help="leave a corpus out for one peer (for peers too slow on a large corpus)")
    args = parser.parse_args()
    peers = args.peers or list(PEERS)
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise SystemExit(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
    skips = {}
    for item in args.skip:
        peer, _, corpus = item.partition("=")
        skips.setdefault(peer, set()).add(corpus)
    series = series_paths(args.input)
    if not series:
        raise SystemExit(f"no IN/<corpus>/<series>.csv under {args.input}")
    print(f"{len(series)} series in {len({c for c, _, _ in series})} corpora", flush=True)
    for peer in peers:
        warm_up(peer)
        run_peer(peer, series, args.output, skips.get(peer, set()))


if __name__ == "__main__":
    sys.exit(main())
