"""The step images: pinned multi-stage builds, non-root, read-only-root friendly, OCI-labelled, with the
``genosynth`` entrypoint. Built for real where a container engine answers (``make images``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {kind: REPO / "images" / kind / "Dockerfile" for kind in ("cpu", "gpu")}


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _resolve(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_bases_are_pinned_and_the_build_is_multi_stage(kind):
    instructions = _instructions(DOCKERFILES[kind])
    args = dict(a.split("=", 1) for w, a in instructions if w == "ARG" and "=" in a)
    bases = [_resolve(a.split()[0], args) for w, a in instructions if w == "FROM"]
    assert len(bases) >= 2, "expected a build stage and a runtime stage"
    for base in bases:
        name, _, tag = base.rpartition(":")
        assert name and tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"unpinned base {base}"
    assert any(w == "COPY" and a.startswith("--from=build") for w, a in instructions)


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_runtime_is_non_root_read_only_friendly_and_labelled(kind):
    instructions = _instructions(DOCKERFILES[kind])
    runtime = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM"):]
    users = [a for w, a in runtime if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    assert users[-1] == "10001:10001", "must match the WorkflowTemplate's runAsUser/runAsGroup"
    env = " ".join(a for w, a in runtime if w == "ENV")
    for variable in ("HOME=/tmp", "TMPDIR=/tmp", "MPLCONFIGDIR=/tmp"):
        assert variable in env
    labels = " ".join(a for w, a in runtime if w == "LABEL")
    for key in ("title", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    entrypoint = [json.loads(a) for w, a in runtime if w == "ENTRYPOINT"]
    assert entrypoint == [["genosynth"]]


def test_cpu_image_has_gemma_and_cpu_torch():
    text = DOCKERFILES["cpu"].read_text()
    assert re.search(r"apt-get install[^\n]*\bgemma\b", text)
    assert "TORCH_VERSION=2.13.0" in text and "/whl/cpu" in text


def test_gpu_image_has_a_cuda_base_and_cuda_torch():
    text = DOCKERFILES["gpu"].read_text()
    assert re.search(r"CUDA_IMAGE=nvidia/cuda:\d+\.\d+\.\d+-", text)
    assert "TORCH_VERSION=2.13.0" in text and "/whl/${TORCH_CUDA}" in text


def _engine() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _engine(), reason="no container engine answers `docker info` (see docs/deploy.md)")
def test_cpu_image_builds_and_runs_as_non_root_on_a_read_only_root():
    subprocess.run(["docker", "build", "-f", str(DOCKERFILES["cpu"]), "-t", "genosynth-cpu:test", str(REPO)],
                   check=True)
    result = subprocess.run(["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "genosynth-cpu:test",
                             "version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip()
    user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", "genosynth-cpu:test", "-u"],
                          capture_output=True, text=True, check=True)
    assert user.stdout.strip() == "10001"


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_python_dependencies_come_from_the_hashed_lock(kind):
    instructions = _instructions(DOCKERFILES[kind])
    installs = [a for w, a in instructions if w == "RUN" and "pip install" in a]
    lock = f"images/{kind}/requirements.lock"
    assert any(w == "COPY" and a.split()[0] == lock for w, a in instructions)
    assert any("--require-hashes" in a and "-r requirements.lock" in a for a in installs)
    for command in installs:
        # Nothing else resolves from an index: genosynth and the lock go in without dependencies; torch
        # alone comes from PyTorch's index, pinned to an exact version.
        assert "--no-deps" in command or "torch==${TORCH_VERSION}" in command, command
        if "torch==" in command:
            assert "download.pytorch.org" in command
    text = (REPO / lock).read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, flags=re.M)
    assert len(pins) > 40 and not any(name.lower() in ("torch", "genosynth") for name, _ in pins)
    for block in re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text):
        if re.match(r"[A-Za-z0-9_.-]+==", block):
            assert "--hash=sha256:" in block, block.splitlines()[0]
    assert {"numpy", "scipy", "hera", "pydantic", "gcsfs", "sympy"} <= {name.lower() for name, _ in pins}


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_apt_packages_are_pinned(kind):
    for word, command in _instructions(DOCKERFILES[kind]):
        if word == "RUN" and "apt-get install" in command:
            packages = command.split("apt-get install", 1)[1].split("&&")[0].split()
            names = [p.strip('"') for p in packages if not p.startswith("-") and "SNAPSHOT" not in p]
            snapshot = "--snapshot" in command and "apt-get update --snapshot" in command
            assert names and (snapshot or all("=" in n for n in names)), command
