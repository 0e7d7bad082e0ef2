"""The alerts of the chart's PrometheusRule, with promtool built from its Go
module (tests/prometheus/promtool.sh): the rules as the chart renders them
with its default values pass `promtool check rules`, every alert carries a
severity and what to do, and tests/prometheus/alerts_test.yaml, run by
`promtool test rules` against them, makes each alert fire where it should
and stay quiet where it should not."""

import pathlib
import shutil
import subprocess

import pytest
import yaml

from test_chart import helm, objects, template  # noqa: F401 (helm is a fixture)

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "tests" / "prometheus"
UNIT_TESTS = PROMETHEUS / "alerts_test.yaml"
# The name alerts_test.yaml's rule_files gives the rendered rules.
RULES = "kith.rules.yaml"
SEVERITIES = {"critical", "warning", "info"}


@pytest.fixture(scope="session")
def promtool():
    out = subprocess.run(["bash", str(PROMETHEUS / "promtool.sh")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def groups(helm):
    # The chart's defaults, so the thresholds tested are those it ships.
    objs = objects(template(helm, "--set", "metrics.prometheusRule.enabled=true"))
    rule = next(o for o in objs if o["kind"] == "PrometheusRule")
    return rule["spec"]["groups"]


@pytest.fixture()
def rules_dir(groups, tmp_path):
    (tmp_path / RULES).write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return tmp_path


def alerts(groups):
    return [r for g in groups for r in g["rules"] if "alert" in r]


def promtool_run(promtool, cwd, *args):
    out = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, f"promtool {' '.join(args)} exited {out.returncode}:\n{out.stdout}{out.stderr}"
    return out.stdout


def test_the_rendered_rules_are_valid(promtool, rules_dir, groups):
    out = promtool_run(promtool, rules_dir, "check", "rules", RULES)
    assert f"SUCCESS: {len(alerts(groups))} rules found" in out, out


def test_every_alert_fires_and_stays_quiet_as_alerts_test_yaml_says(promtool, rules_dir):
    promtool_run(promtool, rules_dir, "test", "rules", UNIT_TESTS.name)


def test_every_alert_has_a_firing_and_a_quiet_case(groups):
    unit = yaml.safe_load(UNIT_TESTS.read_text())
    assert unit["rule_files"] == [RULES]
    cases = [c for t in unit["tests"] for c in t.get("alert_rule_test", [])]
    names = {r["alert"] for r in alerts(groups)}
    # promtool passes a quiet case for an alert no rule defines.
    unknown = {c["alertname"] for c in cases} - names
    assert not unknown, f"{UNIT_TESTS.name} tests alerts the chart does not define: {sorted(unknown)}"
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert not names - firing, f"no case in {UNIT_TESTS.name} where these fire: {sorted(names - firing)}"
    assert not names - quiet, f"no case in {UNIT_TESTS.name} where these stay quiet: {sorted(names - quiet)}"


def test_every_alert_says_how_bad_it_is_and_what_to_do(groups):
    rules = alerts(groups)
    assert len(rules) >= 11
    for rule in rules:
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert annotations.get(key, "").strip(), f"{rule['alert']} has no {key} annotation"
