#!/usr/bin/env bash
# The Spark job over a real lake on a real Spark cluster (issue 15, item 2).
#
# Starts two powerd nodes on loopback with disjoint ship sets, writes a
# fleet through their APIs (ci/spark_e2e.py: 120 ships over five days,
# 15-minute, hourly and 5-minute readings, partial buckets, zeros, ties,
# ids beyond 2^63 with buckets of up to 2 million kWh, where summing doubles
# would be off), exports both into ONE lake with `powerd export` while they
# serve, rewrites parts of the fleet and exports again (files replaced).
# Then starts a Spark standalone cluster on 127.0.0.1 — a master and two
# workers of one core each — and runs
#   spark-submit --master spark://127.0.0.1:PORT lake/fleet_report.py LAKE ...
# over several windows (open, aligned, unaligned, with UTC offsets, empty;
# each step; top N from 1 to more than the fleet). Every answer must equal
# the two nodes' API answers combined, numbers compared as exact decimals
# and spelled the API's way; any difference fails with a diff.
#
# Needs java (17+) and python3 with venv; pyspark (pinned) is installed into
# a virtualenv under the cargo target directory, once. Prints each Spark
# job's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."

PYSPARK_VERSION=4.3.0
ROOT=$(pwd)
# TARGET_DIR and pinned_venv.
. ci/venv.sh
VENV="$TARGET_DIR/spark-venv"
began=$(date +%s)

if ! command -v java >/dev/null 2>&1; then
    echo "spark.sh: java is required (Java 17 or newer; Debian: apt-get install openjdk-17-jre-headless)" >&2
    exit 1
fi
JAVA_MAJOR=$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n1)
if [ "${JAVA_MAJOR:-0}" -lt 17 ]; then
    echo "spark.sh: Spark 4 needs Java 17 or newer; java here is: $(java -version 2>&1 | head -n1)" >&2
    exit 1
fi

# --- pyspark, pinned, in its own virtualenv ----------------------------------
pinned_venv spark.sh "$VENV" pyspark "$PYSPARK_VERSION"
PY="$VENV/bin/python"
SPARK_HOME=$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
export SPARK_HOME
# Everything Spark opens stays on loopback; the executors run the venv's
# python should the job ever need one.
export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=127.0.0.1
export PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY"
# Master and workers need little heap (default 1 GiB each).
export SPARK_DAEMON_MEMORY=256m
# Every JVM here lives for seconds on a few MB of data, on two shared
# cores: C2's background compiles only compete with the work (C1 alone
# made a run 35 s -> 19 s here), and one GC thread is enough.
JVM_OPTIONS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
export SPARK_DAEMON_JAVA_OPTS=$JVM_OPTIONS

# --- two powerd nodes --------------------------------------------------------
cargo build --release --quiet --bin powerd
POWERD="$TARGET_DIR/release/powerd"
mkdir -p "$TARGET_DIR/spark-run"
WORK=$(mktemp -d "$TARGET_DIR/spark-run/run.XXXXXX")
# Spark's scratch (shuffle files, block managers) goes away with WORK too.
export SPARK_LOCAL_DIRS="$WORK/spark-local"
PIDS=()
cleanup() {
    # Workers before the master (a worker kills its executors on the way out).
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

start_node() { # name; sets URL
    "$POWERD" serve --data-dir "$WORK/$1" --listen 127.0.0.1:0 --log-level warn \
        >"$WORK/$1.stdout" 2>"$WORK/$1.stderr" &
    PIDS+=($!)
    URL=
    for _ in $(seq 1 100); do
        URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/$1.stdout" 2>/dev/null | head -n1 || true)
        [ -n "$URL" ] && return
        sleep 0.1
    done
    echo "spark.sh: node $1 did not start" >&2
    cat "$WORK/$1.stderr" >&2
    exit 1
}
start_node a
URL_A=$URL
start_node b
URL_B=$URL
echo "spark.sh: powerd nodes at $URL_A (a) and $URL_B (b)"

LAKE="$WORK/lake"
export_both() {
    for node in a b; do
        "$POWERD" export --data-dir "$WORK/$node" --to "$LAKE" --node "$node" --scratch "$WORK/scratch" \
            2>"$WORK/export-$node.log" || { cat "$WORK/export-$node.log" >&2; exit 1; }
        echo "spark.sh: export $node: $(tail -n1 "$WORK/export-$node.log")"
    done
}
"$PY" ci/spark_e2e.py seed 1 "$URL_A" "$URL_B"
export_both
# Overwrites and a new day after the first export: the second export must
# replace the files of changed days.
"$PY" ci/spark_e2e.py seed 2 "$URL_A" "$URL_B"
export_both
echo "spark.sh: lake: $(find "$LAKE" -path "$LAKE/_powerd" -prune -o -name '*.parquet' -print | wc -l) parquet files, $(du -sh "$LAKE" | cut -f1)"

# --- a Spark standalone cluster: one master, two workers ---------------------
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
MASTER_PORT=$(free_port)
MASTER_UI_PORT=$(free_port)
MASTER="spark://127.0.0.1:$MASTER_PORT"
"$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT" \
    >"$WORK/master.log" 2>&1 &
PIDS+=($!)
for n in 1 2; do
    mkdir -p "$WORK/worker$n"
    "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
        --host 127.0.0.1 --cores 1 --memory 1g --webui-port "$(free_port)" \
        --work-dir "$WORK/worker$n" "$MASTER" >"$WORK/worker$n.log" 2>&1 &
    PIDS+=($!)
done
alive=0
for _ in $(seq 1 120); do
    # The master's status page: {"aliveworkers": N, ...}.
    alive=$("$PY" -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1]))["aliveworkers"])' \
        "http://127.0.0.1:$MASTER_UI_PORT/json/" 2>/dev/null || echo 0)
    [ "$alive" = 2 ] && break
    sleep 0.5
done
if [ "$alive" != 2 ]; then
    echo "spark.sh: the Spark cluster did not come up with two workers ($alive alive)" >&2
    tail -n 30 "$WORK/master.log" "$WORK/worker1.log" "$WORK/worker2.log" >&2
    exit 1
fi
echo "spark.sh: Spark master $MASTER with 2 workers (1 core, 1 GiB each)"

# --- the job over windows, checked against the APIs --------------------------
runs=0
failures=0
run_case() { # job arguments after LAKE
    local out="$WORK/job.stdout" err="$WORK/job.stderr" t0 t1 status=0
    runs=$((runs + 1))
    t0=$(date +%s%N)
    "$SPARK_HOME/bin/spark-submit" --master "$MASTER" \
        --driver-memory 512m --conf spark.executor.memory=512m \
        --conf spark.executor.cores=1 --conf spark.cores.max=2 \
        --conf spark.ui.enabled=false \
        --conf "spark.driver.extraJavaOptions=$JVM_OPTIONS" \
        --conf "spark.executor.extraJavaOptions=$JVM_OPTIONS" \
        lake/fleet_report.py "$LAKE" "$@" >"$out" 2>"$err" || status=$?
    t1=$(date +%s%N)
    printf 'spark.sh: run %d: fleet_report.py %s: %d.%d s\n' "$runs" "$*" \
        $(((t1 - t0) / 1000000000)) $(((t1 - t0) / 100000000 % 10))
    if [ "$status" != 0 ]; then
        echo "spark.sh: the job failed (exit status $status):" >&2
        tail -n 40 "$err" >&2
        failures=$((failures + 1))
        return
    fi
    "$PY" ci/spark_e2e.py check "$URL_A" "$URL_B" "$out" "$@" || failures=$((failures + 1))
}
# Open edges: the lake's stored range, which is the two nodes' combined.
run_case --step 1d --top 3
# Aligned days, 15-minute intervals.
run_case --start 2018-08-21T00:00:00Z --end 2018-08-23T00:00:00Z --step 15m --top 10
# Unaligned edges cutting buckets, hours and days.
run_case --start 2018-08-21T05:07:00Z --end 2018-08-23T13:52:30Z --step 1h --top 1
# Offsets and a fraction; more ships asked for than the fleet has.
run_case --start 2018-08-21T10:20:00.750+02:00 --end 2018-08-24T03:10:00-01:30 --step 1d --top 500
# One edge open each way, dashed spelling.
run_case --end 2018-08-22T17-45-00Z --step 1h --top 120
run_case --start 2018-08-23T22:40:00Z --step 15m --top 7
# Nothing inside: start equal to end, and a window after all data.
run_case --start 2018-08-22T12:00:00Z --end 2018-08-22T12:00:00Z --step 1h --top 5
run_case --start 2030-01-01T00:00:00Z --end 2030-02-01T00:00:00Z --step 1d --top 5

# A window the API answers with 400: exit 2, nothing on stdout.
status=0
"$SPARK_HOME/bin/spark-submit" --master "$MASTER" lake/fleet_report.py "$LAKE" \
    --start 2018-08-22T00:00:00Z --end 2018-08-21T00:00:00Z >"$WORK/job.stdout" 2>"$WORK/job.stderr" || status=$?
if [ "$status" != 2 ] || [ -s "$WORK/job.stdout" ] || ! grep -q 'is after --end' "$WORK/job.stderr"; then
    echo "spark.sh: start after end: expected exit 2, an empty stdout and the reason on stderr; got $status" >&2
    cat "$WORK/job.stdout" "$WORK/job.stderr" >&2
    failures=$((failures + 1))
fi

# Both workers ran executors of the jobs: a real cluster, not one machine's
# worth of local mode.
for n in 1 2; do
    if ! compgen -G "$WORK/worker$n/app-*" >/dev/null; then
        echo "spark.sh: worker $n ran no executor" >&2
        failures=$((failures + 1))
    fi
done
if [ "$failures" != 0 ]; then
    echo "spark.sh: $failures of $runs runs failed" >&2
    exit 1
fi
echo "spark.sh: passed: $runs runs equal the two nodes' APIs combined ($(($(date +%s) - began)) s in all)"
