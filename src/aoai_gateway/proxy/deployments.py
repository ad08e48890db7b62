"""The routing table: which deployment serves a model name.

table = DeploymentTable(settings.deployments)
table.resolve("gpt-4o")              # by model name, else by deployment name
"""

from __future__ import annotations

from collections.abc import Iterable

from ..config import Deployment
from ..errors import ModelNotFound


class DeploymentTable:
    def __init__(self, deployments: Iterable[Deployment]) -> None:
        self._by_model: dict[str, list[Deployment]] = {}
        self._by_deployment: dict[str, Deployment] = {}
        for deployment in deployments:
            self._by_model.setdefault(deployment.model, []).append(deployment)
            self._by_deployment.setdefault(deployment.deployment, deployment)

    @property
    def models(self) -> list[str]:
        return list(self._by_model)

    def has_model(self, name: str) -> bool:
        return name in self._by_model

    def resolve(self, name: str) -> Deployment:
        """The deployment for a model name; an Azure deployment name is accepted too (Azure-native clients)."""
        candidates = self._by_model.get(name)
        if candidates:
            return candidates[0]
        deployment = self._by_deployment.get(name)
        if deployment is None:
            raise ModelNotFound(name, available=self._by_model)
        return deployment
