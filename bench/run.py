#!/usr/bin/env python3
"""`make bench`: patroni-router side by side with the Python/boto3 baseline, in one run, on
this machine, against moto (with its request recorder, to count AWS calls) and the testbed
(examples/testbed.rs: FAKE Patroni clusters, every node on its own loopback address and port,
as real hosts are; it also creates the moto side of each configuration).

Prints every figure and writes BENCH_OUT/results.json (default target/bench/; nothing under
bench/ changes); bench/RESULTS.md records them. Run through scripts/with-moto.sh with
MOTO_ENABLE_RECORDING=True and MOTO_RECORDER_FILEPATH under target/ (the Makefile does).
"""
import base64
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
OUT = os.environ.get("BENCH_OUT") or os.path.join(TARGET, "bench")
RUST = os.path.join(TARGET, "release/patroni-router")
RUST_WARM = os.path.join(TARGET, "release/examples/bench_reconcile")
TESTBED = os.path.join(TARGET, "release/examples/testbed")
PY = sys.executable
BASELINE = os.path.join(ROOT, "bench/baseline/router.py")
MOTO = os.environ["AWS_ENDPOINT_URL"]
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "15"))
WARM_RUNS = int(os.environ.get("BENCH_WARM_RUNS", "30"))
SCALES = [int(x) for x in os.environ.get("BENCH_SCALES", "10,100,1000").split(",")]
ZONES = 4

work = tempfile.mkdtemp(prefix="router-bench.")
results = {"machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
           "date": time.strftime("%Y-%m-%d"), "figures": {}}


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def stats(values):
    return {"median": round(statistics.median(values), 2), "p99": round(pct(values, 99), 2)}


def moto_api(path, method="POST"):
    req = urllib.request.Request(f"{MOTO}/moto-api/recorder/{path}", method=method)
    with urllib.request.urlopen(req) as r:
        return r.read().decode()


def calls():
    """(reads, writes) recorded by moto since the last clear."""
    reads = writes = 0
    for line in moto_api("download-recording", "GET").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        body = rec.get("body") or ""
        if str(rec.get("body_encoded")) == "True":
            body = base64.b64decode(body).decode(errors="replace")
        elif isinstance(body, dict):
            body = json.dumps(body)
        path, method = rec.get("url", ""), rec.get("method", "")
        if "moto-api" in path:
            continue
        write = any(a in body for a in ("Action=RegisterTargets", "Action=DeregisterTargets")) or (
            method == "POST" and path.rstrip("/").endswith("/rrset"))
        if write:
            writes += 1
        else:
            reads += 1
    return reads, writes


def run_timed(args):
    """Wall time (ms) and peak RSS (MiB) of one process. GNU time measures the RSS: a child
    forked from this (large) Python process would report the parent's pages as its own."""
    rss_file = os.path.join(work, "rss")
    started = time.monotonic()
    status = subprocess.call(["/usr/bin/time", "-f", "%M", "-o", rss_file] + args,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = (time.monotonic() - started) * 1000
    if status != 0:
        raise SystemExit(f"bench: {args} failed with status {status}")
    with open(rss_file) as f:
        return elapsed, int(f.read().strip().splitlines()[-1]) / 1024


def warm(impl, config_path, repeat, flip=None):
    if impl == "rust":
        args = [RUST_WARM, "--config", config_path, "--repeat", str(repeat)]
    else:
        args = [PY, BASELINE, "--config", config_path, "--repeat", str(repeat)]
    if flip:
        args += ["--flip", flip]
    # The drivers run one untimed warm-up (the first run of a process reads target types and
    # settings), then reset moto's recorder, so the calls counted are the timed runs'.
    out = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "BENCH_RESET_RECORDING": "1"})
    if out.returncode != 0:
        raise SystemExit(f"bench: {impl} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# AWS's limits lifted (moto has none): these figures compare the engines; how the router
# keeps within AWS's real budgets is bench/scale.py's.
LIFTED = {"budget": {"share": 1.0, **{f: {"burst": 100000, "per_second": 100000.0}
                                       for f in ("elb_describe", "elb_modify", "route53")}}}


def setup(n, control, prefix):
    """n clusters of the testbed in moto: ip target groups, records spread over ZONES private
    zones (examples/testbed.rs creates them); the config's path."""
    path = os.path.join(work, f"{prefix}.json")
    subprocess.run([TESTBED, "moto", "--control", control, "--clusters", str(n), "--ip-targets",
                    "--zones", str(ZONES), "--domain", "bench.internal.", "--prefix", prefix,
                    "--extra", json.dumps({"aws": LIFTED}), "--out", path], check=True)
    return path


def leaders(control, member):
    """Every testbed cluster: `member` leads."""
    urllib.request.urlopen(urllib.request.Request(f"{control}/leader/{member}", method="POST"))


def start_testbed(clusters):
    """The testbed serving `clusters` clusters; (process, control URL)."""
    ready = os.path.join(work, "testbed.json")
    proc = subprocess.Popen([TESTBED, "serve", "--clusters", str(clusters), "--ready-file", ready])
    for _ in range(600):
        if os.path.exists(ready):
            with open(ready) as f:
                return proc, json.load(f)["control"]
        if proc.poll() is not None:
            raise SystemExit(f"bench: the testbed exited with status {proc.returncode}")
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit("bench: the testbed did not get ready in 60 s")


def main():
    for path in (RUST, RUST_WARM, TESTBED):
        if not os.path.exists(path):
            raise SystemExit(f"bench: {path} missing: run `make bench` (it builds them)")
    if not os.path.exists("/usr/bin/time"):
        raise SystemExit("bench: /usr/bin/time is missing: install the Debian package `time` (make bench-deps)")
    testbed, control = start_testbed(max(SCALES + [1]))
    try:
        moto_api("start-recording")
        figures = results["figures"]

        # One cluster: cold start, steady state, failover.
        for impl in ("rust", "python"):
            one = setup(1, control, f"one{impl}")
            leaders(control, "pg1")
            cmd = [RUST, "reconcile", "--config", one] if impl == "rust" else [PY, BASELINE, "--config", one]
            run_timed(cmd)  # prime: route it once
            walls, rss = [], []
            for _ in range(COLD_RUNS):
                w, r = run_timed(cmd)
                walls.append(w)
                rss.append(r)
            figures[f"cold_start_ms.{impl}"] = stats(walls)
            figures[f"peak_rss_mib.{impl}"] = stats(rss)
            moto_api("reset-recording")
            steady = warm(impl, one, WARM_RUNS)
            reads, writes = calls()
            figures[f"steady_ms.{impl}"] = stats(steady["durations_ms"])
            figures[f"steady_calls_per_run.{impl}"] = {"reads": round(reads / WARM_RUNS, 2),
                                                       "writes": round(writes / WARM_RUNS, 2)}
            moto_api("reset-recording")
            flip = warm(impl, one, WARM_RUNS, flip=control)
            reads, writes = calls()
            figures[f"failover_ms.{impl}"] = stats(flip["durations_ms"])
            figures[f"failover_calls_per_run.{impl}"] = {"reads": round(reads / WARM_RUNS, 2),
                                                         "writes": round(writes / WARM_RUNS, 2)}
            print(f"{impl}: cold {figures[f'cold_start_ms.{impl}']} ms, rss {figures[f'peak_rss_mib.{impl}']} MiB, "
                  f"steady {figures[f'steady_ms.{impl}']} ms {figures[f'steady_calls_per_run.{impl}']}, "
                  f"failover {figures[f'failover_ms.{impl}']} ms {figures[f'failover_calls_per_run.{impl}']}",
                  flush=True)

        # Scale: n clusters in one invocation.
        for n in SCALES:
            for impl in ("rust", "python"):
                cfg = setup(n, control, f"s{n}{impl}")
                leaders(control, "pg1")
                warm(impl, cfg, 1)  # prime: the first routing of n clusters
                moto_api("reset-recording")
                steady = warm(impl, cfg, 3)
                reads, writes = calls()
                figures[f"scale_{n}_steady_ms.{impl}"] = stats(steady["durations_ms"])
                figures[f"scale_{n}_steady_cpu_ms.{impl}"] = stats(steady["cpu_ms"])
                figures[f"scale_{n}_steady_calls.{impl}"] = {"reads": reads // 3, "writes": writes // 3}
                moto_api("reset-recording")
                flip = warm(impl, cfg, 3, flip=control)
                reads, writes = calls()
                figures[f"scale_{n}_failover_ms.{impl}"] = stats(flip["durations_ms"])
                figures[f"scale_{n}_failover_calls.{impl}"] = {"reads": reads // 3, "writes": writes // 3}
                print(f"{n} clusters, {impl}: steady {figures[f'scale_{n}_steady_ms.{impl}']} ms "
                      f"(CPU {figures[f'scale_{n}_steady_cpu_ms.{impl}']} ms) "
                      f"{figures[f'scale_{n}_steady_calls.{impl}']}, failover {figures[f'scale_{n}_failover_ms.{impl}']} ms "
                      f"{figures[f'scale_{n}_failover_calls.{impl}']}", flush=True)
    finally:
        testbed.terminate()
        testbed.wait()
        subprocess.run(["rm", "-rf", work])

    for key in list(results["figures"]):
        if key.endswith(".rust"):
            base = key[:-5]
            r, p = results["figures"][key], results["figures"].get(base + ".python")
            if isinstance(r, dict) and "median" in r and p and r["median"]:
                results["figures"][base + ".ratio"] = round(p["median"] / r["median"], 1)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
