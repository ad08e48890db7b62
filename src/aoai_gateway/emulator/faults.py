"""Which injected failure, if any, a request gets: per request header, run-time override, or settings.

    book = FaultBook(settings)
    book.override("gpt-4o-deploy", [FaultSpec(kind="429")])   # what POST /_emulator/faults does
    fault = book.pick("gpt-4o-deploy", parse_fault_header(request.headers.get(FAULT_HEADER)))

Precedence, first non-empty source wins: the `x-emulator-fault` header, the run-time override for the
deployment, the run-time override for `*` (every deployment), the deployment's `faults` from the settings.
Within the winning list each fault is tried in order and fires with probability `rate`; draws come from
one `random.Random(settings.seed)` so a run is repeatable, and a rate of 0 or 1 draws nothing.

Header form: faults separated by `,`, each `kind[;key=value...]` with the keys of `FaultSpec`:
`x-emulator-fault: 429;retry_after_ms=1500` or `reset;after_chunks=2` or `503;rate=0.5, timeout;sleep_s=5`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from .errors import InvalidRequest
from .settings import EmulatorSettings, FaultSpec

__all__ = ["ALL_DEPLOYMENTS", "FAULT_HEADER", "FaultBook", "parse_fault_header"]

FAULT_HEADER = "x-emulator-fault"
ALL_DEPLOYMENTS = "*"
_HEADER_KEYS = frozenset(FaultSpec.model_fields) - {"kind"}


def parse_fault_header(value: str | None) -> tuple[FaultSpec, ...]:
    """Read `x-emulator-fault`; an absent or blank header gives `()`.

    parse_fault_header("429;retry_after_ms=1500")  # -> (FaultSpec(kind="429", retry_after_ms=1500),)
    """
    if not value:
        return ()
    specs = []
    for item in value.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        if not kind:
            continue
        fields: dict[str, Any] = {"kind": kind}
        for param in params:
            key, sep, raw = param.partition("=")
            key = key.strip()
            if not sep or key not in _HEADER_KEYS:
                raise InvalidRequest(
                    f"{FAULT_HEADER}: cannot read {param!r}; use key=value with a key among "
                    f"{', '.join(sorted(_HEADER_KEYS))}.",
                    param=FAULT_HEADER,
                )
            fields[key] = raw.strip()
        try:
            specs.append(FaultSpec.model_validate(fields))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise InvalidRequest(
                f"{FAULT_HEADER}: {where}: {problem['msg']} (kinds: 429, 500, 503, timeout, reset).",
                param=FAULT_HEADER,
            ) from exc
    return tuple(specs)


class FaultBook:
    """The fault lists in force, changeable at run time; `pick` decides for one request."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self._configured = {deployment.name: deployment.faults for deployment in settings.deployments}
        self._overrides: dict[str, tuple[FaultSpec, ...]] = {}
        self._seed = settings.seed
        self._rng = random.Random(settings.seed)

    def override(self, deployment: str, faults: Iterable[FaultSpec]) -> None:
        """Replace the faults of one deployment (or of `*`); an empty list switches faults off there."""
        self._overrides[deployment] = tuple(faults)

    def reset(self, deployment: str | None = None) -> None:
        """Drop run-time overrides (all of them when `deployment` is None, and restart the random draws)."""
        if deployment is None:
            self._overrides.clear()
            self._rng.seed(self._seed)
        else:
            self._overrides.pop(deployment, None)

    def effective(self, deployment: str) -> tuple[FaultSpec, ...]:
        """The list a request to `deployment` draws from when it carries no fault header."""
        if deployment in self._overrides:
            return self._overrides[deployment]
        if ALL_DEPLOYMENTS in self._overrides:
            return self._overrides[ALL_DEPLOYMENTS]
        return self._configured.get(deployment, ())

    def pick(self, deployment: str, requested: tuple[FaultSpec, ...] = ()) -> FaultSpec | None:
        """The fault this request suffers, or None."""
        for fault in requested or self.effective(deployment):
            if fault.rate >= 1.0 or (fault.rate > 0.0 and self._rng.random() < fault.rate):
                return fault
        return None

    def snapshot(self) -> dict[str, Any]:
        """What GET /_emulator/faults shows: configured lists and run-time overrides."""

        def dump(faults: tuple[FaultSpec, ...]) -> list[dict[str, Any]]:
            return [fault.model_dump() for fault in faults]

        return {
            "configured": {name: dump(faults) for name, faults in self._configured.items() if faults},
            "overrides": {name: dump(faults) for name, faults in self._overrides.items()},
            "seed": self._seed,
        }
