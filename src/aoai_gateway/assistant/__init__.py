"""The voice assistant: speech or text in, the gateway's models and tools at work, text and speech out.

    async with open_assistant(settings, caller, db) as assistant:   # built by factory.py with assistant.enabled
        result = await assistant.turn(session_id, TurnInput(audio=wav), caller, emit)

Modules: service.py (what routes and the CLI call), turn.py (the loop of one turn), events.py (its stages),
models.py (the model calls, in-process), speaker.py (speech sentence by sentence), sessions.py (conversations in
memory or the database), tools.py (one registry, validation, allowlists), home.py (the simulated home),
webhooks.py (HTTP tools), mcp_tools.py (MCP servers), cli.py, evaluate.py (tool-choice accuracy on commands.json).
"""
