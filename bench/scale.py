#!/usr/bin/env python3
"""`make bench-scale`: `patroni-router serve` over thousands of clusters, as a user would run it
at that scale, against the testbed (examples/testbed.rs: FAKE Patroni clusters, every node on
its own loopback address and port, as real hosts are) and moto.

For each scale (BENCH_SCALES, default "1000,10000"): start the testbed (two processes past
5,000 clusters: the machine's file limit), create the moto side and the config, start `serve
--interval 60s`, wait until it has read everything once (cold start), then measure a steady
window (BENCH_WINDOW seconds, default 600): AWS calls by API (moto's request recorder), the
busiest minute per API family against the budget's share, throttles, false `no primary`
decisions, CPU, and the routing lag of failovers injected mid-window, with a webhook and
without. Prints every figure and writes BENCH_OUT/scale.json; bench/RESULTS.md records them.
"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
OUT = os.environ.get("BENCH_OUT") or os.path.join(TARGET, "bench")
ROUTER = os.path.join(TARGET, "release/patroni-router")
TESTBED = os.path.join(TARGET, "release/examples/testbed")
MOTO = os.environ["AWS_ENDPOINT_URL"]
SCALES = [int(x) for x in os.environ.get("BENCH_SCALES", "1000,10000").split(",")]
WINDOW = int(os.environ.get("BENCH_WINDOW", "600"))
INJECT = int(os.environ.get("BENCH_FAILOVERS", "3"))
PER_TESTBED = 5000
SECRET = "bench-secret-0123456789abcdef0123456789"
# The budget's default share of AWS's limits, per minute: ELB Describe* 20 % of 10/s, Route 53
# 20 % of 5/s.
SHARE_PER_MIN = {"elb_describe": 120, "route53": 60}

work = tempfile.mkdtemp(prefix="router-scale.")
elb = boto3.client("elbv2", endpoint_url=MOTO, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


def post(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method="POST", headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def recorder(path, method="POST"):
    req = urllib.request.Request(f"{MOTO}/moto-api/recorder/{path}", method=method)
    with urllib.request.urlopen(req) as r:
        return r.read().decode()


def calls_by_api():
    """Requests moto recorded since the last reset, by API action."""
    out = {}
    for line in recorder("download-recording", "GET").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        path, method = rec.get("url", ""), rec.get("method", "")
        if "moto-api" in path:
            continue
        body = rec.get("body") or ""
        if str(rec.get("body_encoded")) == "True":
            body = base64.b64decode(body).decode(errors="replace")
        elif isinstance(body, dict):
            body = json.dumps(body)
        m = re.search(r"Action=(\w+)", body + " " + path)
        if m:
            api = m.group(1)
        elif "/rrset" in path:
            api = "ChangeResourceRecordSets" if method == "POST" else "ListResourceRecordSets"
        else:
            api = f"{method} {path.split('?')[0]}"
        out[api] = out.get(api, 0) + 1
    return out


def start_testbeds(n):
    """Testbed processes serving n clusters; [(process, control URL, clusters)]."""
    beds = []
    for i, first in enumerate(range(0, n, PER_TESTBED)):
        count = min(PER_TESTBED, n - first)
        ready = os.path.join(work, f"testbed{i}.json")
        proc = subprocess.Popen([TESTBED, "serve", "--clusters", str(count), "--scope", f"s{i}x",
                                 "--first-address", f"127.{1 + 2 * i}.0.1", "--ready-file", ready],
                                stderr=open(os.path.join(work, f"testbed{i}.log"), "w"))
        for _ in range(1200):
            if os.path.exists(ready):
                break
            if proc.poll() is not None:
                raise SystemExit(f"bench: testbed {i} exited with status {proc.returncode}")
            time.sleep(0.1)
        with open(ready) as f:
            beds.append((proc, json.load(f)["control"], count))
    return beds


def config_for(beds, n):
    """The moto world and one router config for every testbed's clusters."""
    clusters, base = [], None
    for i, (_, control, count) in enumerate(beds):
        path = os.path.join(work, f"c{n}-{i}.json")
        subprocess.run([TESTBED, "moto", "--control", control, "--ip-targets", "--zones", "4",
                        "--domain", f"scale{i}.internal.", "--prefix", f"n{n}b{i}", "--out", path],
                       check=True)
        with open(path) as f:
            cfg = json.load(f)
        clusters += cfg["clusters"]
        base = base or cfg
    base["clusters"] = clusters
    path = os.path.join(work, f"config{n}.json")
    with open(path, "w") as f:
        json.dump(base, f)
    return base, path


def prime(config, n):
    """Route every cluster once, as an earlier deployment would have (setup, not measured):
    a one-shot reconcile with the budget lifted (moto has no limits)."""
    fast = {"burst": 100000, "per_second": 100000.0}
    lifted = dict(config, aws={"budget": {"share": 1.0, "elb_describe": fast, "elb_modify": fast,
                                          "route53": fast}})
    # Target groups as the strategy wants them (the testbed makes them with AWS's defaults).
    lifted["clusters"] = [dict(c, target_group=dict(c["target_group"], manage_settings=True))
                          for c in config["clusters"]]
    path = os.path.join(work, f"prime{n}.json")
    with open(path, "w") as f:
        json.dump(lifted, f)
    started = time.monotonic()
    subprocess.run([ROUTER, "reconcile", "--config", path], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    print(f"{n}: primed (every cluster routed once) in {time.monotonic() - started:.0f} s", flush=True)


def metrics(url):
    """Sums of the router's series by name and label set."""
    out = {}
    for line in get(f"{url}/metrics").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


def total(m, prefix, label=""):
    return sum(v for k, v in m.items() if k.startswith(prefix) and label in k)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def registered(arn):
    r = elb.describe_target_health(TargetGroupArn=arn)
    return sorted(f"{d['Target']['Id']}:{d['Target']['Port']}" for d in r["TargetHealthDescriptions"]
                  if d["TargetHealth"]["State"] not in ("draining", "unused"))


def failover(cluster, control, url, member, webhook):
    """Move `cluster`'s leader to `member`; seconds until moto's target group holds it, and
    the DescribeTargetHealth calls this made (not the router's)."""
    node = next(n for n in cluster["nodes"] if n["name"] == member)
    want = [f"{node['address']}:{cluster['target_group']['port']}"]
    arn = cluster["target_group"]["arn"]
    started = time.monotonic()
    post(f"{control}/clusters/{cluster['scope']}/leader/{member}")
    if webhook:
        subprocess.Popen([ROUTER, "notify", "--url", f"{url}/webhook", "--node", member,
                          "on_role_change", "primary", cluster["scope"]],
                         env={**os.environ, "ROUTER_WEBHOOK_SECRET": SECRET},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    polls = 0
    while time.monotonic() - started < 180:
        polls += 1
        if registered(arn) == want:
            return time.monotonic() - started, polls
        time.sleep(0.05)
    return None, polls


def wait_cold(url, serve, started, n, limit):
    """Until every cluster has been decided and routed once; (seconds, metrics)."""
    while time.monotonic() - started < limit:
        if serve.poll() is not None:
            raise SystemExit(f"bench: serve exited with status {serve.returncode}")
        try:
            m = metrics(url)
            if total(m, "patroni_router_reconciles_total") >= n:
                return time.monotonic() - started, m
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"bench: serve did not run every cluster within {limit} s")


def busiest_minutes(samples):
    """The most calls in any 60 s between samples [(t, {api: calls})], per family."""
    fams = {"elb_describe": lambda a: a.startswith("Describe"),
            "route53": lambda a: a in ("ListResourceRecordSets", "ChangeResourceRecordSets")}
    out = {}
    for fam, member in fams.items():
        best = 0
        for i, (t0, c0) in enumerate(samples):
            for t1, c1 in samples[i + 1:]:
                if t1 - t0 > 61:
                    break
                n = sum(v for k, v in c1.items() if member(k)) - sum(v for k, v in c0.items() if member(k))
                best = max(best, n)
        out[fam] = best
    return out


def router_calls(m):
    return {re.search(r'operation="(\w+)"', k).group(1): v for k, v in m.items()
            if k.startswith("patroni_router_aws_calls_total")}


def one_scale(n):
    beds = start_testbeds(n)
    serve = None
    try:
        config, path = config_for(beds, n)
        prime(config, n)
        port = 18500 + n % 1000
        url = f"http://127.0.0.1:{port}"
        recorder("start-recording")
        recorder("reset-recording")
        started = time.monotonic()
        serve = subprocess.Popen([ROUTER, "serve", "--config", path, "--listen", f"127.0.0.1:{port}",
                                  "--interval", "60s", "--max-parallel", "16"],
                                 env={**os.environ, "ROUTER_WEBHOOK_SECRET": SECRET},
                                 stderr=open(os.path.join(work, f"serve{n}.log"), "w"))
        cold_s, cold_m = wait_cold(url, serve, started, n, 1800)
        cold_calls = calls_by_api()
        unread = cold_m.get("patroni_router_verify_unread")
        print(f"{n}: every cluster run once {cold_s:.0f} s after start ({unread} items not read yet, "
              f"left to verification): {cold_calls}", flush=True)
        recorder("reset-recording")
        m0, cpu0, t0 = metrics(url), cpu_seconds(serve.pid), time.monotonic()
        samples, lags, own_polls = [(0.0, router_calls(m0))], {"webhook": [], "none": []}, 0
        injections = [(WINDOW * (k + 1) / (2 * INJECT + 1), k % 2 == 0) for k in range(2 * INJECT)]
        byscope = {c["scope"]: c for c in config["clusters"]}
        scopes = sorted(byscope)
        while time.monotonic() - t0 < WINDOW:
            now = time.monotonic() - t0
            if injections and now >= injections[0][0]:
                _, webhook = injections.pop(0)
                scope = scopes[(len(lags["webhook"]) + len(lags["none"])) * 997 % len(scopes)]
                bed = next(b for b in beds if scope.startswith(f"s{beds.index(b)}x"))
                lag, polls = failover(byscope[scope], bed[1], url, "pg2", webhook)
                own_polls += polls
                lags["webhook" if webhook else "none"].append(lag)
                print(f"{n}: failover of {scope} ({'webhook' if webhook else 'no webhook'}): {lag} s", flush=True)
            m = metrics(url)
            samples.append((time.monotonic() - t0, router_calls(m)))
            time.sleep(10)
        wall = time.monotonic() - t0
        m1, cpu1 = metrics(url), cpu_seconds(serve.pid)
        calls = calls_by_api()
        calls["DescribeTargetHealth"] = calls.get("DescribeTargetHealth", 0) - own_polls
        minutes = wall / 60
        fig = {
            "clusters": n, "window_s": round(wall), "cold_start_s": round(cold_s),
            "cold_start_calls": cold_calls, "cold_start_unread": unread,
            "verify_unread_at_end": m1.get("patroni_router_verify_unread"),
            "calls_per_min": {k: round(v / minutes, 1) for k, v in sorted(calls.items())},
            "busiest_minute": busiest_minutes(samples),
            "share_per_min": SHARE_PER_MIN,
            "throttled": total(m1, "patroni_router_aws_throttled_total") - total(m0, "patroni_router_aws_throttled_total"),
            "false_no_primary": total(m1, "patroni_router_decisions_total", 'kind="no_primary"')
            - total(m0, "patroni_router_decisions_total", 'kind="no_primary"'),
            "ambiguous": total(m1, "patroni_router_decisions_total", 'kind="ambiguous"')
            - total(m0, "patroni_router_decisions_total", 'kind="ambiguous"'),
            "cpu_s_per_min": round((cpu1 - cpu0) / minutes, 2),
            "verify_cycle_s": {k: m1.get(f'patroni_router_verify_cycle_seconds{{item="{k}"}}')
                               for k in ("target_groups", "names")},
            "verify_oldest_s": m1.get("patroni_router_verify_oldest_seconds"),
            "failover_lag_s": {k: [round(x, 3) if x is not None else None for x in v] for k, v in lags.items()},
        }
        print(json.dumps(fig, indent=2), flush=True)
        return fig
    finally:
        if serve:
            serve.send_signal(signal.SIGTERM)
            serve.wait()
        for proc, _, _ in beds:
            proc.terminate()
            proc.wait()


def main():
    for path in (ROUTER, TESTBED):
        if not os.path.exists(path):
            raise SystemExit(f"bench: {path} missing: run `make bench-scale` (it builds them)")
    results = {"date": time.strftime("%Y-%m-%d"), "scales": [one_scale(n) for n in SCALES]}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "scale.json"), "w") as f:
        json.dump(results, f, indent=2)
    # The logs stay beside the results (serve's decisions explain any false "no primary").
    for name in os.listdir(work):
        if name.endswith(".log"):
            shutil.copy(os.path.join(work, name), os.path.join(OUT, f"scale-{name}"))
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
