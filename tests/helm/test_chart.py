"""The Helm chart (charts/kith), with the helm CLI built from its Go module
(tests/helm/helm.sh): lint, the rendered objects for a few value sets against
golden files, values the schema refuses, the CRDs and metric names it ships,
and install, upgrade and uninstall on the test API server.

KITH_REGENERATE=1 rewrites the golden files (review the diff, then commit)."""

import json
import os
import pathlib
import re
import subprocess
import uuid

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kith"
HERE = pathlib.Path(__file__).resolve().parent
VALUE_SETS = sorted(p.stem for p in (HERE / "values").glob("*.yaml"))


@pytest.fixture(scope="session")
def helm():
    out = subprocess.run(["bash", str(HERE / "helm.sh")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def run(helm, *args, check=True):
    out = subprocess.run([helm, *args], capture_output=True, text=True)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def template(helm, *args):
    return run(helm, "template", "kith", str(CHART), "--namespace", "kith-system", *args).stdout


def objects(text):
    return [d for d in yaml.safe_load_all(text) if d]


def test_lint_is_clean(helm):
    out = run(helm, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rendered_objects_match_the_golden_files(helm, name):
    rendered = template(helm, "-f", str(HERE / "values" / f"{name}.yaml"))
    golden = HERE / "golden" / f"{name}.yaml"
    if os.environ.get("KITH_REGENERATE"):
        golden.write_text(rendered)
    assert golden.exists(), f"no {golden.relative_to(ROOT)}: run with KITH_REGENERATE=1"
    assert rendered == golden.read_text(), (
        f"charts/kith renders differently from {golden.relative_to(ROOT)}: "
        "if the change is intended, run `KITH_REGENERATE=1 python3 -m pytest tests/helm` and commit the diff")


def test_a_cluster_wide_install_binds_one_cluster_role(helm):
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects(template(helm))]
    assert ("ClusterRole", "kith") in kinds and ("ClusterRoleBinding", "kith") in kinds
    assert ("PodDisruptionBudget", "kith") in kinds


def test_a_namespaced_install_has_nothing_cluster_wide_but_the_crds(helm):
    objs = objects(template(helm, "-f", str(HERE / "values" / "namespaced.yaml")))
    cluster_scoped = {o["kind"] for o in objs if "namespace" not in o["metadata"]}
    assert cluster_scoped == {"CustomResourceDefinition"}
    roles = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs if o["kind"] == "Role"}
    assert roles == {("customers", "kith"), ("partners", "kith"), ("kith-system", "kith-leader")}
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KITH_WATCH_NAMESPACES"] == "customers,partners"


def test_the_operator_runs_restricted(helm):
    deployment = next(o for o in objects(template(helm)) if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    container = pod["containers"][0]["securityContext"]
    assert container == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                         "capabilities": {"drop": ["ALL"]}}


@pytest.mark.parametrize("values,named", [
    (["--set", "replicaCount=0"], "/replicaCount"),
    (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    (["--set-json", 'watchNamespaces=["Not_A_Namespace"]'], "/watchNamespaces/0"),
    (["--set", "metrics.service.port=80"], "/metrics/service/port"),
    (["--set", "metrics.serviceMonitor.interval=often"], "/metrics/serviceMonitor/interval"),
    (["--set", "replicas=2"], "'replicas' not allowed"),
])
def test_bad_values_are_refused_naming_the_value(helm, values, named):
    out = run(helm, "template", "kith", str(CHART), *values, check=False)
    assert out.returncode != 0
    assert named in out.stderr, out.stderr


def test_the_charts_crds_are_the_repositorys(helm):
    ours = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_text() for p in (CHART / "files" / "crds").glob("*.yaml")}
    assert chart == ours, "charts/kith/files/crds differs from crds/: copy crds/*.yaml there"
    rendered = {o["metadata"]["name"]: o for o in objects(template(helm)) if o["kind"] == "CustomResourceDefinition"}
    for text in ours.values():
        crd = yaml.safe_load(text)
        got = rendered[crd["metadata"]["name"]]
        assert got["spec"] == crd["spec"]
        assert got["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    off = objects(template(helm, "--set", "crds.install=false"))
    assert not [o for o in off if o["kind"] == "CustomResourceDefinition"]


def metric_names_in_source():
    names = set()
    for path in list((ROOT / "runner" / "src").rglob("*.rs")) + list((ROOT / "operator" / "src").rglob("*.rs")):
        names.update(re.findall(r'"(kith_[a-z_]+)"', path.read_text()))
    return names


def test_alerts_and_dashboard_name_only_metrics_that_exist(helm):
    known = metric_names_in_source()
    assert "kith_records" in known and "kith_operator_leader" in known
    values = HERE / "values" / "monitoring.yaml"
    objs = objects(template(helm, "-f", str(values)))
    rule = next(o for o in objs if o["kind"] == "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    dashboard = json.loads(next(o for o in objs if o["kind"] == "ConfigMap")["data"]["kith.json"])
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) > 20
    for expr in exprs:
        for name in re.findall(r"\bkith_[a-z_]+", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in known or base in known, f"{name} in {expr!r} is no metric of the runner or the operator"


@pytest.fixture()
def cluster():
    env = ROOT / "target" / "services.env"
    if not env.exists() or "KUBECONFIG" not in env.read_text():
        pytest.skip("the test API server is not running (tests/services/up.sh kube)")
    values = dict(re.findall(r"^(?:export )?([A-Z_]+)=['\"]?([^'\"\n]*)", env.read_text(), re.M))
    return values["KUBECONFIG"], values["KUBECTL"]


def test_install_upgrade_and_uninstall_leave_only_the_crds(helm, cluster):
    kubeconfig, kubectl = cluster
    namespace = "helm-" + uuid.uuid4().hex[:8]
    release = "kith-" + namespace
    base = ["--kubeconfig", kubeconfig, "--namespace", namespace]

    def get(kind, name, ns=namespace):
        out = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "-n", ns, "get", kind, name, "-o", "json",
                              "--ignore-not-found"], capture_output=True, text=True, check=True).stdout
        return json.loads(out) if out.strip() else None

    # The CRDs outlive releases (kept on uninstall, or applied from crds/ by
    # other tests): a new release takes them over, as a reinstall must.
    run(helm, "install", release, str(CHART), *base, "--create-namespace", "--take-ownership",
        "--set-json", f'watchNamespaces=["{namespace}"]')
    try:
        fullname = release if "kith" in release else f"{release}-kith"
        deployment = get("deployment", fullname)
        assert deployment["spec"]["replicas"] == 2
        assert get("role", fullname) and get("rolebinding", fullname)
        assert get("crd", "profilepipelines.kith.dev", ns="default")

        run(helm, "upgrade", release, str(CHART), *base, "--set-json", f'watchNamespaces=["{namespace}"]',
            "--set", "replicaCount=3", "--set", "podDisruptionBudget.enabled=false")
        assert get("deployment", fullname)["spec"]["replicas"] == 3
        assert get("poddisruptionbudget", fullname) is None
    finally:
        run(helm, "uninstall", release, *base, "--wait")
    left = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "-n", namespace, "get",
                           "deployments,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets,configmaps",
                           "-l", f"app.kubernetes.io/instance={release}", "-o", "name"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == []
    # Kept on purpose: deleting a CRD deletes every pipeline.
    assert get("crd", "profilepipelines.kith.dev", ns="default")


def test_the_plain_install_manifest_grants_what_the_chart_grants(helm):
    # examples/k8s/install/operator.yaml is the install without Helm: its
    # ClusterRole must not drift from the chart's (both are written by hand).
    manifest = objects((ROOT / "examples" / "k8s" / "install" / "operator.yaml").read_text())
    theirs = next(o for o in manifest if o["kind"] == "ClusterRole")["rules"]
    ours = next(o for o in objects(template(helm)) if o["kind"] == "ClusterRole")["rules"]
    assert ours == theirs
