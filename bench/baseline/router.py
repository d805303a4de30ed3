#!/usr/bin/env python3
"""The benchmark peer: the same job as `patroni-router reconcile`, in Python 3 with boto3 and
requests, written the way a careful team would write its Lambda. Not part of the product.

It reads the same config, polls every node concurrently (/patroni and /cluster, with timeouts),
confirms the leader the /cluster views agree on with its own /patroni, reads the target group and
the record, and applies only the diff: register before deregister, one Route 53 change batch per
zone. It prints a one-line JSON summary.

    python bench/baseline/router.py --config router.json
"""
import argparse
import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3
import requests
from botocore.config import Config as BotoConfig

TIMEOUT = 2.0


def poll_node(session, node):
    out = {}
    for what in ("patroni", "cluster"):
        try:
            r = session.get(f"{node['api_url'].rstrip('/')}/{what}", timeout=TIMEOUT, allow_redirects=False)
            out[what] = r.json() if r.status_code in (200, 503) else None
        except (requests.RequestException, ValueError):
            out[what] = None
    return node["name"], out


def decide(cluster, answers):
    """The leader named by every /cluster view that names one, confirmed by its own /patroni."""
    names = {n["name"] for n in cluster["nodes"]}
    named = set()
    for name, a in answers.items():
        p, c = a.get("patroni"), a.get("cluster")
        if p and (p.get("patroni", {}).get("scope") != cluster["scope"] or p.get("patroni", {}).get("name") != name):
            continue  # misconfigured node: ignore its view
        if c:
            leaders = [m["name"] for m in c.get("members", []) if m.get("role") in ("leader", "master")]
            if len(leaders) > 1:
                return None
            named.update(leaders)
    if len(named) != 1:
        return None
    leader = named.pop()
    if leader not in names:
        return None
    own = answers.get(leader, {}).get("patroni")
    if not own or own.get("role") not in ("primary", "master") or own.get("state") != "running":
        return None
    if own.get("cluster_unlocked"):
        return None
    return leader


def reconcile_cluster(cluster, session, elb, r53):
    with ThreadPoolExecutor(max_workers=len(cluster["nodes"])) as pool:
        answers = dict(pool.map(lambda n: poll_node(session, n), cluster["nodes"]))
    primary = decide(cluster, answers)
    result = {"scope": cluster["scope"], "primary": primary, "writes": 0, "dns": []}
    if primary is None:
        return result
    node = next(n for n in cluster["nodes"] if n["name"] == primary)
    tg = cluster.get("target_group")
    if tg:
        group = elb.describe_target_groups(TargetGroupArns=[tg["arn"]])["TargetGroups"][0]
        target_id = node["instance_id"] if group["TargetType"] == "instance" else node["address"]
        health = elb.describe_target_health(TargetGroupArn=tg["arn"])["TargetHealthDescriptions"]
        active = {(h["Target"]["Id"], h["Target"].get("Port")) for h in health
                  if h.get("TargetHealth", {}).get("State") != "draining"}
        want = (target_id, tg["port"])
        if want not in active:
            elb.register_targets(TargetGroupArn=tg["arn"], Targets=[{"Id": want[0], "Port": want[1]}])
            result["writes"] += 1
        stale = [{"Id": i, "Port": p} for (i, p) in active if (i, p) != want]
        if stale:
            elb.deregister_targets(TargetGroupArn=tg["arn"], Targets=stale)
            result["writes"] += 1
    dns = cluster.get("dns")
    if dns:
        name = dns["record_name"].lower().rstrip(".") + "."
        rs = r53.list_resource_record_sets(HostedZoneId=dns["hosted_zone_id"], StartRecordName=name,
                                           StartRecordType="A", MaxItems="1")["ResourceRecordSets"]
        current = rs[0] if rs and rs[0]["Name"] == name and rs[0]["Type"] == "A" else None
        ttl = dns.get("ttl", 10)
        values = [r["Value"] for r in current.get("ResourceRecords", [])] if current else []
        if not current or values != [node["address"]] or current.get("TTL") != ttl:
            result["dns"].append((dns["hosted_zone_id"], {
                "Action": "UPSERT",
                "ResourceRecordSet": {"Name": name, "Type": "A", "TTL": ttl,
                                      "ResourceRecords": [{"Value": node["address"]}]}}))
    return result


def reconcile_all(config, session, elb, r53):
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda c: reconcile_cluster(c, session, elb, r53), config["clusters"]))
    by_zone = {}
    for r in results:
        for zone, change in r.pop("dns"):
            by_zone.setdefault(zone, []).append(change)
    for zone, changes in by_zone.items():
        for i in range(0, len(changes), 1000):
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes[i:i + 1000]})
    return {
        "clusters": len(results),
        "confirmed": sum(1 for r in results if r["primary"]),
        "writes": sum(r["writes"] for r in results) + sum((len(c) + 999) // 1000 for c in by_zone.values()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--repeat", type=int, default=1, help="reconciles in this process (timed each)")
    ap.add_argument("--flip", help="the testbed's control URL (examples/testbed.rs): move every leader before each run")
    args = ap.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    boto = BotoConfig(retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=32)
    elb = boto3.client("elbv2", config=boto)
    r53 = boto3.client("route53", config=boto)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
    if os.environ.get("BENCH_RESET_RECORDING"):
        reconcile_all(config, session, elb, r53)  # untimed warm-up, as bench_reconcile does
        moto = os.environ["AWS_ENDPOINT_URL"]
        urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/recorder/reset-recording", method="POST"))
    durations, writes, cpu = [], [], []
    for i in range(args.repeat):
        if args.flip:
            leader = ["pg2", "pg3", "pg1"][i % 3]
            for c in config["clusters"]:
                requests.post(f"{args.flip}/clusters/{c['scope']}/leader/{leader}", timeout=5).raise_for_status()
        started, cpu0 = time.monotonic(), time.process_time()
        summary = reconcile_all(config, session, elb, r53)
        durations.append((time.monotonic() - started) * 1000)
        cpu.append((time.process_time() - cpu0) * 1000)
        writes.append(summary["writes"])
    print(json.dumps({"durations_ms": durations, "cpu_ms": cpu, "writes": writes, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
