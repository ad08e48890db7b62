"""The operations the emulator serves, by the path that follows the deployment (or `/openai/v1/`).

    OPERATIONS["chat/completions"].handle(call)   # -> Reply

Azure's operation names are the ones its 429 messages quote ("Requests to the ChatCompletions_Create
Operation under Azure OpenAI API version ...").
"""

from __future__ import annotations

from typing import Final

from .audio import create_transcription, create_translation
from .call import Operation
from .chat import create_chat_completion
from .completions import create_completion
from .embeddings import create_embeddings
from .images import create_images
from .realtime_secrets import create_client_secret
from .speech import create_speech

__all__ = ["OPERATIONS"]

OPERATIONS: Final[dict[str, Operation]] = {
    "chat/completions": Operation("ChatCompletions_Create", create_chat_completion),
    "completions": Operation("Completions_Create", create_completion),
    "embeddings": Operation("Embeddings_Create", create_embeddings),
    "audio/transcriptions": Operation("AudioTranscriptions_Create", create_transcription, multipart=True),
    "audio/translations": Operation("AudioTranslations_Create", create_translation, multipart=True),
    "audio/speech": Operation("AudioSpeech_Create", create_speech),
    "images/generations": Operation("ImageGenerations_Create", create_images),
    "realtime/client_secrets": Operation("RealtimeClientSecrets_Create", create_client_secret),
}
