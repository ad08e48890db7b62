"""The deployment files: Kubernetes manifests against Kubernetes' schemas, compose.yaml's shape, and the Dockerfile's
install and start steps run as written (no Docker engine here: a fresh venv stands in for the image)."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aoai_gateway.config import load_settings

from .conftest import EMULATOR_KEY
from .servers import AsgiServer, free_port, wait_for_http

ROOT = Path(__file__).parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30"  # the oldest minor version the manifests must suit


def manifests() -> dict[str, dict[str, Any]]:
    """`Kind/name` -> the resource, from every manifest the kustomization lists."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    found = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((KUBERNETES / name).read_text()):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


# --- Kubernetes -------------------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(manifests()) == {
        "ConfigMap/aoai-gateway-config",
        "Secret/aoai-gateway-keys",
        "Deployment/aoai-gateway",
        "Service/aoai-gateway",
        "PodDisruptionBudget/aoai-gateway",
        "HorizontalPodAutoscaler/aoai-gateway",
    }


@pytest.mark.parametrize("name", sorted(manifests()))
def test_manifest_is_valid_kubernetes(name: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[test]'")
    # strict: the schemas without additionalProperties, so a misspelt field fails too. Offline: the package
    # ships the schemas.
    kubernetes_validate.validate(manifests()[name], KUBERNETES_VERSION, strict=True)


def test_the_schemas_catch_a_mistake() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[test]'")
    deployment = manifests()["Deployment/aoai-gateway"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    misspelt = json.loads(json.dumps(deployment))
    misspelt["spec"]["template"]["spec"]["containers"][0] = {**container, "livenesProbe": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)


def test_deployment_probes_security_and_drain(tmp_path: Path) -> None:
    found = manifests()
    deployment = found["Deployment/aoai-gateway"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile().user_id
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in ("/tmp", "/data"):  # spooled bodies, SQLite: writable although the root is not
        assert "emptyDir" in volumes[mounts[path]], path
    assert volumes[mounts["/etc/aoai-gateway"]]["configMap"]["name"] == "aoai-gateway-config"
    assert container["args"] == ["serve", "--config", "/etc/aoai-gateway/config.yaml"]
    assert container["envFrom"] == [{"secretRef": {"name": "aoai-gateway-keys"}}]
    # SIGKILL must not come before the preStop pause and the whole drain.
    settings = configmap_settings(tmp_path)
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > pause + settings.server.drain_seconds
    # The Service, the PodDisruptionBudget and the autoscaler all point at these pods.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert found["Service/aoai-gateway"]["spec"]["selector"].items() <= labels.items()
    assert found["Service/aoai-gateway"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert found["PodDisruptionBudget/aoai-gateway"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = found["HorizontalPodAutoscaler/aoai-gateway"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "aoai-gateway")
    assert found["HorizontalPodAutoscaler/aoai-gateway"]["spec"]["minReplicas"] >= 2  # the PDB can let one go


def configmap_settings(tmp_path: Path) -> Any:
    """The ConfigMap's config.yaml as the pod reads it: the Secret's entries are its environment (envFrom)."""
    found = manifests()
    path = tmp_path / "config.yaml"
    path.write_text(found["ConfigMap/aoai-gateway-config"]["data"]["config.yaml"])
    return load_settings(path, found["Secret/aoai-gateway-keys"]["stringData"])


def test_configmap_config_loads_with_the_secret(tmp_path: Path) -> None:
    settings = configmap_settings(tmp_path)
    assert {d.model for d in settings.deployments} == {"gpt-4o", "text-embedding-3-small"}
    assert all(d.key and d.key.startswith("replace-with-") for d in settings.deployments)
    assert settings.admin.master_key is not None
    assert settings.admin.master_key.get_secret_value() == "replace-with-a-long-random-admin-key"


# --- compose ----------------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_services_and_their_order() -> None:
    services = compose()["services"]
    assert set(services) == {"front", "gateway", "calls-worker", "emulator", "redis", "postgres", "rabbitmq"}
    # One published port, balanced over two gateway replicas that publish none (so they do not collide).
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {"front": ["8080:8080"]}
    assert services["gateway"]["deploy"]["replicas"] == 2
    for name in ("front", "gateway", "emulator", "redis", "postgres", "rabbitmq"):
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD" and check["interval"], name
    assert "/readyz" in " ".join(services["gateway"]["healthcheck"]["test"])
    for name, service in services.items():  # waits only on what can say it is healthy
        for needed, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"} and "healthcheck" in services[needed], name
    assert set(services["gateway"]["depends_on"]) == {"emulator", "redis", "postgres"}
    assert set(services["calls-worker"]["depends_on"]) == {"emulator", "postgres", "rabbitmq"}
    assert services["calls-worker"]["command"][:4] == ["aoai-gateway", "calls", "worker", "--queue"]
    assert services["calls-worker"]["command"][4].startswith("amqp://")
    # The drain fits in the grace period.
    drain = compose_settings().server.drain_seconds
    assert int(services["gateway"]["stop_grace_period"].removesuffix("s")) > drain
    for name in ("gateway", "calls-worker", "emulator"):
        assert services[name]["build"] == {"context": ".", "target": "full"}


def compose_settings() -> Any:
    return load_settings(ROOT / "deploy" / "compose" / "config.yaml", {})


def test_compose_files_exist_and_the_config_loads() -> None:
    services = compose()["services"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), source
    settings = compose_settings()
    assert settings.auth == "keys" and settings.redis_url and settings.database_url.startswith("postgresql://")
    assert settings.calls.queue_url == services["calls-worker"]["command"][4]
    hosts = {d.endpoint for d in settings.deployments}
    assert hosts == {"http://emulator:8081"}  # offline: the emulator is the upstream
    assert "server gateway:8080" in (ROOT / "deploy" / "compose" / "nginx.conf").read_text()


# --- Dockerfile -------------------------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Dockerfile:
    stages: dict[str, Stage]

    def chain(self, name: str) -> list[Stage]:
        """The stage and the stages it is built FROM, base first."""
        stages = []
        while name in self.stages:
            stages.insert(0, self.stages[name])
            name = self.stages[name].base
        return stages

    def all(self, name: str, keyword: str) -> list[str]:
        return [arg for stage in self.chain(name) for kw, arg in stage.instructions if kw == keyword]

    @property
    def user_id(self) -> int:
        return int(self.all("core", "USER")[-1].split(":")[0])


def dockerfile() -> Dockerfile:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arg = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = arg.partition(" AS ")
            current = stages[name.strip()] = Stage(name.strip(), base.strip())
        elif current is not None:
            current.instructions.append((keyword, arg.strip()))
    return Dockerfile(stages)


def env_of(stage: str, env: dict[str, str]) -> dict[str, str]:
    """The ENV lines of `stage` and its bases, applied on top of `env` (`$VAR` expanded as Docker does)."""
    result = dict(env)
    for line in dockerfile().all(stage, "ENV"):
        for pair in shlex.split(line):
            name, _, value = pair.partition("=")
            result[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: result.get(m.group(1), ""), value)
    return result


def test_dockerfile_targets_user_port_and_healthcheck() -> None:
    image = dockerfile()
    assert list(image.stages)[-1] == "core"  # `docker build .` makes the small image
    assert {"core", "full"} <= set(image.stages)
    for target in ("core", "full"):
        chain = [stage.name for stage in image.chain(target)]
        assert chain == ["runtime", target], chain
        assert image.all(target, "EXPOSE") == ["8080"]
        assert image.user_id != 0
        assert env_of(target, {})["LISTEN"] == "0.0.0.0:8080"  # the CLI's own default stays 127.0.0.1
        (check,) = image.all(target, "HEALTHCHECK")
        assert "/healthz" in check and "CMD [" in check
        assert json.loads(image.all(target, "CMD")[-1]) == ["aoai-gateway", "serve"]
    installs = {target: image.all(f"build-{target}", "RUN")[-1] for target in ("core", "full")}
    assert installs["core"].endswith("pip install -c requirements.lock .")
    assert installs["full"].endswith("""pip install -c requirements.lock ".[all]\"""")
    copied = [p for line in image.all("builder", "COPY") for p in line.split()[:-1]]
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for path in copied:  # the build context lets through what the COPY lines take
        assert f"!{path.rstrip('*').rstrip('/')}" in {line.rstrip("/") for line in ignore}, path


def run_stage_steps(target: str, workdir: Path) -> Path:
    """Run the COPY and RUN lines of `build-{target}` (and its bases) in `workdir`; return the venv made."""
    image = dockerfile()
    paths = {"/opt/venv": workdir / "venv", "/src": workdir / "src"}
    here = Path("/")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv must use what it installed
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python`: this interpreter
    env = env_of(f"build-{target}", env)
    for stage in image.chain(f"build-{target}"):
        for keyword, arg in stage.instructions:
            if keyword == "WORKDIR":
                here = paths.get(arg, Path(arg))
                here.mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                *sources, dest = arg.split()
                for pattern in sources:
                    for source in glob.glob(str(ROOT / pattern)):
                        to = here / dest / Path(source).name if dest.endswith("/") else here / dest
                        if Path(source).is_dir():
                            shutil.copytree(source, to, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
                        else:
                            shutil.copy(source, to)
            elif keyword == "RUN":
                command = re.sub(r"--mount=\S+\s+", "", arg)
                for container, local in paths.items():
                    command = command.replace(container, str(local))
                if not (here / "requirements.lock").exists():
                    # The lock file comes with the packaging work; until it is in the tree, install unpinned.
                    command = command.replace("-c requirements.lock ", "")
                subprocess.run(["bash", "-euc", command], cwd=here, env=env, check=True, timeout=1500)
    return paths["/opt/venv"]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["core", "full"])
def test_image_installs_and_starts_as_written(target: str, tmp_path: Path, emulator_server: AsgiServer) -> None:
    venv = run_stage_steps(target, tmp_path)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import aoai_gateway; print(aoai_gateway.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout
    assert str(venv) in installed  # a real install, not the source tree
    # The runtime stage's ENV with the paths mapped; only the port changes (8080 may be taken on this machine).
    port = free_port()
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    env = env_of(target, base)
    env["PATH"] = env["PATH"].replace("/opt/venv", str(venv))
    env["AOAI_GATEWAY_DATA_DIR"] = str(tmp_path / "data")
    env["LISTEN"] = env["LISTEN"].replace(":8080", f":{port}")
    # What `docker run -e ...` adds: the old proxy's variables.
    env.update(
        {
            "AZURE_OPENAI_ENDPOINT": emulator_server.url,
            "AZURE_OPENAI_MODEL_MAPPER": "gpt-4o=gpt-4o",
            "AZURE_OPENAI_API_KEY": EMULATOR_KEY,
        }
    )
    cmd = json.loads(dockerfile().all(target, "CMD")[-1])
    check = dockerfile().all(target, "HEALTHCHECK")[0]
    check_cmd = json.loads(check[check.index("CMD [") + 4 :])
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=out, stderr=out)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process, log)
        assert subprocess.run(check_cmd, env=env, timeout=10).returncode == 0  # the HEALTHCHECK, as docker runs it
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert answer.status_code == 200
        assert f"listening on http://0.0.0.0:{port}/v1" in log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


# --- compose's front: the shipped nginx.conf, run by a local nginx ----------------------------------------------


class NamedReplica:
    """A replica that answers its name, or with `/stream` five chunks 0.2 s apart."""

    def __init__(self, name: bytes) -> None:
        self.name = name

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["path"] == "/stream":
            for index in range(5):
                await send({"type": "http.response.body", "body": b"%d\n" % index, "more_body": True})
                await asyncio.sleep(0.2)
        await send({"type": "http.response.body", "body": self.name})


def test_front_balances_over_replicas_and_streams_unbuffered(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed")
    replicas = [AsgiServer(NamedReplica(name), lifespan="off") for name in (b"a", b"b")]
    port = free_port()
    conf = (ROOT / "deploy" / "compose" / "nginx.conf").read_text()
    # Docker's DNS name for the replicas becomes their loopback addresses; `resolve` (nginx >= 1.27.3) goes with it.
    servers = "".join(f"server 127.0.0.1:{r.port} max_fails=1 fail_timeout=5s;\n" for r in replicas)
    conf, count = re.subn(r"server gateway:8080 [^;]*;\n", servers, conf)
    assert count == 1
    conf = re.sub(r"\n\s*resolver [^;]*;", "", conf).replace("listen 8080;", f"listen 127.0.0.1:{port};")
    (tmp_path / "nginx.conf").write_text(conf)
    with contextlib.ExitStack() as stack:
        for replica in replicas:
            stack.enter_context(replica)
        command = [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
        globals_ = f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; daemon off;"
        process = subprocess.Popen([*command, "-g", globals_])
        stack.callback(process.wait, 10)
        stack.callback(process.terminate)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/nginx-health", process, tmp_path / "error.log")
        answers = [httpx.get(f"{url}/", timeout=5).text for _ in range(20)]
        assert answers.count("a") >= 5 and answers.count("b") >= 5, answers
        with httpx.stream("GET", f"{url}/stream", timeout=10) as response:
            started = time.monotonic()
            first = next(response.iter_raw())
            # The first chunk arrives while the replica is still sending (it ends after 0.8 s).
            assert time.monotonic() - started < 0.5 and first.startswith(b"0")
