"""One GGUF model loaded by llama.cpp, generating one answer at a time in the calling (worker) thread.

model = LocalChatModel("/models/qwen.gguf", settings.local_llm)     # loads the weights (memory-mapped)
prompt = model.prompt(request)                        # token ids; InvalidRequest: context_length_exceeded
outcome = model.generate(prompt, request, shape, on_text=print, cancelled=event.is_set)

The chat template is the model's own (`tokenizer.chat_template` in the GGUF), with the request's tools passed to
it; a model without one gets ChatML. Tokens are sampled under the answer's grammar (shapes.py, sampling.py), and
the loop checks `cancelled` before each token, so a client that leaves stops the generation at the next token. Stop
sequences are matched on the decoded text: what could be the start of one is held back until it is clear. A prompt
that starts like the previous one (a shared system prompt) evaluates only what differs.
"""

from __future__ import annotations

import codecs
import os
import random
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import jinja2
import numpy as np
from llama_cpp import Llama, llama_print_system_info, llama_vocab_is_eog
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from ..config.local_llm import LocalLlmSettings
from ..errors import InvalidRequest
from .cpu import check_build, cpu_flags
from .embedding import LocalEmbedder
from .lookahead import Lookahead
from .request import GenerationRequest
from .sampling import TokenSampler
from .shapes import AnswerShape
from .utf8 import Utf8Guard

# ChatML, for a GGUF that carries no chat template of its own.
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content or '' }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(slots=True)
class Outcome:
    text: str
    finish_reason: str  # "stop" (end of answer or a stop sequence), "length" (max_tokens or the context)
    prompt_tokens: int
    completion_tokens: int
    forced_tokens: int = 0  # of the completion's, written as the schema forced them, not sampled (lookahead.py)


# Private-use characters around a number: what a message's text is replaced by while the template is rendered.
_PLACEHOLDER = re.compile("\ue000([0-9]+)\ue001")


def _placeholders(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The messages with each text content replaced by a placeholder, and the texts (in placeholder order)."""
    texts: list[str] = []
    replaced = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) and content:
            texts.append(content)
            message = {**message, "content": f"\ue000{len(texts) - 1}\ue001"}
        replaced.append(message)
    return replaced, texts


class Cancelled(Exception):
    """The client left: the generation stopped before its end."""


class LocalChatModel:
    def __init__(self, path: str, settings: LocalLlmSettings) -> None:
        check_build(llama_print_system_info().decode(errors="replace"), cpu_flags())
        threads = settings.cpu_threads or len(os.sched_getaffinity(0))
        self._llm = Llama(
            model_path=path,
            n_ctx=settings.context_tokens,
            n_batch=settings.batch_tokens,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,  # llama.cpp would print each request's timings to stderr
        )
        self.context_tokens = self._llm.n_ctx()
        metadata = self._llm.metadata
        vocab = self._llm._model
        self._bos = vocab.token_get_text(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
        eos = vocab.token_get_text(self._llm.token_eos()) if self._llm.token_eos() >= 0 else ""
        try:
            self._formatter = Jinja2ChatFormatter(metadata.get("tokenizer.chat_template") or CHATML, eos, self._bos)
        except jinja2.TemplateError as exc:
            raise ValueError(f"the chat template in {path!r} does not compile: {exc}") from None
        self._vocab = vocab.vocab
        self.jump_forward = settings.jump_forward  # local_llm.jump_forward; a bench compares both on one instance
        self._utf8 = Utf8Guard(self._llm)
        self.dimensions = self._llm.n_embd()
        self._path, self._threads = path, threads
        arch = metadata.get("general.architecture", "")
        self._pooled = f"{arch}.pooling_type" in metadata  # an embedding model names its pooling
        self._embedder: LocalEmbedder | None = None

    def embedder(self) -> LocalEmbedder:
        """The embeddings instance, loaded on first use (in the worker thread: never on the event loop)."""
        if self._embedder is None:
            self._embedder = LocalEmbedder(self._path, self.context_tokens, self._threads, self._pooled)
        return self._embedder

    def _tokenize(self, rendered: str, texts: list[str]) -> list[int]:
        """Token ids of a rendered template: its own text with special tokens, the callers' texts without."""
        tokens: list[int] = []
        for index, piece in enumerate(_PLACEHOLDER.split(rendered)):
            if not piece:
                continue
            if index % 2:  # a placeholder's number: the caller's text, plain
                tokens += self._llm.tokenize(texts[int(piece)].encode(), add_bos=not tokens, special=False)
            else:
                bos = not tokens and not (self._bos and piece.startswith(self._bos))
                tokens += self._llm.tokenize(piece.encode(), add_bos=bos, special=True)
        if not tokens:
            tokens = self._llm.tokenize(b"", add_bos=True, special=False)
        return tokens

    def prompt(self, request: GenerationRequest) -> list[int]:
        """The request's prompt as token ids, checked against the context window."""
        if request.messages is not None:
            tools = [{"type": "function", "function": t} for t in request.tools] or None
            # The template is rendered around placeholders: its own markers (`<|im_start|>`) become special
            # tokens, while the caller's text goes in as plain text, so a message that types a role marker
            # cannot open a turn of its own (prompt injection through the template's special tokens).
            messages, texts = _placeholders(request.messages)
            try:
                text = self._formatter(messages=messages, tools=tools).prompt  # type: ignore[arg-type]
            except (jinja2.TemplateError, ValueError, TypeError) as exc:
                # The template refuses the conversation (roles out of order, say): the caller's to fix.
                raise InvalidRequest(
                    f"The model's chat template refused these messages: {exc}", param="messages"
                ) from None
            tokens = self._tokenize(text, texts)
        else:  # a completion's prompt is the caller's whole text: plain text, no special tokens
            tokens = self._llm.tokenize(request.prompt.encode(), add_bos=True, special=False)
        asked = request.max_tokens or 0
        if len(tokens) + max(asked, 1) > self.context_tokens:
            where = "messages" if request.messages is not None else "prompt"
            wanted = f"{len(tokens) + asked} tokens ({len(tokens)} in the {where}, {asked} in the completion)"
            raise InvalidRequest(
                f"This model's maximum context length is {self.context_tokens} tokens. However, you requested "
                f"{wanted if asked else f'{len(tokens)} tokens in the {where}'}. Please reduce the length of the "
                f"{where}{' or completion' if asked else ''}.",
                param=where,
                code="context_length_exceeded",
            )
        return tokens

    def generate(
        self,
        prompt: list[int],
        request: GenerationRequest,
        shape: AnswerShape,
        on_text: Callable[[str], None],
        cancelled: Callable[[], bool],
    ) -> Outcome:
        """Sample until the answer ends, a stop sequence, `max_tokens` or the context's end; `on_text` gets each
        piece of the answer as soon as it cannot be the start of a stop sequence."""
        limit = min(request.max_tokens or self.context_tokens, self.context_tokens - len(prompt))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text, sent, count, forced, cut = "", 0, 0, 0, None
        hold = max((len(s) for s in request.stop), default=1) - 1
        finish = "length"
        tokens = self.tokens(prompt, request, shape, cancelled)
        try:
            for token, piece, jumped in tokens:
                if llama_vocab_is_eog(self._vocab, token):
                    finish = "stop"
                    break
                count += 1
                forced += jumped
                text += decoder.decode(piece)
                cut = _first_stop(text, request.stop, max(0, sent - hold))
                if cut is not None:
                    text, finish = text[:cut], "stop"
                    break
                if count >= limit:
                    break
                ready = len(text) - hold if request.stop else len(text)
                if ready > sent:
                    on_text(text[sent:ready])
                    sent = ready
        finally:
            tokens.close()  # frees the sampler now, also when cancelled or failed
        if cut is None:
            text += decoder.decode(b"", final=True)  # an incomplete UTF-8 sequence at the end: U+FFFD
        if len(text) > sent:
            on_text(text[sent:])
        return Outcome(text, finish, len(prompt), count, forced)

    def tokens(
        self, prompt: list[int], request: GenerationRequest, shape: AnswerShape, cancelled: Callable[[], bool]
    ) -> Generator[tuple[int, bytes, bool], None, None]:
        """The answer's tokens, their bytes and whether the schema forced them (not sampled), end-of-generation
        included, without end: the caller stops (and closes the generator, which frees the sampler). Cancelled
        when `cancelled()` before a token.

        A token is evaluated only when the caller asks for the next one, so the context holds the prompt and the
        answer but its last token, as after llama-cpp-python's `Llama.generate`: the next prompt's shared prefix
        is not evaluated again (`_evaluate_prompt`). Under a strict JSON Schema (`shape.schema`) what the schema
        forces next (lookahead.py: `, "value":`) is written without sampling, each token still checked by the
        grammar, and evaluated in one batch when the caller asks past it."""
        llm = self._llm
        ahead = Lookahead(shape.schema) if shape.schema is not None and self.jump_forward else None
        heard = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending: list[int] = []  # yielded, not yet evaluated
        seed = request.seed if request.seed is not None else random.getrandbits(32)
        # Under a grammar the bytes must be valid UTF-8 too, or a string's length is not what the grammar counted.
        sampler = TokenSampler(
            llm, shape.grammar, self._utf8, temperature=request.temperature, top_p=request.top_p, seed=seed
        )
        with sampler:
            if cancelled():
                raise Cancelled
            self._evaluate_prompt(prompt)
            while True:
                if cancelled():
                    raise Cancelled
                if pending:
                    llm.eval(pending)
                    pending = []
                for token in self._forced_tokens(ahead.forced()) if ahead is not None else []:
                    if not sampler.fits(token):  # the grammar is the rule: from here on every token is sampled
                        ahead = None
                        break
                    yield *self._take(token, sampler, ahead, heard), True
                    pending.append(token)
                if pending:  # forced tokens written: evaluated together when the caller asks past them
                    continue
                token = sampler.sample()
                yield *self._take(token, sampler, ahead, heard), False
                pending.append(token)

    def _forced_tokens(self, text: str) -> list[int]:
        """`text` as tokens whose bytes are exactly it: a tokenizer that adds a space before the first word (a
        SentencePiece "dummy prefix") gives that space as tokens of its own, which are left out; where it cannot
        be left out (the space merged into a word), nothing is forced this time."""
        if not text:
            return []
        wanted = text.encode()
        tokens = self._llm.tokenize(wanted, add_bos=False, special=False)
        pieces = [self._llm.detokenize([token]) for token in tokens]
        for skip in range(min(len(tokens), 2)):
            if b"".join(pieces[skip:]) == wanted:
                return tokens[skip:]
        return []

    def _take(
        self, token: int, sampler: TokenSampler, ahead: Lookahead | None, heard: codecs.IncrementalDecoder
    ) -> tuple[int, bytes]:
        """`token` is the answer's next: the grammar and the lookahead move past it; the token and its bytes."""
        piece = self._llm.detokenize([token])
        sampler.accept(token, piece)
        if ahead is not None:
            ahead.feed(heard.decode(piece))
        return token, piece

    def _evaluate_prompt(self, prompt: list[int]) -> None:
        """Evaluate `prompt` in the context, keeping what it shares with the context's tokens (a long system
        prompt is evaluated once), as llama-cpp-python's `Llama.generate` does. Its last token is evaluated again
        in any case: the first token is sampled from its logits, which the context may no longer hold."""
        llm = self._llm
        shared = min(llm.n_tokens, len(prompt) - 1)
        same = llm.input_ids[:shared] == np.asarray(prompt[:shared], dtype=np.intc)
        keep = shared if same.all() else int(same.argmin())
        if keep > 0 and llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            llm.n_tokens = keep
        else:  # nothing shared, or a context that cannot drop its tail (a recurrent model): start over
            llm.reset()  # type: ignore[no-untyped-call]
            keep = 0
        llm.eval(prompt[keep:])

    def close(self) -> None:
        if self._embedder is not None:
            self._embedder.close()
        self._llm.close()


def _first_stop(text: str, stops: tuple[str, ...], start: int) -> int | None:
    found = [i for i in (text.find(s, start) for s in stops) if i >= 0]
    return min(found) if found else None
