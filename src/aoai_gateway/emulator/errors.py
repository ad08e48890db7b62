"""Every failure the emulator answers with, each carrying Azure's status code and JSON body.

    raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")

    Exception
     ├── EmulatorError                 an HTTP error answer: `status`, `body()`, `headers`
     │    ├── InvalidRequest           400 {"error": {message, type: invalid_request_error, param, code}}
     │    │    ├── ObjectNotFound      404 in OpenAI's shape: no such file or batch
     │    │    └── Conflict            409 in OpenAI's shape: a batch that can no longer be cancelled
     │    ├── ContentFiltered          400 code content_filter, innererror ResponsibleAIPolicyViolation
     │    ├── AccessDenied             401 invalid subscription key
     │    ├── ResourceNotFound         404 {"error": {"code": "404", "message": "Resource not found"}}
     │    ├── DeploymentNotFound       404 code DeploymentNotFound
     │    ├── OperationTimedOut        408 code Timeout (the `timeout` fault, when the client waits it out)
     │    ├── Throttled                429 with retry-after / retry-after-ms / x-ms-retry-after-ms
     │    ├── ServerFault              500 server_error
     │    └── ServiceUnavailable       503
     └── InjectedReset                 not an answer: aborts the connection after part of the body was sent

The bodies are the ones Azure OpenAI returns (as seen by clients in the wild); messages are kept verbatim
where clients are known to match on them.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "AccessDenied",
    "Conflict",
    "ContentFiltered",
    "DeploymentNotFound",
    "EmulatorError",
    "InjectedReset",
    "InvalidRequest",
    "ObjectNotFound",
    "OperationTimedOut",
    "ResourceNotFound",
    "ServerFault",
    "ServiceUnavailable",
    "Throttled",
]

Headers = tuple[tuple[bytes, bytes], ...]

_CONTENT_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry. To learn more about our content filtering policies please read "
    "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)


class EmulatorError(Exception):
    """An error answer: `raise ResourceNotFound()` and the dispatcher renders `status` and `body()`."""

    status = 500
    headers: Headers = ()

    def body(self) -> dict[str, Any]:
        raise NotImplementedError


class InvalidRequest(EmulatorError):
    """A 400 in OpenAI's shape: `InvalidRequest("Invalid 'n'.", param="n", code="invalid_value")`."""

    status = 400

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": "invalid_request_error",
                "param": self.param,
                "code": self.code,
            }
        }


class ObjectNotFound(InvalidRequest):
    """`raise ObjectNotFound("No such File object: file-1", param="file_id")`."""

    status = 404


class Conflict(InvalidRequest):
    status = 409


class ContentFiltered(EmulatorError):
    """The prompt tripped the content filter: `ContentFiltered(category="violence")`."""

    status = 400

    def __init__(self, category: str = "violence") -> None:
        super().__init__(_CONTENT_FILTER_MESSAGE)
        self.category = category

    def body(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            name: {"filtered": name == self.category, "severity": "high" if name == self.category else "safe"}
            for name in ("hate", "self_harm", "sexual", "violence")
        }
        result["jailbreak"] = {"filtered": False, "detected": False}
        return {
            "error": {
                "message": _CONTENT_FILTER_MESSAGE,
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
            }
        }


class AccessDenied(EmulatorError):
    """Missing or wrong key: `raise AccessDenied()`."""

    status = 401

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                "to provide a valid key for an active subscription and use a correct regional API endpoint "
                "for your resource.",
            }
        }


class ResourceNotFound(EmulatorError):
    """Unknown path, or a deployments path without `api-version`: `raise ResourceNotFound()`."""

    status = 404

    def body(self) -> dict[str, Any]:
        return {"error": {"code": "404", "message": "Resource not found"}}


class DeploymentNotFound(EmulatorError):
    """A deployment name the settings do not know (with `auto_deployments: false`)."""

    status = 404

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": "DeploymentNotFound",
                "message": "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
            }
        }


class OperationTimedOut(EmulatorError):
    """What a client that outwaits the `timeout` fault finally gets."""

    status = 408

    def body(self) -> dict[str, Any]:
        return {"error": {"code": "Timeout", "message": "The operation was timeout."}}


class Throttled(EmulatorError):
    """A 429 naming the throttled operation: `Throttled("ChatCompletions_Create", "2024-10-21", 2000)`."""

    status = 429

    def __init__(self, operation: str, api_version: str, retry_after_ms: int) -> None:
        super().__init__(f"{operation} throttled")
        self.operation, self.api_version = operation, api_version
        self.retry_after_s = max(1, math.ceil(retry_after_ms / 1000))
        millis = str(retry_after_ms).encode()
        self.headers = (
            (b"retry-after", str(self.retry_after_s).encode()),
            (b"retry-after-ms", millis),
            (b"x-ms-retry-after-ms", millis),
        )

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": "429",
                "message": f"Requests to the {self.operation} Operation under Azure OpenAI API version "
                f"{self.api_version} have exceeded token rate limit of your current OpenAI S0 pricing tier. "
                f"Please retry after {self.retry_after_s} seconds. Please go here: "
                "https://aka.ms/oai/quotaincrease if you would like to further increase the default rate "
                "limit.",
            }
        }


class ServerFault(EmulatorError):
    """Azure's generic 500, naming the request id: `ServerFault(request_id)`."""

    status = 500

    def __init__(self, request_id: str) -> None:
        super().__init__("server error")
        self.request_id = request_id

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": "The server had an error while processing your request. Sorry about that! You can "
                "retry your request, or contact us through an Azure support request at: "
                "https://go.microsoft.com/fwlink/?linkid=2213926 if the error persists. (Please include the "
                f"request ID {self.request_id} in your message.)",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }


class ServiceUnavailable(EmulatorError):
    """A 503 as a saturated backend sends it."""

    status = 503

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": "ServiceUnavailable",
                "message": "The service is temporarily unable to process your request. Please try again later.",
            }
        }


class InjectedReset(Exception):
    """Raised after part of a body went out; the server then drops the connection without finishing it."""
