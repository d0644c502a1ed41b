"""River's online anomaly detectors over the NAB corpus, written in NAB's result layout.

Run by benches/peers/compare (which also scores the results and runs aiops on the same data);
by hand: python river_nab.py DATA_DIR OUT_DIR. Prints one line per detector: name, points,
seconds spent in the detector (score_one + learn_one) and points/s.

Each detector sees one series at a time, point by point: score_one on the value, then
learn_one, the order River documents for progressive validation, so there is no look-ahead.
Scores are mapped into NAB's [0, 1] range monotonically (NAB's threshold sweep only cares
about order): unbounded scores s become s / (s + 3).
"""

import csv
import os
import sys
import time

from river import anomaly, compose, preprocessing, stats, utils


def unit(score):
    score = max(float(score), 0.0)
    return score / (score + 3.0)


def half_space_trees():
    # River's documented recipe for features of unknown range: scale to [0, 1] first. The
    # window of recent values gives the trees some context, as our isolation forest has.
    model = compose.Pipeline(
        preprocessing.MinMaxScaler(),
        anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=250, seed=42),
    )
    recent = []

    def step(value):
        recent.append(value)
        del recent[:-4]
        features = {f"lag{i}": v for i, v in enumerate(reversed(recent))}
        for i in range(len(recent), 4):
            features[f"lag{i}"] = value
        score = model.score_one(features)
        model.learn_one(features)
        return score

    return step


def z_score():
    model = anomaly.StandardAbsoluteDeviation(sub_stat=stats.Mean())

    def step(value):
        score = model.score_one(None, value)
        model.learn_one(None, value)
        return unit(score)

    return step


def rolling_z_score(window=1000):
    # The same scorer over a rolling window, so it follows level changes.
    model = anomaly.StandardAbsoluteDeviation(
        sub_stat=utils.Rolling(stats.Mean, window_size=window)
    )
    model.variance = utils.Rolling(stats.Var, window_size=window)

    def step(value):
        score = model.score_one(None, value) if model.variance.n > 1 else 0.0
        model.learn_one(None, value)
        return unit(score)

    return step


def gaussian(window=1000):
    model = anomaly.GaussianScorer(window_size=window, grace_period=100)

    def step(value):
        score = model.score_one(None, value)
        model.learn_one(None, value)
        return float(score)

    return step


def quantile(q=0.995):
    # QuantileFilter flags scores above the running q-quantile of past scores: a 0/1 output.
    model = anomaly.QuantileFilter(anomaly.StandardAbsoluteDeviation(sub_stat=stats.Mean()), q=q)

    def step(value):
        score = model.score_one(None, value)
        flagged = model.classify(score)
        model.learn_one(None, value)
        return 1.0 if flagged else 0.0

    return step


DETECTORS = {
    "river_hst": half_space_trees,
    "river_zscore": z_score,
    "river_rolling_zscore": rolling_z_score,
    "river_gaussian": gaussian,
    "river_quantile": quantile,
}


def series_files(data):
    root = os.path.join(data, "data")
    for category in sorted(os.listdir(root)):
        folder = os.path.join(root, category)
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                if name.endswith(".csv"):
                    yield category, name


def main():
    data, out = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or list(DETECTORS)
    files = list(series_files(data))
    for name in names:
        points, spent = 0, 0.0
        for category, file in files:
            with open(os.path.join(data, "data", category, file), newline="") as f:
                rows = list(csv.DictReader(f))
            step = DETECTORS[name]()
            scores = []
            started = time.perf_counter()
            for row in rows:
                scores.append(step(float(row["value"])))
            spent += time.perf_counter() - started
            points += len(rows)
            folder = os.path.join(out, name, category)
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{name}_{file}"), "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["timestamp", "value", "anomaly_score", "label"])
                for row, score in zip(rows, scores):
                    writer.writerow([row["timestamp"], row["value"], repr(score), 0])
        print(f"{name} {points} {spent:.3f} {points / spent:.0f}", flush=True)


if __name__ == "__main__":
    main()
