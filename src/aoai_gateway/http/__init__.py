"""The gateway's own small ASGI layer: request view, routing, responses, CORS, multipart field lookup."""
