"""Local speech: `provider: local` deployments served in-process by faster-whisper, on the OpenAI audio API.

client = await LocalProvider().open_client(settings, deployments, http)   # providers/local.py: loads models once

The heavy imports (faster-whisper, CTranslate2, PyAV) happen only when a local deployment is configured.
Modules: request.py (the form), audio.py (decoding), windows.py (voice detection, windows), gaps.py (speech
Whisper skipped), engine.py (the model), transcript.py, formats.py (response formats, events), pool.py
(workers, replicas, queue), wer.py (word error rate), client.py (the `UpstreamClient` the proxy calls).
"""
