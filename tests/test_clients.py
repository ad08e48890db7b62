"""The gateway driven by real clients: the official openai SDK (sync and async), AzureOpenAI, LangChain."""

from __future__ import annotations

import io
import json
import wave

import openai
import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI

from .conftest import EMULATOR_KEY
from .servers import AsgiServer


def client(gateway: AsgiServer, key: str = EMULATOR_KEY) -> OpenAI:
    return OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def wav_bytes(seconds: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x00" * int(16000 * seconds))
    return buffer.getvalue()


def test_chat_completion(gateway: AsgiServer) -> None:
    result = client(gateway).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Say hello"}],
        max_tokens=20,
        seed=7,
        logprobs=False,
        parallel_tool_calls=True,
        metadata={"team": "a"},
        store=False,
    )
    assert result.object == "chat.completion"
    assert result.choices[0].message.content
    assert result.usage is not None and result.usage.total_tokens > 0


@pytest.mark.parametrize("model", ["gpt-4o-v1", "oss-llama", "gpt-4o-keyed"])
def test_chat_on_every_upstream_style(gateway: AsgiServer, model: str) -> None:
    # v1-style and OpenAI-compatible upstreams get the deployment name in the body; keyed uses the server key.
    key = "any-client-key" if model == "gpt-4o-keyed" else EMULATOR_KEY
    result = client(gateway, key).chat.completions.create(model=model, messages=[{"role": "user", "content": "ping"}])
    assert result.choices[0].message.content


def test_stream_with_usage(gateway: AsgiServer) -> None:
    stream = client(gateway).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Tell me a short story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)


def test_tools(gateway: AsgiServer) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                    "required": ["city", "unit"],
                },
            },
        }
    ]
    result = client(gateway).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call = result.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert isinstance(arguments["city"], str) and arguments["unit"] in ("c", "f")


def test_structured_output(gateway: AsgiServer) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    result = client(gateway).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Ann is 31"}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}},
    )
    document = json.loads(result.choices[0].message.content or "")
    assert isinstance(document["name"], str) and isinstance(document["age"], int)


def test_embeddings(gateway: AsgiServer) -> None:
    result = client(gateway).embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=8)
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8


def test_audio_transcription_upload(gateway: AsgiServer) -> None:
    result = client(gateway).audio.transcriptions.create(
        model="whisper-1",
        file=("call.wav", wav_bytes(), "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert isinstance(result.text, str)
    assert result.words is not None and result.segments is not None


def test_audio_transcription_text_format(gateway: AsgiServer) -> None:
    text = client(gateway).audio.transcriptions.create(
        model="whisper-1", file=("call.wav", wav_bytes(), "audio/wav"), response_format="text"
    )
    assert isinstance(text, str) and text.strip()


def test_audio_speech_streams_binary(gateway: AsgiServer) -> None:
    with client(gateway).audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="Hello there", response_format="wav"
    ) as response:
        audio = b"".join(response.iter_bytes())
    assert audio[:4] == b"RIFF"


def test_images(gateway: AsgiServer) -> None:
    result = client(gateway).images.generate(model="dall-e-3", prompt="a red bicycle", n=1)
    assert result.data and (result.data[0].url or result.data[0].b64_json)


def test_models_list_and_retrieve(gateway: AsgiServer) -> None:
    models = client(gateway).models.list()
    ids = [m.id for m in models]
    assert "gpt-4o" in ids and "whisper-1" in ids and len(ids) == len(set(ids))
    assert client(gateway).models.retrieve("gpt-4o").owned_by == "azure-openai"
    with pytest.raises(openai.NotFoundError) as caught:
        client(gateway).models.retrieve("gpt-5")
    assert "gpt-4o" in caught.value.message


def test_upstream_error_passes_through(gateway: AsgiServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(gateway, key="wrong-key").chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 401  # Azure's own 401 body, relayed


async def test_async_client_chat_and_stream(gateway: AsgiServer) -> None:
    async with AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=EMULATOR_KEY, max_retries=0) as aclient:
        result = await aclient.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert result.choices[0].message.content
        stream = await aclient.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi there"}], stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(pieces)


def test_azure_openai_client_native_route(gateway: AsgiServer) -> None:
    azure = AzureOpenAI(azure_endpoint=gateway.url, api_key=EMULATOR_KEY, api_version="2024-10-21", max_retries=0)
    # The deployment name the Azure client uses may be the gateway's model name or the real deployment.
    for name in ("gpt-4o", "chat-4o"):
        result = azure.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
        assert result.choices[0].message.content
    stream = azure.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hey"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    embedding = azure.embeddings.create(model="text-embedding-3-small", input="x")
    assert embedding.data[0].embedding
    text = azure.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav_bytes(), "audio/wav"))
    assert isinstance(text.text, str)


def test_azure_v1_surface(gateway: AsgiServer) -> None:
    v1 = OpenAI(base_url=f"{gateway.url}/openai/v1", api_key=EMULATOR_KEY, max_retries=0)
    result = v1.chat.completions.create(model="chat-4o", messages=[{"role": "user", "content": "hi"}])
    assert result.choices[0].message.content
    assert "gpt-4o" in [m.id for m in v1.models.list()]


def test_langchain_chat_and_embeddings(gateway: AsgiServer) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    chat = langchain_openai.ChatOpenAI(
        model="gpt-4o", base_url=f"{gateway.url}/v1", api_key=EMULATOR_KEY, max_retries=0
    )
    assert chat.invoke("Hello").content
    assert "".join(str(chunk.content) for chunk in chat.stream("Hello again"))
    # No tiktoken length check: it would download its encodings at run time.
    embeddings = langchain_openai.OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=f"{gateway.url}/v1",
        api_key=EMULATOR_KEY,
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    assert len(embeddings.embed_documents(["a", "b"])) == 2


def test_langchain_azure_chat(gateway: AsgiServer) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    chat = langchain_openai.AzureChatOpenAI(
        azure_endpoint=gateway.url,
        azure_deployment="gpt-4o",
        api_version="2024-10-21",
        api_key=EMULATOR_KEY,
        max_retries=0,
    )
    assert chat.invoke("Hello").content


def test_large_audio_upload_is_forwarded(gateway: AsgiServer) -> None:
    # 3 MB: above the size aiohttp would write in one go from memory (and warn about).
    result = client(gateway).audio.transcriptions.create(
        model="whisper-1", file=("long.wav", wav_bytes(seconds=95), "audio/wav"), response_format="json"
    )
    assert isinstance(result.text, str)
