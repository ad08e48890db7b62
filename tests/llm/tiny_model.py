"""A tiny llama-architecture GGUF with random weights, written by the tests themselves (nothing is downloaded).

path = write_tiny_model(tmp_path / "tiny.gguf", chat_template=CHATML, context_length=131072)

Two layers, 64-wide, a SentencePiece-style vocabulary of 359 tokens: the special ones, the 256 byte tokens (so
every string can be tokenized and every JSON character generated) and the printable ASCII characters. Its answers
are gibberish, so tests assert structure and validity, never content. The output rows of the special tokens are
zero while the others are wide: an end-of-text token is almost never sampled, so a free answer runs to
`max_tokens` (which is what the cancellation and max_tokens tests need), and a grammar-constrained one ends when
its grammar is complete (then end-of-text is the only token the grammar allows).
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

DIM = 64
LAYERS = 2
HEADS = 4
FFN = 128
SPECIAL = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content or '' }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = list(SPECIAL)
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    tokens += ["\u2581"] + [chr(c) for c in range(0x21, 0x7F)]  # the word-start marker (a space), then ASCII
    types += [gguf.TokenType.NORMAL] * (1 + 0x7F - 0x21)
    scores = [0.0] * len(SPECIAL) + [0.0] * 256 + [-float(i) for i in range(len(tokens) - len(SPECIAL) - 256)]
    return tokens, scores, [int(t) for t in types]


def write_tiny_model(
    path: Path,
    *,
    chat_template: str | None = CHATML,
    context_length: int = 131072,
    seed: int = 7,
    favour: str | None = None,
    strength: float = 4.0,
) -> Path:
    """`favour`: one ASCII character the model writes far more often than the others (about half the time where
    the grammar lets it choose), so a test sees both branches of a grammar that starts with it."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocabulary()
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-random-llama")
    writer.add_context_length(context_length)
    writer.add_embedding_length(DIM)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(DIM // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    def weights(*shape: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    embeddings = weights(len(tokens), DIM, scale=1.0)
    output = weights(len(tokens), DIM, scale=0.5)
    output[: len(SPECIAL)] = 0.0  # see the module's docstring
    if favour is not None:
        # Every embedding gets a constant feature on dimension 0 (it survives the RMS norm with one sign), and
        # only the favoured character's output row reads it: its logit is raised wherever the model is.
        embeddings[:, 0] = 3.0
        output[:, 0] = 0.0
        output[tokens.index(favour), 0] = strength
    writer.add_tensor("token_embd.weight", embeddings)
    writer.add_tensor("output_norm.weight", np.ones(DIM, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for layer in range(LAYERS):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(DIM, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", weights(DIM, DIM))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(DIM, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weights(FFN, DIM))
        writer.add_tensor(f"{block}.ffn_up.weight", weights(FFN, DIM))
        writer.add_tensor(f"{block}.ffn_down.weight", weights(DIM, FFN))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
