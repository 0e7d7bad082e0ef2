"""The Dockerfiles of images/ against what they package and where it runs:
each file a final stage copies is one the build stage writes, the binaries
are built --locked and stripped, the runtime has no shell and runs as the
numeric user the operator's and the chart's security contexts name, the
shared libraries the binaries need are in the runtime image, and every image
reference (chart, examples, install manifest) names one registry and the
workspace's version."""

import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMAGES = {"runner": "kith-runner", "operator": "kith-operator"}
REGISTRY = "ghcr.io/kith-dev"
# What gcr.io/distroless/cc-debian12 holds: glibc, libgcc, libstdc++, OpenSSL.
DISTROLESS_CC = {"linux-vdso.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "libstdc++.so.6",
                 "libdl.so.2", "libpthread.so.0", "librt.so.1", "ld-linux-x86-64.so.2",
                 "ld-linux-aarch64.so.1", "libssl.so.3", "libcrypto.so.3"}


def stages(name):
    """The Dockerfile's stages: (FROM line, [instructions]) with continuations joined."""
    text = (ROOT / "images" / f"{name}.Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            out.append((line, []))
        else:
            out[-1][1].append(line)
    return out


def workspace_version():
    return re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)


def runner_uid():
    source = (ROOT / "operator" / "src" / "build" / "deployment.rs").read_text()
    return int(re.search(r"const RUNNER_UID: i64 = (\d+);", source).group(1))


@pytest.mark.parametrize("name", IMAGES)
def test_the_build_stage_writes_what_the_runtime_copies(name):
    (build_from, build), (_, final) = stages(name)
    assert build_from.endswith(" AS build")
    runs = " ".join(i for i in build if i.startswith("RUN "))
    assert f"cargo build --release --locked -p {IMAGES[name]}" in runs
    assert f"strip -o /out/bin/{IMAGES[name]} target/release/{IMAGES[name]}" in runs
    copies = [i.split()[2:] for i in final if i.startswith("COPY --from=build ")]
    assert copies, "the final stage copies nothing from the build"
    for source, _ in copies:
        assert re.search(rf'(-o|cp -L (?:"[^"]*"|\S+)) {re.escape(source)}(\s|$)', runs), f"{source} is not written by the build stage"
    entrypoint = next(i for i in final if i.startswith("ENTRYPOINT "))
    assert re.fullmatch(r'ENTRYPOINT \["/[^"]+"\]', entrypoint), "exec form, no shell"
    assert entrypoint.split('"')[1] in {dest for _, dest in copies}


@pytest.mark.parametrize("name", IMAGES)
def test_the_runtime_has_no_shell_and_runs_as_the_pods_user(name):
    (_, _), (final_from, final) = stages(name)
    assert "distroless" in final_from and final_from.endswith(":nonroot")
    user = next(i for i in final if i.startswith("USER ")).split()[1]
    uid, gid = (int(x) for x in user.split(":"))
    assert uid == gid == runner_uid(), "the operator's pod security context for runners"
    chart = yaml.safe_load((ROOT / "charts" / "kith" / "templates" / "deployment.yaml").read_text()
                           .split("securityContext:\n", 1)[1].split("containers:", 1)[0]
                           .replace("{{", "").replace("}}", "")) or {}
    assert chart["runAsUser"] == chart["runAsGroup"] == uid, "the chart's pod security context"
    assert not [i for i in final if i.startswith("RUN ")], "nothing runs in the runtime image"


@pytest.mark.parametrize("name", IMAGES)
def test_the_runtime_holds_every_shared_library_the_binary_needs(name):
    binary = next((p for p in (ROOT / "target" / d / IMAGES[name] for d in ("release", "debug")) if p.exists()), None)
    if binary is None or shutil.which("ldd") is None:
        pytest.skip(f"no built {IMAGES[name]} to inspect")
    needed = {line.split()[0].rsplit("/", 1)[-1] for line in
              subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout.splitlines()
              if line.strip()}
    copied = {dest.rsplit("/", 1)[-1] for _, dest in
              (i.split()[2:] for i in stages(name)[1][1] if i.startswith("COPY --from=build "))}
    missing = needed - DISTROLESS_CC - copied
    assert not missing, f"{IMAGES[name]} needs {sorted(missing)}, which the runtime image lacks"


def test_image_references_name_one_registry_and_the_workspace_version():
    version = workspace_version()
    chart = yaml.safe_load((ROOT / "charts" / "kith" / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    values = yaml.safe_load((ROOT / "charts" / "kith" / "values.yaml").read_text())
    assert values["image"]["repository"] == f"{REGISTRY}/kith-operator"
    refs = []
    for path in (ROOT / "examples").rglob("*.yaml"):
        refs += re.findall(r"^\s*image:\s*(\S+)", path.read_text(), re.M)
    assert f"{REGISTRY}/kith-operator:{version}" in refs
    assert f"{REGISTRY}/kith-runner:{version}" in refs
    for ref in refs:
        assert ref in (f"{REGISTRY}/kith-operator:{version}", f"{REGISTRY}/kith-runner:{version}"), ref
    makefile = (ROOT / "Makefile").read_text()
    assert f"IMAGE_REGISTRY ?= {REGISTRY}" in makefile
