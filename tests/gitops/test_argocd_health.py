"""The Argo CD health check (gitops/argocd/health.lua) run by a Lua 5.1
interpreter (the dialect of Argo CD's) on the statuses the operator computes
(tests/kstatus/cases.json, kept current by the operator's status tests) and,
when KITH_STATUS_SAMPLES names a directory, on the statuses the integration
and e2e tests recorded there; and the argocd-cm entry that ships it kept
identical to it."""

import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "gitops" / "argocd" / "health.lua"
CASES = json.loads((ROOT / "tests" / "kstatus" / "cases.json").read_text())
SAMPLES_DIR = os.environ.get("KITH_STATUS_SAMPLES")
SAMPLES = (
    [json.loads(p.read_text()) for p in sorted(pathlib.Path(SAMPLES_DIR).glob("*.json"))]
    if SAMPLES_DIR
    else []
)
LUA = shutil.which("lua5.1")

# kstatus' reading -> Argo CD's, except where Argo CD has a word of its own.
ARGO = {"Current": "Healthy", "InProgress": "Progressing", "Failed": "Degraded"}


def argo_word(case):
    if case["want"] == "Current" and case["object"]["status"].get("phase") == "Suspended":
        return "Suspended"
    return ARGO[case["want"]]


def lua_literal(value):
    """A JSON value as a Lua table constructor (strings escaped, never code)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        safe = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:-_/"
        return '"' + "".join(chr(b) if b in safe else "\\%03d" % b for b in value.encode()) + '"'
    if isinstance(value, list):
        return "{" + ",".join(lua_literal(v) for v in value) + "}"
    return "{" + ",".join("[%s]=%s" % (lua_literal(k), lua_literal(v)) for k, v in value.items()) + "}"


def health(obj):
    program = (
        "obj = " + lua_literal(obj) + "\n"
        "local run = assert(loadfile(" + lua_literal(str(SCRIPT)) + "))\n"
        "local h = run()\n"
        "io.write(h.status, '\\n', h.message or '')\n"
    )
    out = subprocess.run([LUA, "-"], input=program, capture_output=True, text=True, check=True).stdout
    status, _, message = out.partition("\n")
    return status, message


needs_lua = pytest.mark.skipif(LUA is None, reason="lua5.1 not installed (make build-deps installs it)")


@needs_lua
@pytest.mark.parametrize("case", CASES + SAMPLES, ids=[c["name"] for c in CASES + SAMPLES])
def test_each_status_reads_as_argo_cd_should(case):
    status, message = health(case["object"])
    assert status == argo_word(case), message
    if status == "Degraded":
        stalled = next(c for c in case["object"]["status"]["conditions"] if c["type"] == "Stalled")
        assert stalled["reason"] in message


@needs_lua
def test_a_spec_the_operator_has_not_seen_is_progressing():
    obj = json.loads(json.dumps(CASES[0]["object"]))
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
    assert health(obj)[0] == "Progressing"
    del obj["status"]
    assert health(obj)[0] == "Progressing"


@needs_lua
def test_an_operator_without_stalled_is_read_from_degraded():
    failed = next(c for c in CASES if c["want"] == "Failed")
    obj = json.loads(json.dumps(failed["object"]))
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"]
                                   if c["type"] not in ("Stalled", "Reconciling")]
    assert health(obj)[0] == "Degraded"


def test_the_argocd_cm_entry_is_the_script():
    text = (ROOT / "gitops" / "argocd" / "argocd-cm.yaml").read_text()
    key = "  resource.customizations.health.kith.dev_ProfilePipeline: |\n"
    assert key in text
    block = text.split(key, 1)[1]
    lines = [re.sub(r"^    ", "", l) for l in block.splitlines(True)]
    assert "".join(lines) == SCRIPT.read_text()


@pytest.mark.skipif(not SAMPLES_DIR, reason="KITH_STATUS_SAMPLES not set (make test sets it)")
def test_the_scenarios_recorded_every_phase_they_reach():
    # The lifecycle scenarios reach at least these: an empty directory means
    # the recording broke, not that everything passed.
    phases = {c["object"]["status"]["phase"] for c in SAMPLES}
    for phase in ["Deploying", "Running", "Upgrading", "Suspended", "Failed", "RolledBack"]:
        assert phase in phases, f"no recorded status in phase {phase}; recorded: {sorted(phases)}"
