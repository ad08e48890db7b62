"""Local chat: `provider: local`, `engine: llama.cpp` deployments served in-process from a GGUF file by llama.cpp,
on the OpenAI chat completions, completions and embeddings APIs.

client = await LocalProvider().open_client(settings, deployments, http)   # providers/local.py: loads models once

llama.cpp (llama-cpp-python, the `local-llm` extra) is imported only when such a deployment is configured.
Modules: request.py (what a request asks), shapes.py (the grammar an answer is sampled under: JSON Schema, tool
calls), sampling.py (a token under that grammar, drawn first and checked after, as llama.cpp's common sampler does),
model.py (the model: prompt, context check, generation), render.py (OpenAI's JSON and SSE shapes),
embedding.py (embeddings, from a second instance loaded on first use), client.py (the `UpstreamClient` the proxy
calls: one worker per model, a bounded queue, cancellation).
"""
