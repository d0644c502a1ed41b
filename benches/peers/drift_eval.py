"""Drift tests side by side: aiops's five tests and River's ADWIN and PageHinkley on the same
synthetic streams with known change points, in one run.

Streams are sampled every 5 minutes (12 points an hour), 4,000 points each, change at point
2,000, 20 seeds per scenario. For each test: how many changes it caught within 1,000 points,
the median and mean detection delay (in points and hours), and false alarms per hour (alarms
before the change, and anywhere on stationary streams, over the hours watched).

Usage: python benches/peers/drift_eval.py SCAN_BINARY   (see benches/peers/drift)
"""
import subprocess
import sys
import time

import numpy as np
from river import drift

POINTS, CHANGE, SEEDS, PER_HOUR, PERIOD = 4000, 2000, 20, 12, 288
HORIZON = 1000  # a detection later than this many points after the change is a miss


def scenario(name, rng):
    t = np.arange(POINTS)
    after = t >= CHANGE
    noise = rng.normal(0.0, 1.0, POINTS)
    daily = 3.0 * np.sin(2 * np.pi * t / PERIOD)
    if name == "stationary":
        return 10 + noise
    if name == "stationary_seasonal":
        return 10 + daily + noise
    if name == "mean_shift_2sigma":
        return 10 + noise + 2.0 * after
    if name == "mean_shift_1sigma":
        return 10 + noise + 1.0 * after
    if name == "variance_x3":
        return 10 + noise * np.where(after, 3.0, 1.0)
    if name == "seasonality_amplitude_x2":
        return 10 + daily * np.where(after, 2.0, 1.0) + noise
    if name == "slow_trend":
        return 10 + noise + 0.002 * np.maximum(t - CHANGE, 0)
    raise ValueError(name)


SCENARIOS = [
    "stationary",
    "stationary_seasonal",
    "mean_shift_2sigma",
    "mean_shift_1sigma",
    "variance_x3",
    "seasonality_amplitude_x2",
    "slow_trend",
]


def river_alarms(make, values):
    detector = make()
    alarms = []
    for i, x in enumerate(values):
        detector.update(float(x))
        if detector.drift_detected:
            alarms.append(i)
    return alarms


def main():
    scan = sys.argv[1]
    streams = {}
    for name in SCENARIOS:
        for seed in range(SEEDS):
            streams[(name, seed)] = scenario(name, np.random.default_rng(1000 + seed))

    # aiops: every stream through the scan example in one process.
    lines = ["stream,index,value"]
    for (name, seed), values in streams.items():
        key = f"{name}#{seed}"
        lines.extend(f"{key},{i},{float(x)!r}" for i, x in enumerate(values))
    result = subprocess.run(
        [scan], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    )
    alarms = {}  # (detector, name, seed) -> [indices]
    aiops_rate = None
    for line in result.stdout.splitlines()[1:]:
        if line.startswith("#"):
            fields = dict(f.split("=") for f in line[1:].split())
            aiops_rate = float(fields["points"]) / float(fields["seconds"])
            continue
        key, index, test, _, _ = line.split(",")
        name, seed = key.split("#")
        alarms.setdefault((f"aiops {test}", name, int(seed)), []).append(int(index))
    detectors = [f"aiops {t}" for t in ("psi", "ks", "wasserstein", "adwin", "page_hinkley")]
    for (detector, name, seed), found in list(alarms.items()):
        if detector.startswith("aiops"):
            alarms.setdefault(("aiops any", name, seed), []).extend(found)
    detectors.append("aiops any")

    rates = {"aiops (all five)": aiops_rate}
    for label, make in [
        ("river ADWIN", drift.ADWIN),
        ("river PageHinkley", drift.PageHinkley),
    ]:
        detectors.append(label)
        started = time.perf_counter()
        for (name, seed), values in streams.items():
            alarms[(label, name, seed)] = river_alarms(make, values)
        rates[label] = len(streams) * POINTS / (time.perf_counter() - started)

    print(f"{len(SCENARIOS)} scenarios x {SEEDS} seeds, {POINTS} points each (5-minute "
          f"sampling), change at point {CHANGE}; delay in points (hours = points / 12)\n")
    header = f"{'scenario':26} {'test':20} {'caught':>7} {'median delay':>13} {'mean delay':>11} {'false alarms/h':>15}"
    print(header)
    print("-" * len(header))
    for name in SCENARIOS:
        changes = not name.startswith("stationary")
        for detector in detectors:
            delays, false_alarms, hours = [], 0, 0.0
            for seed in range(SEEDS):
                found = sorted(alarms.get((detector, name, seed), []))
                watched = CHANGE if changes else POINTS
                false_alarms += sum(1 for i in found if i < watched)
                hours += watched / PER_HOUR
                late = [i - CHANGE for i in found if CHANGE <= i < CHANGE + HORIZON]
                if changes and late:
                    delays.append(late[0])
            fa = false_alarms / hours
            if changes:
                caught = f"{len(delays)}/{SEEDS}"
                median = f"{np.median(delays):.0f}" if delays else "-"
                mean = f"{np.mean(delays):.0f}" if delays else "-"
            else:
                caught = median = mean = ""
            print(f"{name:26} {detector:20} {caught:>7} {median:>13} {mean:>11} {fa:>15.3f}")
        print()
    print("points/s (one core, time spent in the tests):")
    for label, rate in rates.items():
        print(f"  {label:20} {rate:>12,.0f}")


if __name__ == "__main__":
    main()
