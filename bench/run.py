#!/usr/bin/env python3
"""`make bench`: patroni-router side by side with the Python/boto3 baseline, in one run, on
this machine, against moto (with its request recorder, to count AWS calls) and the bench FAKE
Patroni (examples/bench_fake_patroni.rs, keep-alive, any number of clusters on one port).

Prints every figure and writes bench/results.json; bench/RESULTS.md records them.
Run through scripts/with-moto.sh with MOTO_ENABLE_RECORDING=True (the Makefile does).
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

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUST = os.path.join(ROOT, "target/release/patroni-router")
RUST_WARM = os.path.join(ROOT, "target/release/examples/bench_reconcile")
FAKE = os.path.join(ROOT, "target/release/examples/bench_fake_patroni")
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


def setup(n, fake_url, prefix):
    """n clusters in moto: ip target groups, records spread over ZONES private zones."""
    ec2, elb, r53 = boto3.client("ec2"), boto3.client("elbv2"), boto3.client("route53")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = []
    for z in range(min(ZONES, n)):
        name = f"{prefix}{z}.bench.internal."
        zid = r53.create_hosted_zone(Name=name, CallerReference=f"{prefix}{z}-{time.time()}",
                                     HostedZoneConfig={"PrivateZone": True},
                                     VPC={"VPCRegion": os.environ["AWS_REGION"], "VPCId": vpc})["HostedZone"]["Id"]
        zones.append((zid.split("/")[-1], name))
    clusters = []
    for i in range(n):
        tg = elb.create_target_group(Name=f"{prefix}-{i}", Protocol="TCP", Port=5432, VpcId=vpc,
                                     TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        zid, zname = zones[i % len(zones)]
        nodes = [{"name": m, "api_url": f"{fake_url}/c{i}/{m}", "address": f"10.{1 + i // 250}.{i % 250}.{10 + k}"}
                 for k, m in enumerate(["pg1", "pg2", "pg3"])]
        clusters.append({"scope": f"c{i}", "nodes": nodes, "target_group": {"arn": tg, "port": 5432},
                         "dns": {"hosted_zone_id": zid, "record_name": f"c{i}.{zname}", "ttl": 10}})
    path = os.path.join(work, f"{prefix}.json")
    with open(path, "w") as f:
        json.dump({"clusters": clusters}, f)
    return path


def leaders(fake_url, n, member):
    for i in range(n):
        urllib.request.urlopen(urllib.request.Request(f"{fake_url}/c{i}/leader/{member}", method="POST"))


def main():
    for path in (RUST, RUST_WARM, FAKE):
        if not os.path.exists(path):
            raise SystemExit(f"bench: {path} missing: run `make bench` (it builds them)")
    port = 18100 + os.getpid() % 500
    fake_url = f"http://127.0.0.1:{port}"
    fake = subprocess.Popen([FAKE, f"127.0.0.1:{port}", str(max(SCALES + [1]))], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        moto_api("start-recording")
        figures = results["figures"]

        # One cluster: cold start, steady state, failover.
        for impl in ("rust", "python"):
            one = setup(1, fake_url, f"one{impl}")
            leaders(fake_url, 1, "pg1")
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
            flip = warm(impl, one, WARM_RUNS, flip=fake_url)
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
                cfg = setup(n, fake_url, f"s{n}{impl}")
                leaders(fake_url, n, "pg1")
                warm(impl, cfg, 1)  # prime: the first routing of n clusters
                moto_api("reset-recording")
                steady = warm(impl, cfg, 3)
                reads, writes = calls()
                figures[f"scale_{n}_steady_ms.{impl}"] = stats(steady["durations_ms"])
                figures[f"scale_{n}_steady_calls.{impl}"] = {"reads": reads // 3, "writes": writes // 3}
                moto_api("reset-recording")
                flip = warm(impl, cfg, 3, flip=fake_url)
                reads, writes = calls()
                figures[f"scale_{n}_failover_ms.{impl}"] = stats(flip["durations_ms"])
                figures[f"scale_{n}_failover_calls.{impl}"] = {"reads": reads // 3, "writes": writes // 3}
                print(f"{n} clusters, {impl}: steady {figures[f'scale_{n}_steady_ms.{impl}']} ms "
                      f"{figures[f'scale_{n}_steady_calls.{impl}']}, failover {figures[f'scale_{n}_failover_ms.{impl}']} ms "
                      f"{figures[f'scale_{n}_failover_calls.{impl}']}", flush=True)
    finally:
        fake.terminate()
        fake.wait()

    for key in list(results["figures"]):
        if key.endswith(".rust"):
            base = key[:-5]
            r, p = results["figures"][key], results["figures"].get(base + ".python")
            if isinstance(r, dict) and "median" in r and p and r["median"]:
                results["figures"][base + ".ratio"] = round(p["median"] / r["median"], 1)
    with open(os.path.join(ROOT, "bench/results.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
