#!/usr/bin/env python3
"""Create the AWS side of a local router in moto (never real AWS: the endpoint must be
loopback): a VPC and subnet, one EC2 instance per Patroni node, an NLB target group, a private
hosted zone. Writes the router config for those nodes.

    moto_setup.py --out router.json --scope pgha pg1=http://127.0.0.1:18008 pg2=... pg3=...
"""
import argparse
import json
import os
import sys

import boto3


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--scope", default="pgha")
    ap.add_argument("--zone", default="example.internal.")
    ap.add_argument("--record", default="db")
    ap.add_argument("--strategy", default="primary-only", choices=["primary-only", "members"])
    ap.add_argument("--routing", default="simple", choices=["simple", "failover"])
    ap.add_argument("--webhook", default=None, help="extra webhook settings as JSON")
    ap.add_argument("nodes", nargs="+", help="NAME=PATRONI_API_URL")
    args = ap.parse_args()

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not (endpoint.startswith("http://127.0.0.1:") or endpoint.startswith("http://localhost:")):
        print(f"moto_setup: AWS_ENDPOINT_URL must point at moto on loopback, got {endpoint!r}", file=sys.stderr)
        return 2
    region = os.environ.get("AWS_REGION", "eu-west-1")
    ec2 = boto3.client("ec2", region_name=region)
    elb = boto3.client("elbv2", region_name=region)
    r53 = boto3.client("route53", region_name=region)

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    nodes = []
    for i, spec in enumerate(args.nodes):
        name, url = spec.split("=", 1)
        ip = f"10.0.1.{10 + i}"
        inst = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 SubnetId=subnet, PrivateIpAddress=ip,
                                 TagSpecifications=[{"ResourceType": "instance",
                                                     "Tags": [{"Key": "Name", "Value": name}]}])
        nodes.append({"name": name, "api_url": url, "address": ip,
                      "instance_id": inst["Instances"][0]["InstanceId"]})
    tg = elb.create_target_group(Name=f"{args.scope}-primary", Protocol="TCP", Port=5432, VpcId=vpc,
                                 TargetType="instance", HealthCheckProtocol="HTTP", HealthCheckPort="8008",
                                 HealthCheckPath="/primary", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2, UnhealthyThresholdCount=2)
    tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
    zone = r53.create_hosted_zone(Name=args.zone, CallerReference=f"{args.scope}-{vpc}",
                                  HostedZoneConfig={"PrivateZone": True},
                                  VPC={"VPCRegion": region, "VPCId": vpc})
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    cluster = {
        "scope": args.scope,
        "nodes": nodes,
        "target_group": {"arn": tg_arn, "port": 5432, "strategy": args.strategy},
        "dns": {"hosted_zone_id": zone_id, "record_name": f"{args.record}.{args.zone}", "ttl": 10,
                "routing": args.routing},
    }
    config = {"patroni": {"request_timeout": "1s", "poll_deadline": "3s"}, "clusters": [cluster]}
    if args.webhook:
        config["webhook"] = json.loads(args.webhook)
    with open(args.out, "w") as f:
        json.dump(config, f, indent=2)
    print(json.dumps({"vpc": vpc, "target_group": tg_arn, "zone": zone_id, "config": args.out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
