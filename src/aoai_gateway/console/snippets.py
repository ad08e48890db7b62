"""Quick-start snippets for a new key: curl, Python `openai`, JavaScript `openai`, LangChain.

    quick_starts("https://gw.example.com/v1", "gpt-4o")   # [Snippet("curl", "curl ...") ...]

Each reads the key from OPENAI_API_KEY (the key page shows the `export` line once), so a snippet can be pasted
into a chat or a slide without leaking it. They are plain text: the template escapes them like any other string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Snippet:
    id: str
    label: str
    code: str


def quick_starts(base_url: str, model: str) -> list[Snippet]:
    url, name = json.dumps(base_url), json.dumps(model)  # quoted and escaped for every language below
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Say hello"}]})
    shell_body = body.replace("'", "'\\''")
    return [
        Snippet(
            "curl",
            "curl",
            f"curl {json.dumps(base_url + '/chat/completions')} \\\n"
            '  -H "Authorization: Bearer $OPENAI_API_KEY" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f"  -d '{shell_body}'",
        ),
        Snippet(
            "python",
            "Python (openai)",
            "# pip install openai\n"
            "from openai import OpenAI\n\n"
            f"client = OpenAI(base_url={url})  # the key comes from OPENAI_API_KEY\n"
            "answer = client.chat.completions.create(\n"
            f'    model={name}, messages=[{{"role": "user", "content": "Say hello"}}]\n'
            ")\n"
            "print(answer.choices[0].message.content)",
        ),
        Snippet(
            "javascript",
            "JavaScript (openai)",
            "// npm install openai\n"
            'import OpenAI from "openai";\n\n'
            f"const client = new OpenAI({{ baseURL: {url} }}); // the key comes from OPENAI_API_KEY\n"
            "const answer = await client.chat.completions.create({\n"
            f'  model: {name}, messages: [{{ role: "user", content: "Say hello" }}],\n'
            "});\n"
            "console.log(answer.choices[0].message.content);",
        ),
        Snippet(
            "langchain",
            "LangChain",
            "# pip install langchain-openai\n"
            "from langchain_openai import ChatOpenAI\n\n"
            f"llm = ChatOpenAI(base_url={url}, model={name})  # the key comes from OPENAI_API_KEY\n"
            'print(llm.invoke("Say hello").content)',
        ),
    ]
