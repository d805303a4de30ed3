#!/usr/bin/env python3
"""Tests of scripts/check_template.py, so the check cannot silently pass (run by `make validate`).

Every fixture in scripts/fixtures/check_template/ is a broken template with `# expect: TEXT`
lines: the checker must report each TEXT and nothing else. join-delimiter.yaml is the hosted-zone
policy of template.yaml before the fix (CloudFormation rejected it; cfn-lint 1.58 did not).
The real template must pass.
"""
import pathlib
import sys

here = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(here))
import check_template  # noqa: E402

failures = []
fixtures = sorted((here / "fixtures" / "check_template").glob("*.yaml"))
if len(fixtures) < 5:
    failures.append(f"expected the 5 fixtures, found {len(fixtures)}")
for fx in fixtures:
    expected = [line.split("# expect:", 1)[1].strip()
                for line in fx.read_text().splitlines() if line.startswith("# expect:")]
    problems = check_template.check(str(fx))
    if not expected:
        failures.append(f"{fx.name}: no '# expect:' line")
    for text in expected:
        if not any(text in p for p in problems):
            failures.append(f"{fx.name}: not reported: {text!r} (got {problems})")
    for p in problems:
        if not any(text in p for text in expected):
            failures.append(f"{fx.name}: unexpected problem: {p}")
    print(f"  {fx.name}: {len(problems)} problem(s) found, {len(expected)} expected")

template = here.parent / "template.yaml"
problems = check_template.check(str(template))
if problems:
    failures.append(f"template.yaml must pass: {problems}")

for f in failures:
    print("FAIL " + f)
if failures:
    sys.exit(1)
print(f"test_check_template: {len(fixtures)} broken fixtures rejected, template.yaml accepted")
