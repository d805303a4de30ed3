#!/usr/bin/env bash
# make terraform-test: the Terraform module (deploy/terraform) applied against moto, offline.
#   scripts/with-moto.sh scripts/terraform-test.sh ZIP
# fmt -check, init from the local provider mirror, validate, apply the example with the real zip,
# plan -detailed-exitcode (no changes), switch to hmac + S3 config (apply, no changes again),
# compare the IAM policy with template.yaml (scripts/check_policy_parity.py, also on a plan of a
# minimal variant), destroy. Prints a SKIPPED line and succeeds when terraform is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if ! command -v terraform >/dev/null; then
  echo "terraform-test: SKIPPED - terraform is not installed (https://developer.hashicorp.com/terraform/install)"
  exit 0
fi
zip=${1:?usage: terraform-test.sh LAMBDA_ZIP}
[ -f "$zip" ] || { echo "terraform-test: $zip not found: make build-lambda" >&2; exit 1; }
zip=$(cd "$(dirname "$zip")" && pwd)/$(basename "$zip")
: "${AWS_ENDPOINT_URL:?run through scripts/with-moto.sh (make terraform-test does)}"
py=$here/.venv/bin/python

# Everything generated lives here (git-ignored): the CLI config, the copied module, state, plans.
work=$here/target/terraform-test
rm -rf "$work" && mkdir -p "$work"
cp -r deploy/terraform "$work/terraform"
find "$work/terraform" \( -name .terraform -o -name '*.tfstate*' -o -name .terraform.lock.hcl \) -prune -exec rm -rf {} +
ex=$work/terraform/examples/complete

# The provider from the local filesystem mirror (no network). TF_PLUGIN_MIRROR overrides the search.
mirror=${TF_PLUGIN_MIRROR:-}
if [ -z "$mirror" ]; then
  for d in /opt/tf-plugins "$HOME/.terraform.d/plugins" "$HOME/.local/share/terraform/plugins" \
           /usr/local/share/terraform/plugins /usr/share/terraform/plugins; do
    if [ -d "$d/registry.terraform.io/hashicorp/aws" ]; then mirror=$d; break; fi
  done
fi
export TF_CLI_CONFIG_FILE=$work/terraform.rc
if [ -n "$mirror" ]; then
  printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n' "$mirror" >"$TF_CLI_CONFIG_FILE"
  echo "terraform-test: provider from the local mirror $mirror"
else
  : >"$TF_CLI_CONFIG_FILE"
  echo "terraform-test: no local provider mirror found (TF_PLUGIN_MIRROR): init uses the registry (network)"
fi
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
tf() { terraform -chdir="$ex" "$@"; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
times=()

echo "== terraform fmt -check"
terraform fmt -check -recursive -diff deploy/terraform
echo "== terraform init (offline)"
tf init -input=false -no-color >"$work/init.log" || { cat "$work/init.log"; exit 1; }
grep -E 'Installed|Using' "$work/init.log" || true
echo "== terraform validate"
tf validate -no-color

vars=(-var "aws_endpoint_url=$AWS_ENDPOINT_URL" -var "lambda_zip=$zip" -var "architecture=${LAMBDA_ARCH:-arm64}"
  -var "alarm_email=ops@example.com")
apply_and_replan() { # $1: label; the rest: extra -var flags
  local label=$1; shift
  echo "== terraform apply ($label)"
  local t=$(now)
  tf apply -auto-approve -no-color "${vars[@]}" "$@" >"$work/apply-$label.log" 2>&1 || { cat "$work/apply-$label.log"; exit 1; }
  times+=("apply ($label) $(took "$t") s")
  grep -E '^Apply complete' "$work/apply-$label.log"
  echo "== terraform plan -detailed-exitcode ($label): must be no changes"
  t=$(now)
  local rc=0
  tf plan -detailed-exitcode -no-color "${vars[@]}" "$@" >"$work/plan-$label.log" 2>&1 || rc=$?
  times+=("plan ($label) $(took "$t") s")
  if [ "$rc" != 0 ]; then
    cat "$work/plan-$label.log"
    echo "terraform-test: FAILED - plan after apply ($label) is not empty (exit $rc)" >&2
    exit 1
  fi
  grep -E '^No changes' "$work/plan-$label.log"
  tf show -json >"$work/state-$label.json"
  "$py" scripts/check_policy_parity.py "$work/state-$label.json"
  check_front_door "$work/state-$label.json"
}

# What moto holds for the webhook: the URL's auth type, who may invoke, both concurrencies.
check_front_door() {
  "$py" - "$1" <<'PY'
import json, sys, boto3
out = {k: v["value"] for k, v in json.load(open(sys.argv[1]))["values"]["outputs"].items()}
hmac = out["module_inputs"]["webhook_auth"] == "hmac"
lam = boto3.client("lambda")
web, router = out["webhook_function_name"], out["router_function_name"]
auth = lam.get_function_url_config(FunctionName=web)["AuthType"]
assert auth == ("NONE" if hmac else "AWS_IAM"), auth
try:
    stmts = json.loads(lam.get_policy(FunctionName=web)["Policy"])["Statement"]
except lam.exceptions.ResourceNotFoundException:
    stmts = []
public = sorted({s["Action"] for s in stmts if s.get("Principal") == "*"})
assert public == (["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"] if hmac else []), public
conc = {f: lam.get_function_concurrency(FunctionName=f)["ReservedConcurrentExecutions"] for f in (router, web)}
assert conc == {router: 1, web: 2}, conc
try:
    lam.get_function_url_config(FunctionName=router)
    raise AssertionError(f"{router} has a function URL")
except lam.exceptions.ResourceNotFoundException:
    pass
print(f"  front door: URL AuthType {auth}, public statements {public or 'none'}, reserved concurrency {conc}")
PY
}

apply_and_replan iam-inline
secret=$("$py" -c 'import secrets; print(secrets.token_hex(32))')
apply_and_replan hmac-s3 -var webhook_auth=hmac -var "webhook_secret=$secret" -var config_source=s3

echo "== policy parity on a plan of the minimal variant (no target groups, no zones, inline config)"
tf plan -no-color -out="$work/minimal.tfplan" "${vars[@]}" -var route_target_groups=false \
  -var route_zones=false -var manage_target_group_settings=false >"$work/plan-minimal.log" 2>&1 \
  || { cat "$work/plan-minimal.log"; exit 1; }
tf show -json "$work/minimal.tfplan" >"$work/plan-minimal.json"
"$py" scripts/check_policy_parity.py "$work/plan-minimal.json"

echo "== terraform destroy"
t=$(now)
tf destroy -auto-approve -no-color "${vars[@]}" -var webhook_auth=hmac -var "webhook_secret=$secret" \
  -var config_source=s3 >"$work/destroy.log" 2>&1 || { cat "$work/destroy.log"; exit 1; }
times+=("destroy $(took "$t") s")
grep -E '^Destroy complete' "$work/destroy.log"
printf 'terraform-test: OK (%s)\n' "$(IFS=,; echo "${times[*]}" | sed 's/,/, /g')"
