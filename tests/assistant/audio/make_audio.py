"""Write the spoken commands of the assistant's tests with Debian's espeak-ng (run once; the WAVs are committed, so
the tests need neither espeak-ng nor a network):

    python tests/assistant/audio/make_audio.py
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

HERE = Path(__file__).parent

if __name__ == "__main__":
    for entry in json.loads((HERE / "commands.json").read_text()):
        out = HERE / entry["file"]
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(out), entry["text"]], check=True)
        print(out.name, out.stat().st_size)
