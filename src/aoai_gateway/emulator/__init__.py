"""An emulator of the Azure OpenAI data-plane REST API, for tests, offline development and load tests.

    from aoai_gateway.emulator import EmulatorSettings, serve
    serve(EmulatorSettings.load("emulator.yaml"), host="127.0.0.1", port=8081)

Speaks Azure's URL shapes (`/openai/deployments/{d}/{op}?api-version=...`, `/openai/v1/{op}`, behind any
path prefix), keys, error bodies, content-filter annotations, response headers and SSE streams for chat
completions, completions, embeddings, audio transcription/translation/speech and image generation, and
files and batches (in memory per instance; a batch's output is the emulator's own answers to its lines).
Answers are deterministic echoes; failures are injected per deployment, per request or at run time.

Modules: `settings` (YAML reference), `dispatch` (routing and request flow), `faults` (fault injection and
the `x-emulator-fault` header), `control` (the /_emulator/ API), `call` (test-control headers), one module
per operation (`chat`, `chat_answer`, `completions`, `embeddings`, `audio`, `speech`, `images`), and
`resources` (the files and batches routes) over `files` and `batches`.
"""

from .app import create_app
from .server import serve
from .settings import DeploymentSettings, EmulatorSettings, EmulatorSettingsError, FaultSpec

__all__ = [
    "DeploymentSettings",
    "EmulatorSettings",
    "EmulatorSettingsError",
    "FaultSpec",
    "create_app",
    "serve",
]
