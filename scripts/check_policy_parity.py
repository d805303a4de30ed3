#!/usr/bin/env python3
"""Does deploy/terraform grant exactly what template.yaml grants? (run by make terraform-test)

    .venv/bin/python scripts/check_policy_parity.py TF_JSON [TF_JSON ...]

Each TF_JSON is `terraform show -json` of the example's applied state or of a saved plan. From it:
the module's routing policy (aws_iam_role_policy), its managed policy attachments and trust
policy, and the example's `module_inputs` output (target groups, zones, settings switch, S3 URI,
webhook auth). template.yaml's RouterRole is then evaluated with the same parameter values (a
small evaluator of the intrinsic functions it uses), and both sides are expanded into
(effect, action, resource, condition) grants. Any grant on one side only is printed and fails the
check. Each run also proves the comparison itself catches an extra and a missing grant.
"""
import json
import pathlib
import sys

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parent.parent
PARTITION = "aws"


class Template:
    """template.yaml with parameter values: evaluates conditions and intrinsic functions."""

    def __init__(self, path, params, attrs):
        tpl, matches = decode(str(path))
        if matches:
            raise SystemExit(f"{path}: {matches[0].message}")
        self.tpl = json.loads(json.dumps(tpl))
        self.attrs = attrs  # "Resource.Attr" or "Resource" -> the Terraform-side value
        self.params = {}
        for name, spec in self.tpl.get("Parameters", {}).items():
            value = params.get(name, spec.get("Default"))
            if spec["Type"] == "CommaDelimitedList" or spec["Type"].startswith("List<"):
                value = value if isinstance(value, list) else str(value or "").split(",")
            self.params[name] = value
        self.conds = {}

    def condition(self, name):
        if name not in self.conds:
            self.conds[name] = bool(self.eval(self.tpl["Conditions"][name]))
        return self.conds[name]

    def ref(self, name):
        pseudo = {"AWS::Partition": PARTITION, "AWS::NoValue": None}
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.attrs[name]

    def eval(self, node):
        if isinstance(node, list):
            out = [self.eval(x) for x in node]
            return [x for x in out if x is not None]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Condition":
                return self.condition(arg)
            if fn.startswith("Fn::"):
                return getattr(self, "fn_" + fn[4:].lower())(arg)
        out = {k: self.eval(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not None}

    def fn_if(self, arg):
        return self.eval(arg[1] if self.condition(arg[0]) else arg[2])

    def fn_equals(self, arg):
        return self.eval(arg[0]) == self.eval(arg[1])

    def fn_not(self, arg):
        return not self.eval(arg[0])

    def fn_and(self, arg):
        return all(self.eval(a) for a in arg)

    def fn_or(self, arg):
        return any(self.eval(a) for a in arg)

    def fn_join(self, arg):
        return arg[0].join(self.eval(arg[1]))

    def fn_split(self, arg):
        return self.eval(arg[1]).split(arg[0])

    def fn_select(self, arg):
        return self.eval(arg[1])[int(self.eval(arg[0]))]

    def fn_getatt(self, arg):
        res, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        return self.attrs[f"{res}.{attr}"]

    def fn_sub(self, arg):
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        values = {k: self.eval(v) for k, v in variables.items()}
        out, i = "", 0
        while i < len(text):
            j = text.find("${", i)
            if j < 0:
                out += text[i:]
                break
            k = text.index("}", j)
            name = text[j + 2:k]
            out += text[i:j]
            if name.startswith("!"):
                out += "${" + name[1:] + "}"
            elif name in values:
                out += str(values[name])
            elif "." in name:
                out += str(self.fn_getatt(name))
            else:
                out += str(self.ref(name))
            i = k + 1
        return out


def as_list(x):
    return x if isinstance(x, list) else [x]


def grants(statements):
    """(effect, action, resource, condition) for every action x resource of every statement
    (a trust policy's principal stands in for the resource)."""
    out = set()
    for st in statements:
        cond = json.dumps(st.get("Condition"), sort_keys=True) if st.get("Condition") else ""
        targets = (as_list(st["Resource"]) if "Resource" in st
                   else ["principal " + json.dumps(st.get("Principal"), sort_keys=True)])
        for action in as_list(st["Action"]):
            for target in targets:
                out.add((st.get("Effect", "Allow"), action, target, cond))
    return out


def tf_resources(doc):
    """Every resource of the root and child modules of a state or plan JSON."""
    values = doc.get("values") or doc.get("planned_values") or {}
    stack = [values.get("root_module", {})]
    while stack:
        mod = stack.pop()
        yield from mod.get("resources", [])
        stack.extend(mod.get("child_modules", []))


def outputs(doc):
    values = doc.get("values") or doc.get("planned_values") or {}
    return {k: v.get("value") for k, v in values.get("outputs", {}).items()}


def terraform_side(doc):
    res = {}
    for r in tf_resources(doc):
        res.setdefault(r["type"], []).append(r["values"])
    policies = [json.loads(p["policy"]) for p in res.get("aws_iam_role_policy", [])]
    if len(policies) != 1:
        raise SystemExit(f"expected one aws_iam_role_policy, found {len(policies)}")
    role = res["aws_iam_role"][0]
    return {
        "grants": grants(policies[0]["Statement"]),
        "managed": {a["policy_arn"] for a in res.get("aws_iam_role_policy_attachment", [])},
        "trust": grants(json.loads(role["assume_role_policy"])["Statement"]),
        "queue_arn": res["aws_sqs_queue"][0]["arn"],
    }


def sam_side(inputs, queue_arn):
    params = {
        "TargetGroupArns": inputs["target_group_arns"] or [""],
        "HostedZoneIds": inputs["hosted_zone_ids"] or [""],
        "ManageTargetGroupSettings": "true" if inputs["manage_target_group_settings"] else "false",
        "ConfigS3Uri": inputs["config_s3_uri"],
        "RouterConfig": "" if inputs["config_s3_uri"] else "{}",
        "WebhookAuth": inputs["webhook_auth"],
    }
    t = Template(ROOT / "template.yaml", params, {"FailedInvocationsQueue.Arn": queue_arn})
    role = t.eval(t.tpl["Resources"]["RouterRole"]["Properties"])
    statements = [st for p in role.get("Policies", []) for st in p["PolicyDocument"]["Statement"]]
    return {
        "grants": grants(statements),
        "managed": set(role.get("ManagedPolicyArns", [])),
        "trust": grants(role["AssumeRolePolicyDocument"]["Statement"]),
    }


def differences(sam, tf):
    out = []
    for key in ("grants", "managed", "trust"):
        for item in sorted(sam[key] - tf[key]):
            out.append(f"{key}: only template.yaml grants {item}")
        for item in sorted(tf[key] - sam[key]):
            out.append(f"{key}: only deploy/terraform grants {item}")
    return out


def check(path):
    doc = json.loads(pathlib.Path(path).read_text())
    inputs = outputs(doc).get("module_inputs")
    if inputs is None:
        raise SystemExit(f"{path}: no module_inputs output (not the example's state or plan?)")
    tf = terraform_side(doc)
    sam = sam_side(inputs, tf["queue_arn"])
    diffs = differences(sam, tf)
    # The comparison must see a grant on one side only, either way.
    extra = dict(tf, grants=tf["grants"] | {("Allow", "elasticloadbalancing:DeleteTargetGroup", "*", "")})
    fewer = dict(tf, grants=set(sorted(tf["grants"])[1:]))
    if not differences(sam, extra) or not differences(sam, fewer):
        diffs.append("self-test: an extra or a missing grant went unnoticed")
    summary = (f"{len(sam['grants'])} grants (tgs {len(inputs['target_group_arns'])}, zones "
               f"{len(inputs['hosted_zone_ids'])}, settings {inputs['manage_target_group_settings']}, "
               f"s3 {'yes' if inputs['config_s3_uri'] else 'no'})")
    return diffs, summary


def main(paths):
    failed = False
    for path in paths:
        diffs, summary = check(path)
        for d in diffs:
            print(f"  {path}: {d}")
        print(f"policy parity {'FAILED' if diffs else 'OK'}: {pathlib.Path(path).name}: {summary}")
        failed |= bool(diffs)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
