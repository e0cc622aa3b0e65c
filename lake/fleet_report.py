"""The fleet report over a powerd lake, as a Spark job.

    spark-submit lake/fleet_report.py LAKE [--start T] [--end T]
                 [--step 15m|1h|1d] [--top N]

LAKE is the directory `powerd export` / `powerd serve --lake` writes
(`LAKE/date=YYYY-MM-DD/<node>.parquet`, one file per node and UTC day; the
contract is in lake/README.md). A local path is made absolute, so every
executor reads the same directory; anything with a scheme (`hdfs://`,
`s3a://`, `file://`) is used as given.

Prints ONE JSON document on stdout, one line:

    {"fleet": <the body of GET /data/fleet>, "topusers": <the body of GET /topusers>}

each exactly in the API's shape and printing (README.md, "GET /data/fleet"
and "GET /topusers"), as the union of every node in the lake would answer
it. Spark's own logging goes to stderr, so stdout is that line alone.

The window follows the API:
- `--start`/`--end` take RFC 3339 (`2018-08-24T00:00:00Z`, offsets,
  fractions, `t`/`z`/space) or the dashed form (`2018-08-24T00-00-00Z`);
  offsets are converted to UTC and fractional seconds truncated.
- A bucket belongs to the window when it starts inside `[start, end)`.
- An omitted edge means all stored time; the answer's `start`/`end` then show
  the stored range of the whole lake (first bucket, end of the last bucket),
  `null` when the lake holds nothing.
- `start` after `end` is an error (exit 2, nothing on stdout), like the
  API's 400; `start` equal to `end` is an empty window. A LAKE that does not
  exist is an error too (exit 2); an empty one answers with nothing stored.
- `--step` defaults to `15m`, `--top` to 3. Unlike the API (1 to 1000),
  `--top` takes any N >= 1: no response size to bound here.

Fleet: per interval aligned to UTC, `sum` is the exact sum of the window's
buckets in it, `ships` the distinct ships with a bucket there (partial
buckets included), `avg` the sum over the ships rounded half up to 9
decimals; intervals without data are left out; an interval cut by the window
is labelled by its aligned start and holds only the buckets inside it (as
the API does). Top users: the N ships with the most energy in the window,
descending, ties by ship id.

Exactness: every `kwh` is a decimal of at most 9 places stored as the double
nearest to it, so `cast(kwh as decimal(38,9))` recovers it exactly, and
Spark sums decimals exactly (and fails rather than overflow); the sums are
then the API's integers of 10^-9 kWh. Numbers print as the API prints
them: integer digits, then up to 9 fraction digits without trailing zeros.

Only the `date=` partitions the window can touch are read (a filter on the
partition column `date`: Spark prunes the other days before reading any
file); with an open edge that is every partition from the first, or up to
the last, and the stored range comes from the first and the last day alone.
`_powerd/` (exporter state) and files not named `*.parquet` (an exporter's
temporary files) are never read. Each (ship, bucket) is expected in one
node's file only, as when nodes hold disjoint ships.
"""

import argparse
import datetime as dt
import decimal
import json
import os
import re
import sys
import time

STEPS = {"15m": 900, "1h": 3600, "1d": 86400}
BUCKET_S = 900
DAY_S = 86400
# Decimal arithmetic that raises instead of rounding: every conversion here
# must be exact.
EXACT = decimal.Context(prec=100, traps=[decimal.Inexact, decimal.Overflow])
NANO = 10**9


class UsageError(Exception):
    pass


# --- timestamps, as powerd's wire/timestamp.rs reads and writes them --------

_TIMESTAMP = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt ]"
    r"(?P<h>\d{2})(?P<sep>[:-])(?P<mi>\d{2})(?P=sep)(?P<s>\d{2})"
    r"(?:\.\d+)?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>\d{2})(?P<osep>[:-])(?P<om>\d{2}))",
    re.ASCII,
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def parse_timestamp(text):
    """Whole seconds since the epoch (UTC, fraction truncated)."""
    m = _TIMESTAMP.fullmatch(text)
    if not m or (m["osep"] == "-" and m["sep"] != "-"):
        raise UsageError(f"{text!r} is not an RFC 3339 timestamp")
    year, month, day = int(m["y"]), int(m["mo"]), int(m["d"])
    hour, minute, second = int(m["h"]), int(m["mi"]), int(m["s"])
    if second == 60:
        raise UsageError(f"{text!r}: leap second 60 is not supported")
    try:
        local = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc)
    except ValueError as why:
        raise UsageError(f"{text!r} is not an RFC 3339 timestamp ({why})") from None
    offset_s = 0
    if not m["z"]:
        oh, om = int(m["oh"]), int(m["om"])
        if oh > 23 or om > 59:
            raise UsageError(f"{text!r}: UTC offset out of range")
        offset_s = (oh * 3600 + om * 60) * (-1 if m["sign"] == "-" else 1)
    # A fraction only adds to the written seconds: dropping it is a floor.
    seconds = (local - _EPOCH) // dt.timedelta(seconds=1) - offset_s
    first, end = -62135596800, 253402300800  # 0001-01-01, 10000-01-01
    if not first <= seconds < end:
        raise UsageError(f"{text!r} is out of range once its UTC offset is applied")
    return seconds


def format_timestamp(seconds):
    t = _EPOCH + dt.timedelta(seconds=seconds)
    # By hand: strftime does not zero-pad years below 1000 everywhere.
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"
    )


def quoted_timestamp(seconds):
    return "null" if seconds is None else f'"{format_timestamp(seconds)}"'


def utc_date(seconds):
    return (_EPOCH + dt.timedelta(seconds=seconds)).date()


# --- numbers, as powerd's wire/number.rs prints energies ---------------------


def nano_of(value):
    """A decimal(38,9) from Spark as an integer of 10^-9 kWh, exactly."""
    return int(EXACT.scaleb(value, 9))


def format_nanokwh(nano):
    """Integer digits, then up to 9 fraction digits without trailing zeros."""
    sign = "-" if nano < 0 else ""
    whole, fraction = divmod(abs(nano), NANO)
    if fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:09d}".rstrip("0")


def mean_nanokwh(sum_nano, ships):
    # The API's rounding: to the nearest 10^-9 kWh, half up (sums are >= 0).
    ships = max(ships, 1)
    return (2 * sum_nano + ships) // (2 * ships)


# --- the question ------------------------------------------------------------


def ceil_bucket_s(seconds):
    """The start of the first bucket starting at or after `seconds`."""
    return -(-seconds // BUCKET_S) * BUCKET_S


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="fleet_report.py",
        description="GET /data/fleet and GET /topusers over a powerd lake, as one JSON document.",
    )
    parser.add_argument("lake", metavar="LAKE", help="the lake directory (LAKE/date=YYYY-MM-DD/<node>.parquet)")
    parser.add_argument("--start", help="RFC 3339; omitted: from the first stored bucket")
    parser.add_argument("--end", help="RFC 3339, exclusive; omitted: to the end of the stored data")
    parser.add_argument("--step", default="15m", choices=sorted(STEPS), help="interval of the fleet view (default 15m)")
    parser.add_argument("--top", type=int, default=3, metavar="N", help="how many top users (default 3)")
    args = parser.parse_args(argv)
    start_s = parse_timestamp(args.start) if args.start else None
    end_s = parse_timestamp(args.end) if args.end else None
    if start_s is not None and end_s is not None and start_s > end_s:
        raise UsageError(
            f"--start is after --end ({format_timestamp(start_s)} > {format_timestamp(end_s)})"
        )
    if args.top < 1:
        raise UsageError(f"--top {args.top}: expected a whole number of at least 1")
    return args, start_s, end_s


def lake_uri(lake):
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", lake):
        return lake.rstrip("/")
    return "file://" + os.path.abspath(lake)


def stored_dates(spark, lake):
    """The UTC days that have at least one node file, from one listing."""
    jvm = spark.sparkContext._jvm
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    root = jvm.org.apache.hadoop.fs.Path(lake)
    fs = root.getFileSystem(hadoop_conf)
    # An empty lake is a lake with nothing stored; a missing one is a typo,
    # not an empty answer.
    if not fs.exists(root):
        raise UsageError(f"the lake {lake} does not exist")
    pattern = jvm.org.apache.hadoop.fs.Path(lake + "/date=*/*.parquet")
    statuses = fs.globStatus(pattern) or []
    dates = set()
    for status in statuses:
        m = re.fullmatch(r"date=(\d{4}-\d{2}-\d{2})", status.getPath().getParent().getName())
        if m and status.isFile():
            dates.add(dt.date.fromisoformat(m[1]))
    return sorted(dates)


def run(spark, args, start_s, end_s, log):
    from pyspark.sql import functions as F

    lake = lake_uri(args.lake)
    step_s = STEPS[args.step]
    dates = stored_dates(spark, lake)
    log(f"{len(dates)} day(s) in the lake {lake}")

    # Buckets in the window start in [first_s, end_bucket_s).
    first_s = ceil_bucket_s(start_s) if start_s is not None else None
    end_bucket_s = ceil_bucket_s(end_s) if end_s is not None else None
    empty = not dates or (
        first_s is not None and end_bucket_s is not None and first_s >= end_bucket_s
    )

    fleet_rows, top_rows, stored = [], [], None
    if dates:
        # Hive partition discovery turns `date=` into a date column;
        # `_powerd/` is skipped (a leading `_`), temporary files by the glob.
        lake_df = (
            spark.read.option("basePath", lake)
            .option("pathGlobFilter", "*.parquet")
            .parquet(lake)
        )
        buckets = lake_df.select(
            # UINT64 arrives as decimal(20,0); a lake written by Spark itself
            # has a signed long. One type for both.
            F.col("spaceship_id").cast("decimal(20,0)").alias("ship"),
            F.col("datetime"),
            F.col("kwh").cast("decimal(38,9)").alias("kwh"),
            F.col("date"),
        )
        if start_s is None or end_s is None:
            # The stored range of the whole lake: the first and the last day
            # that have files, nothing in between.
            edge_days = [F.lit(dates[0]), F.lit(dates[-1])]
            row = (
                buckets.where(F.col("date").isin(*edge_days))
                .agg(
                    F.min(F.unix_seconds("datetime")).alias("first"),
                    F.max(F.unix_seconds("datetime")).alias("last"),
                )
                .collect()[0]
            )
            if row["first"] is not None:
                stored = (row["first"], row["last"] + BUCKET_S)
    if not empty:
        wanted = [
            day
            for day in dates
            if (first_s is None or day >= utc_date(first_s))
            and (end_bucket_s is None or day <= utc_date(end_bucket_s - 1))
        ]
        log(f"the window needs {len(wanted)} of them" + (f": {wanted[0]} to {wanted[-1]}" if wanted else ""))
        # No day of the window has a file: nothing to ask Spark.
        empty = not wanted
    if not empty:
        window = buckets
        if first_s is not None:
            window = window.where(F.col("date") >= F.lit(utc_date(first_s))).where(
                F.col("datetime") >= F.timestamp_seconds(F.lit(first_s))
            )
        if end_bucket_s is not None:
            window = window.where(F.col("date") <= F.lit(utc_date(end_bucket_s - 1))).where(
                F.col("datetime") < F.timestamp_seconds(F.lit(end_bucket_s))
            )
        seconds = F.unix_seconds("datetime")
        fleet_rows = (
            window.groupBy((seconds - F.pmod(seconds, F.lit(step_s))).alias("interval"))
            .agg(F.sum("kwh").alias("sum"), F.countDistinct("ship").alias("ships"))
            .orderBy("interval")
            .collect()
        )
        top_rows = (
            window.groupBy("ship")
            .agg(F.sum("kwh").alias("consumption"))
            .orderBy(F.desc("consumption"), F.asc("ship"))
            .limit(args.top)
            .collect()
        )

    shown_start = start_s if start_s is not None else (stored[0] if stored else None)
    shown_end = end_s if end_s is not None else (stored[1] if stored else None)
    return render(args.step, shown_start, shown_end, fleet_rows, top_rows)


def render(step, shown_start, shown_end, fleet_rows, top_rows):
    start, end = quoted_timestamp(shown_start), quoted_timestamp(shown_end)
    items = []
    for row in fleet_rows:
        total = nano_of(row["sum"])
        items.append(
            f'{{"datetime":"{format_timestamp(row["interval"])}",'
            f'"sum":{format_nanokwh(total)},'
            f'"avg":{format_nanokwh(mean_nanokwh(total, row["ships"]))},'
            f'"ships":{row["ships"]}}}'
        )
    fleet = (
        f'{{"units":"kWh","start":{start},"end":{end},"step":"{step}",'
        f'"data":[{",".join(items)}]}}'
    )
    ships = ",".join(
        f'{{"spaceship_id":{int(row["ship"])},'
        f'"consumption":{format_nanokwh(nano_of(row["consumption"]))}}}'
        for row in top_rows
    )
    topusers = f'{{"start":{start},"end":{end},"ships":[{ships}]}}'
    document = f'{{"fleet":{fleet},"topusers":{topusers}}}'
    json.loads(document)  # by hand, so make sure it is JSON before printing
    return document


class JvmStderr:
    """sys.stderr for a driver started by spark-submit.

    spark-submit runs the Python driver with its stderr merged into its
    stdout (PythonRunner's redirectErrorStream), so anything Python writes
    to stderr — our log lines, warnings, a traceback — would land in the
    JSON on stdout. This writes to the JVM's own stderr instead, through
    the py4j gateway spark-submit already opened; should that fail (the
    gateway gone at exit), to the real stderr.
    """

    def __init__(self, err, fallback):
        self._err, self._fallback = err, fallback

    def write(self, text):
        try:
            self._err.print(text)
            self._err.flush()
        except Exception:
            self._fallback.write(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def keep_stderr_off_stdout():
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return  # plain python: stderr is stderr
    from pyspark.java_gateway import launch_gateway

    sys.stderr = JvmStderr(launch_gateway().jvm.System.err, sys.stderr)


def main(argv):
    keep_stderr_off_stdout()
    try:
        args, start_s, end_s = parse_args(argv)
    except UsageError as why:
        print(f"fleet_report.py: {why}", file=sys.stderr)
        return 2

    def log(message):
        print(f"fleet_report.py: {message}", file=sys.stderr, flush=True)

    from pyspark.sql import SparkSession

    began = time.monotonic()
    spark = (
        SparkSession.builder.appName("powerd fleet report")
        # Bucket times are UTC; partition dates are UTC days.
        .config("spark.sql.session.timeZone", "UTC")
        # Exact decimal sums fail on overflow instead of turning into null.
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    try:
        document = run(spark, args, start_s, end_s, log)
    except UsageError as why:
        print(f"fleet_report.py: {why}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    sys.stdout.write(document + "\n")
    sys.stdout.flush()
    log(f"done in {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
