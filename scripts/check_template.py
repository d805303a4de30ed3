#!/usr/bin/env python3
"""Static checks of intrinsic-function use in a CloudFormation/SAM template, beyond cfn-lint.

    .venv/bin/python scripts/check_template.py template.yaml [more.yaml ...]

Walks the template (loaded with cfnlint.decode, which knows the short-form tags) and prints one
line per misuse CloudFormation would reject at deploy time, then exits 1 if there was any:
  - a Fn::Join or Fn::Split delimiter that is not a literal string;
  - a Fn::Sub whose template is not a literal string, whose variable map is not a literal map
    (or has keys that are not plain names), or whose ${Name} names nothing;
  - a Ref or Fn::GetAtt to a parameter/resource that is not defined (in Conditions and Rules,
    a Ref may only name a parameter or a pseudo parameter);
  - a Condition (resource or output attribute, !Condition, the first argument of !If) that is
    not defined in Conditions; a DependsOn naming no resource; an unknown Fn:: function.
Resources that SAM generates (FunctionRole, FunctionUrl, the schedule's rule, ...) count as
defined. scripts/test_check_template.py proves each rule rejects a fixture.
"""
import re
import sys

from cfnlint.decode import decode

PSEUDO = {
    "AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
    "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}
KNOWN_FN = {
    "Fn::And", "Fn::Base64", "Fn::Cidr", "Fn::Contains", "Fn::EachMemberEquals",
    "Fn::EachMemberIn", "Fn::Equals", "Fn::FindInMap", "Fn::GetAtt", "Fn::GetAZs", "Fn::If",
    "Fn::ImportValue", "Fn::Join", "Fn::Length", "Fn::Not", "Fn::Or", "Fn::RefAll", "Fn::Select",
    "Fn::Split", "Fn::Sub", "Fn::ToJsonString", "Fn::Transform", "Fn::ValueOf", "Fn::ValueOfAll",
    "Fn::ForEach",
}
SUB_VAR = re.compile(r"\$\{([^}]*)\}")
SUB_KEY = re.compile(r"^[A-Za-z0-9_]+$")


def line_of(node):
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else 0


def sam_generated(resources, globals_):
    """Logical ids the SAM transform adds, which a template may Ref or GetAtt."""
    out = set()
    gfn = (globals_ or {}).get("Function", {}) or {}
    for rid, res in resources.items():
        if not isinstance(res, dict) or res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties", {}) or {}
        if "Role" not in props:
            out.add(rid + "Role")
        if "FunctionUrlConfig" in props or "FunctionUrlConfig" in gfn:
            out.add(rid + "Url")
        if "EventInvokeConfig" in props or "EventInvokeConfig" in gfn:
            out.add(rid + "EventInvokeConfig")
        if "AutoPublishAlias" in props or "AutoPublishAlias" in gfn:
            out.update({rid + "Alias", rid + "Version"})
        for ev in (props.get("Events") or {}):
            out.update({rid + ev, rid + ev + "Permission", rid + ev + "Role"})
    return out


class Checker:
    def __init__(self, path, tpl):
        self.path = path
        self.problems = []
        self.params = set(tpl.get("Parameters") or {})
        self.resources = set(tpl.get("Resources") or {})
        self.resources |= sam_generated(tpl.get("Resources") or {}, tpl.get("Globals"))
        self.conditions = set(tpl.get("Conditions") or {})
        self.mappings = set(tpl.get("Mappings") or {})
        self.tpl = tpl

    def fail(self, node, msg):
        self.problems.append(f"{self.path}:{line_of(node)}: {msg}")

    # -- sections ---------------------------------------------------------------------------
    def run(self):
        t = self.tpl
        for name, cond in (t.get("Conditions") or {}).items():
            self.walk(cond, "Conditions")
        for name, rule in (t.get("Rules") or {}).items():
            self.walk(rule, "Rules")
        for rid, res in (t.get("Resources") or {}).items():
            if not isinstance(res, dict):
                continue
            self.check_condition_name(res.get("Condition"), res, f"resource {rid}")
            deps = res.get("DependsOn")
            for dep in [deps] if isinstance(deps, str) else deps or []:
                if dep not in self.resources:
                    self.fail(res, f"resource {rid}: DependsOn {dep}: no such resource")
            for key in ("Properties", "Metadata", "UpdatePolicy", "CreationPolicy"):
                if key in res:
                    self.walk(res[key], "Resources")
        self.walk(t.get("Globals") or {}, "Resources")
        for oid, out in (t.get("Outputs") or {}).items():
            if isinstance(out, dict):
                self.check_condition_name(out.get("Condition"), out, f"output {oid}")
            self.walk(out, "Outputs")
        return self.problems

    def check_condition_name(self, name, node, where):
        if name is None:
            return
        if not isinstance(name, str):
            self.fail(node, f"{where}: Condition must be a condition name, got {name!r}")
        elif name not in self.conditions:
            self.fail(node, f"{where}: Condition {name}: not defined in Conditions")

    # -- the walk -------------------------------------------------------------------------------
    def walk(self, node, section):
        if isinstance(node, list):
            for item in node:
                self.walk(item, section)
            return
        if not isinstance(node, dict):
            return
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(node, arg, section)
            if key == "Condition" and section in ("Conditions", "Rules"):
                return self.check_condition_name(arg, node, "!Condition")
            if key.startswith("Fn::"):
                handler = getattr(self, "fn_" + key[4:].lower(), None)
                if key not in KNOWN_FN:
                    self.fail(node, f"{key}: not an intrinsic function CloudFormation knows")
                if handler:
                    handler(node, arg, section)
                else:
                    self.walk(arg, section)
                return
        for key, value in node.items():
            self.walk(value, section)

    def ref(self, node, name, section):
        if not isinstance(name, str):
            return self.fail(node, f"Ref takes a literal name, got {name!r}")
        if name in PSEUDO or name in self.params:
            return
        if section in ("Conditions", "Rules"):
            where = "a resource" if name in self.resources else "nothing"
            return self.fail(node, f"Ref {name} in {section}: names {where}; only parameters and pseudo parameters are allowed here")
        if name not in self.resources:
            self.fail(node, f"Ref {name}: no such parameter or resource")

    def fn_getatt(self, node, arg, section):
        if isinstance(arg, str):
            res, _, attr = arg.partition(".")
        elif isinstance(arg, list) and len(arg) == 2:
            res, attr = arg
            self.walk(attr, section)
        else:
            return self.fail(node, f"Fn::GetAtt takes [resource, attribute], got {arg!r}")
        if not isinstance(res, str):
            self.fail(node, f"Fn::GetAtt: the resource must be a literal name, got {res!r}")
        elif section in ("Conditions", "Rules"):
            self.fail(node, f"Fn::GetAtt {res} in {section}: not allowed there")
        elif res not in self.resources:
            self.fail(node, f"Fn::GetAtt {res}.{attr}: no such resource")

    def fn_join(self, node, arg, section):
        if not (isinstance(arg, list) and len(arg) == 2):
            return self.fail(node, f"Fn::Join takes [delimiter, list], got {arg!r}")
        if not isinstance(arg[0], str):
            self.fail(node, f"Fn::Join delimiter must be a literal string, got {dict(arg[0]) if isinstance(arg[0], dict) else arg[0]!r}")
        self.walk(arg, section)

    def fn_split(self, node, arg, section):
        if not (isinstance(arg, list) and len(arg) == 2):
            return self.fail(node, f"Fn::Split takes [delimiter, string], got {arg!r}")
        if not isinstance(arg[0], str):
            self.fail(node, f"Fn::Split delimiter must be a literal string, got {dict(arg[0]) if isinstance(arg[0], dict) else arg[0]!r}")
        self.walk(arg, section)

    def fn_sub(self, node, arg, section):
        variables = {}
        if isinstance(arg, list):
            if len(arg) != 2:
                return self.fail(node, f"Fn::Sub takes a string or [string, map], got {len(arg)} arguments")
            text, mapping = arg
            if not isinstance(mapping, dict) or any(k == "Ref" or k.startswith("Fn::") for k in mapping):
                # The names it defines are unknown: do not report every ${Name} as well.
                return self.fail(node, "Fn::Sub variable map must be a literal map of names to values, not a function")
            else:
                for key, value in mapping.items():
                    if not isinstance(key, str) or not SUB_KEY.match(key):
                        self.fail(node, f"Fn::Sub variable map key {key!r} must be a plain name (letters, digits, _)")
                    self.walk(value, section)
                variables = mapping
        else:
            text = arg
        if not isinstance(text, str):
            return self.fail(node, f"Fn::Sub template must be a literal string, got {text!r}")
        for var in SUB_VAR.findall(text):
            if var.startswith("!"):
                continue
            name = var.strip()
            if name in variables or name in PSEUDO or name in self.params:
                continue
            res = name.split(".", 1)[0]
            if "." in name and res in self.resources:
                continue
            if name in self.resources:
                continue
            self.fail(node, f"Fn::Sub ${{{name}}}: no such variable, parameter or resource")

    def fn_if(self, node, arg, section):
        if not (isinstance(arg, list) and len(arg) == 3):
            return self.fail(node, f"Fn::If takes [condition, then, else], got {arg!r}")
        if not isinstance(arg[0], str):
            self.fail(node, f"Fn::If condition must be a literal condition name, got {arg[0]!r}")
        elif arg[0] not in self.conditions:
            self.fail(node, f"Fn::If {arg[0]}: condition not defined in Conditions")
        self.walk(arg[1:], section)

    def fn_findinmap(self, node, arg, section):
        if isinstance(arg, list) and arg and isinstance(arg[0], str) and arg[0] not in self.mappings:
            self.fail(node, f"Fn::FindInMap {arg[0]}: no such mapping")
        self.walk(arg, section)

    def fn_select(self, node, arg, section):
        if not (isinstance(arg, list) and len(arg) == 2):
            return self.fail(node, f"Fn::Select takes [index, list], got {arg!r}")
        self.walk(arg, section)


def check(path):
    tpl, matches = decode(path)
    if matches:
        return [f"{path}: cannot load: {m.message}" for m in matches]
    return Checker(path, tpl).run()


def main(paths):
    problems = [p for path in paths for p in check(path)]
    for p in problems:
        print(p)
    if problems:
        print(f"check_template: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_template: {', '.join(paths)}: intrinsic functions OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["template.yaml"]))
