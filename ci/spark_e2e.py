"""Helpers of ci/spark.sh: seed two powerd nodes, and check the Spark job's
answer against the two nodes' API answers combined.

    python ci/spark_e2e.py seed PHASE URL_A URL_B
    python ci/spark_e2e.py check URL_A URL_B JOB_STDOUT [--start T] [--end T] --step S --top N

Standard library only (runs with the virtualenv's python).

The fleet is split between the nodes with disjoint ship sets, so the lake
over both must answer what the two APIs answer combined: fleet sums add,
ship counts add, the mean is the combined sum over the combined ships
(rounded half up to 9 decimals, as the API does); top-N is the first N of
the two nodes' top-N lists merged (a ship in the combined top N is in its
own node's top N). Numbers are compared as decimals parsed from the JSON
text, never floats, and the job's must also be spelled the API's way:
integer digits, at most 9 fraction digits, no trailing zeros, no exponent.
"""

import decimal
import difflib
import json
import random
import re
import sys
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

NANO = 10**9
EXACT = decimal.Context(prec=100, traps=[decimal.Inexact, decimal.Overflow])
DAY0 = datetime(2018, 8, 20, tzinfo=timezone.utc)
DAYS = 4

# Disjoint ship sets: node a even ids, node b odd ids, so the merged
# top-N interleaves; each node also has one id beyond 2^63 (UINT64 in the
# lake, decimal(20,0) in Spark).
SHIPS_A = [2 * i for i in range(1, 60)] + [2**64 - 1]
SHIPS_B = [2 * i + 1 for i in range(0, 59)] + [2**63]
# Equal histories on both nodes and within one: ties broken by id.
TIED_TOP = (8, 7)  # the fleet's two biggest users, equal
TIED_MID = (12, 14, 13)
SILENT = 16  # data everywhere it has data, all of it zero
# The two ids past 2^63 also have the biggest buckets: up to 2 million kWh
# with 9 decimals (16 significant digits), where summing the doubles would
# be off in the 9th decimal; only exact decimal sums pass.
BIG = (2**64 - 1, 2**63)


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def post(url, body):
    request = urllib.request.Request(
        url + "/data",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.status


def readings(ship, rng):
    """Phase 1 of one ship: a few POST bodies of one of several kinds."""
    kind = ship % 5
    if ship in TIED_TOP:
        return [{"spaceship_id": ship, "units": "kWh", "data": [
            {"datetime": stamp(DAY0 + timedelta(minutes=15 * i)), "value": 90.123456789}
            for i in range(DAYS * 96)]}]
    if ship in TIED_MID:
        return [{"spaceship_id": ship, "units": "kW", "interval": "PT1H", "data": [
            {"datetime": stamp(DAY0 + timedelta(hours=h)), "value": 7 + h % 5}
            for h in range(24, 60)]}]
    if ship in BIG:
        return [{"spaceship_id": ship, "units": "kWh", "data": [
            {"datetime": stamp(DAY0 + timedelta(days=1, minutes=15 * i)),
             "value": round(rng.uniform(1e5, 2e6), 9)}
            for i in range(2 * 96)]}]
    if ship == SILENT:
        return [{"spaceship_id": ship, "units": "kWh", "data": [
            {"datetime": stamp(DAY0 + timedelta(minutes=15 * i)), "value": 0}
            for i in range(96, 3 * 96)]}]
    if kind == 0:
        # 15-minute kWh with 9 decimals, the whole time.
        return [{"spaceship_id": ship, "units": "kWh", "data": [
            {"datetime": stamp(DAY0 + timedelta(minutes=15 * i)),
             "value": round(rng.uniform(0, 40), 9)}
            for i in range(DAYS * 96)]}]
    if kind == 1:
        # Hourly kWh: spread over four buckets, rounded once to 9 places.
        return [{"spaceship_id": ship, "units": "kWh", "interval": "PT1H", "data": [
            {"datetime": stamp(DAY0 + timedelta(hours=h)), "value": round(rng.uniform(1, 90), 6)}
            for h in range(DAYS * 24) if h % 17 != 5]}]
    if kind == 2:
        # 5-minute kW with holes: partial buckets.
        return [{"spaceship_id": ship, "units": "kW", "interval": "PT5M", "data": [
            {"datetime": stamp(DAY0 + timedelta(minutes=5 * i)), "value": round(rng.uniform(0, 20), 3)}
            for i in range(DAYS * 288) if rng.random() > 0.15]}]
    if kind == 3:
        # Joins late, leaves early, in a few batches: ship counts change
        # within days.
        first = rng.randrange(30, 200)
        last = rng.randrange(first + 20, DAYS * 96)
        points = [{"datetime": stamp(DAY0 + timedelta(minutes=15 * i)),
                   "value": round(rng.uniform(0, 10), 2)} for i in range(first, last)]
        return [{"spaceship_id": ship, "units": "kWh", "data": points[j:j + 50]}
                for j in range(0, len(points), 50)]
    # kind 4: hourly kW at odd minutes, a reading alone now and then.
    return [{"spaceship_id": ship, "units": "kW", "data": [
        {"datetime": stamp(DAY0 + timedelta(hours=h, minutes=7)), "value": rng.randrange(0, 50)}]}
        for h in range(0, DAYS * 24, 3)]


def overwrites(ship, rng):
    """Phase 2: rewrite parts of what phase 1 wrote, and add a day."""
    if ship in TIED_TOP or ship in TIED_MID or ship in BIG or ship == SILENT:
        return []
    kind = ship % 5
    if kind == 0:
        # Six hours rewritten with new values.
        return [{"spaceship_id": ship, "units": "kWh", "data": [
            {"datetime": stamp(DAY0 + timedelta(days=1, hours=6, minutes=15 * i)),
             "value": round(rng.uniform(0, 40), 9)} for i in range(24)]}]
    if kind == 2:
        # Five minutes of a bucket: it keeps the rest of its earlier energy.
        return [{"spaceship_id": ship, "units": "kW", "interval": "PT5M", "data": [
            {"datetime": stamp(DAY0 + timedelta(days=2, hours=3, minutes=5)), "value": 123.456}]}]
    if kind == 3:
        # A new day after everything else.
        return [{"spaceship_id": ship, "units": "kWh", "data": [
            {"datetime": stamp(DAY0 + timedelta(days=DAYS, minutes=15 * i)),
             "value": round(rng.uniform(0, 10), 2)} for i in range(40)]}]
    return []


def seed(phase, url_a, url_b):
    posts = 0
    for url, ships in ((url_a, SHIPS_A), (url_b, SHIPS_B)):
        for ship in ships:
            rng = random.Random(ship * 10 + phase)
            bodies = readings(ship, rng) if phase == 1 else overwrites(ship, rng)
            for body in bodies:
                post(url, body)
                posts += 1
    print(f"spark_e2e.py: phase {phase}: {posts} POSTs to 2 nodes, "
          f"{len(SHIPS_A)} + {len(SHIPS_B)} ships")


# --- the check ----------------------------------------------------------------


def get(url, path, params):
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    with urllib.request.urlopen(f"{url}{path}?{query}") as response:
        return json.loads(response.read(), parse_float=decimal.Decimal)


def canonical(value):
    """How the API prints an energy (a Decimal of at most 9 places)."""
    nano = int(EXACT.scaleb(decimal.Decimal(value), 9))
    whole, fraction = divmod(nano, NANO)
    return str(whole) if fraction == 0 else f"{whole}.{fraction:09d}".rstrip("0")


def merge_edge(a, b, pick):
    present = [x for x in (a, b) if x is not None]
    return pick(present) if present else None


def combine(fleet_a, fleet_b, top_a, top_b, count):
    intervals = {}
    for answer in (fleet_a, fleet_b):
        for item in answer["data"]:
            total, ships = intervals.get(item["datetime"], (decimal.Decimal(0), 0))
            intervals[item["datetime"]] = (total + item["sum"], ships + item["ships"])
    data = []
    for when in sorted(intervals):
        total, ships = intervals[when]
        nano = int(EXACT.scaleb(total, 9))
        avg = decimal.Decimal((2 * nano + ships) // (2 * ships)).scaleb(-9, EXACT)
        data.append({"datetime": when, "sum": total, "avg": avg, "ships": ships})
    # Timestamps as printed sort like times (same width, years 0001-9999).
    start = merge_edge(fleet_a["start"], fleet_b["start"], min)
    end = merge_edge(fleet_a["end"], fleet_b["end"], max)
    fleet = {"units": "kWh", "start": start, "end": end, "step": fleet_a["step"], "data": data}
    ranked = sorted(top_a["ships"] + top_b["ships"],
                    key=lambda s: (-s["consumption"], s["spaceship_id"]))
    topusers = {
        "start": merge_edge(top_a["start"], top_b["start"], min),
        "end": merge_edge(top_a["end"], top_b["end"], max),
        "ships": ranked[:count],
    }
    return {"fleet": fleet, "topusers": topusers}


def parse_job_output(text):
    badly_spelled = []

    def number(spelling):
        value = decimal.Decimal(spelling)
        if spelling != canonical(value):
            badly_spelled.append(spelling)
        return value

    def integer(spelling):
        if spelling.startswith("-0") or (spelling.startswith("0") and spelling != "0"):
            badly_spelled.append(spelling)
        return int(spelling)

    document = json.loads(text, parse_float=number, parse_int=integer)
    return document, badly_spelled


def normalise(value):
    """For comparing: every number as an exact Decimal (3 == 3.0 is fine
    here; the spelling is checked apart)."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool):
        return decimal.Decimal(value)
    return value


def show(value):
    def default(x):
        if isinstance(x, decimal.Decimal):
            return format(x.normalize(), "f")  # 4274.66763376, not ...760
        raise TypeError(x)
    return json.dumps(value, indent=1, default=default, sort_keys=True).splitlines()


def check(url_a, url_b, job_stdout, start, end, step, top):
    params = {"start": start, "end": end}
    fleet_a = get(url_a, "/data/fleet", {**params, "step": step})
    fleet_b = get(url_b, "/data/fleet", {**params, "step": step})
    top_a = get(url_a, "/topusers", {**params, "count": top})
    top_b = get(url_b, "/topusers", {**params, "count": top})
    expected = combine(fleet_a, fleet_b, top_a, top_b, top)
    with open(job_stdout) as f:
        text = f.read()
    if text.count("\n") != 1 or not text.endswith("\n"):
        print(f"spark_e2e.py: the job's stdout is not one line of JSON:\n{text[:2000]}")
        return 1
    actual, badly_spelled = parse_job_output(text)
    if normalise(actual) != normalise(expected) or badly_spelled:
        diff = difflib.unified_diff(show(normalise(expected)), show(normalise(actual)),
                                    "powerd APIs combined", "Spark job", lineterm="", n=2)
        print("\n".join(list(diff)[:200]))
        if badly_spelled:
            print(f"numbers not printed the API's way: {badly_spelled[:20]}")
        return 1
    data = expected["fleet"]["data"]
    print(f"spark_e2e.py: equal: {len(data)} interval(s), "
          f"{sum(item['ships'] for item in data)} ship-intervals, "
          f"{len(expected['topusers']['ships'])} top user(s)")
    return 0


def main(argv):
    if argv[:1] == ["seed"]:
        seed(int(argv[1]), argv[2], argv[3])
        return 0
    if argv[:1] == ["check"]:
        url_a, url_b, job_stdout = argv[1:4]
        options = dict(zip(argv[4::2], argv[5::2]))
        unknown = set(options) - {"--start", "--end", "--step", "--top"}
        if unknown or len(argv[4:]) % 2:
            raise SystemExit(f"spark_e2e.py: bad options {argv[4:]}")
        return check(url_a, url_b, job_stdout, options.get("--start"), options.get("--end"),
                     options.get("--step", "15m"), int(options.get("--top", 3)))
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
