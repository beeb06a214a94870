"""A tiny random CLIP (or SigLIP) checkpoint with a CLIP BPE tokenizer, written to a folder offline.

Nothing comes from the hub: the model is built from a `transformers` config with tiny dims and seeded
random weights; the tokenizer's vocabulary is the 256 byte symbols (plain and word-final) plus merges
for a few words, so real sentences tokenise into a mix of whole words and bytes.
"""

from __future__ import annotations

from pathlib import Path

WORDS = ("a", "photo", "of", "cat", "dog", "rocket", "coffee", "cup", "man", "screen", "red", "blue")
IMAGE_SIZE = 32
TEXT_LENGTH = 16


def tokenizer():
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = [*chars, *(c + "</w>" for c in chars)]
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            merged = pieces[0] + pieces[1]
            if (pieces[0], pieces[1]) not in merges:
                merges.append((pieces[0], pieces[1]))
            if merged not in vocab:
                vocab.append(merged)
            pieces = [merged, *pieces[2:]]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    ids = {tok: i for i, tok in enumerate(vocab)}
    return CLIPTokenizer(vocab=ids, merges=merges, model_max_length=TEXT_LENGTH)


def make(folder: Path, family: str = "clip", seed: int = 0) -> Path:
    """Write config.json, model.safetensors and tokenizer files of a tiny `family` model into `folder`."""
    import torch
    from transformers import CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

    folder.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    n = len(tok)
    text = dict(
        vocab_size=n, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=TEXT_LENGTH,
    )  # fmt: skip
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=8,
    )  # fmt: skip
    torch.manual_seed(seed)
    if family == "clip":
        ids = dict(bos_token_id=n - 2, eos_token_id=n - 1, pad_token_id=n - 1)
        model = CLIPModel(CLIPConfig(text_config={**text, **ids}, vision_config=vision, projection_dim=16))
    else:
        model = SiglipModel(SiglipConfig(text_config={**text, "projection_size": 32}, vision_config=vision))
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
