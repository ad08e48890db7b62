"""The deployments the emulator serves, and where each one is in its scripted `responses`.

table = DeploymentTable(settings)
deployment = table.resolve("gpt-4o-deploy")   # raises DeploymentNotFound when unknown and not auto
table.next_response(deployment)               # next scripted content, the last one repeating; or None
table.next_turn(deployment)                   # next turn queued over the control API (scripts.py); or None
"""

from __future__ import annotations

from .errors import DeploymentNotFound
from .scripts import ScriptBook, ScriptedTurn
from .settings import DeploymentSettings, EmulatorSettings

__all__ = ["DeploymentTable"]


class DeploymentTable:
    """Configured deployments, plus ones made up on first use when `auto_deployments` is on."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self._known = {deployment.name: deployment for deployment in settings.deployments}
        self._auto = settings.auto_deployments
        self._served: dict[str, int] = {}
        self.scripts = ScriptBook()

    def resolve(self, name: str) -> DeploymentSettings:
        deployment = self._known.get(name)
        if deployment is not None:
            return deployment
        if not self._auto or not name:
            raise DeploymentNotFound()
        # Remembered so that later requests share one object (and its model name) cheaply.
        deployment = self._known[name] = DeploymentSettings(name=name)
        return deployment

    def next_response(self, deployment: DeploymentSettings) -> str | None:
        if not deployment.responses:
            return None
        served = self._served.get(deployment.name, 0)
        self._served[deployment.name] = served + 1
        return deployment.responses[min(served, len(deployment.responses) - 1)]

    def next_turn(self, deployment: DeploymentSettings) -> ScriptedTurn | None:
        return self.scripts.next(deployment.name)

    def rewind(self) -> None:
        """Start every deployment's scripted responses from the first again, and drop queued turns."""
        self._served.clear()
        self.scripts.reset()
