"""The two static-shape OpenVINO graphs of a Whisper model, exported from transformers' Whisper (see whisper.py).

* `encoder.xml`: `mel` [1, n_mels, 3000] -> `cross_k`, `cross_v` [layers, 1, heads, 1500, head_dim]: the
  cross-attention keys/values of every decoder layer, computed once per utterance. The positional
  embedding is sliced to the frames given, so the runtime may reshape `mel` to fewer frames T (a shorter
  audio context, whisper.cpp's audio_ctx: T / 2 positions out) and skip most of the 30 s pass.
* `decoder.xml`: one token per step. `token` [1], `position` [1], `cross_len` [1] (int64), the
  self-attention cache `self_k`, `self_v` [layers, 1, heads, 448, head_dim] and `cross_k`, `cross_v` ->
  `logits` [1, vocab] and this step's `k`, `v` [layers, 1, heads, 1, head_dim]. The step attends over the
  cache slots < position plus its own key, so the caller writes `k`, `v` into slot `position` afterwards
  and no scatter is needed in the graph. The cache is as long as Whisper's text context (448 positions).
  Cross-attention covers the encoder positions < `cross_len` (1500 for the full window): one static
  decoder serves every audio context.

`check` runs the saved IRs against the torch model before a build is kept.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
N_FRAMES = 3000  # 30 s of 10 ms mel frames: the encoder's fixed input


def export_modules(model: Any) -> tuple[Any, Any]:
    """torch modules for the two graphs: (encoder: mel -> cross_k, cross_v; decoder step, see module doc)."""
    import torch

    dec = model.model.decoder
    layers = list(dec.layers)
    heads = model.config.decoder_attention_heads
    hd = model.config.d_model // heads
    positions = model.config.max_target_positions

    def split_heads(x: torch.Tensor) -> torch.Tensor:  # [1, T, d] -> [1, heads, T, hd]
        return x.view(1, -1, heads, hd).transpose(1, 2)

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model.model.encoder
            self.layers = torch.nn.ModuleList(layers)

        def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # transformers' encoder forward, minus its check that mel is 3000 frames: the positional
            # embedding is sliced to the frames given, so the time axis can be reshaped (audio context)
            e = self.encoder
            h = torch.nn.functional.gelu(e.conv2(torch.nn.functional.gelu(e.conv1(mel)))).permute(0, 2, 1)
            h = h + e.embed_positions.weight[: h.shape[1]]
            for lay in e.layers:
                h = lay(h, None)
            h = e.layer_norm(h)  # [1, frames / 2, d]
            k = [split_heads(lay.encoder_attn.k_proj(h)) for lay in self.layers]
            v = [split_heads(lay.encoder_attn.v_proj(h)) for lay in self.layers]
            return torch.stack(k), torch.stack(v)

    class Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed, self.pos, self.norm = dec.embed_tokens, dec.embed_positions, dec.layer_norm
            self.proj = model.proj_out
            self.layers = torch.nn.ModuleList(layers)

        def forward(self, token, position, self_k, self_v, cross_k, cross_v, cross_len):
            x = self.embed(token) + self.pos.weight[position]  # [1, d]
            # encoder positions >= cross_len hold nothing of this utterance (a shorter audio context): masked
            audio = cross_k.shape[3]
            cross_bias = torch.where(torch.arange(audio) < cross_len, 0.0, -1e9).to(x.dtype)  # [A]
            # cache slots >= position hold nothing yet (or an older utterance): masked out
            bias = torch.where(torch.arange(positions) < position, 0.0, -1e9).to(x.dtype)  # [P]
            ks, vs = [], []
            for i, lay in enumerate(self.layers):
                a = lay.self_attn
                h = lay.self_attn_layer_norm(x)
                q = split_heads(a.q_proj(h) * a.scaling)  # [1, H, 1, hd]
                k, v = split_heads(a.k_proj(h)), split_heads(a.v_proj(h))
                scores = torch.cat([q @ self_k[i].transpose(-1, -2) + bias, (q * k).sum(-1, keepdim=True)], -1)
                w = scores.softmax(-1)
                o = w[..., :positions] @ self_v[i] + w[..., positions:] * v  # [1, H, 1, hd]
                x = x + a.out_proj(o.transpose(1, 2).reshape(1, -1))
                c = lay.encoder_attn
                q = split_heads(c.q_proj(lay.encoder_attn_layer_norm(x)) * c.scaling)
                # softmax, normalised after the product with v: the same numbers, but the CPU plugin then
                # runs two plain MatMuls instead of its fused attention subgraph, which is ~15% slower at M = 1
                scores = q @ cross_k[i].transpose(-1, -2) + cross_bias  # [1, H, 1, 1500]
                e = (scores - scores.amax(-1, keepdim=True)).exp()
                o = (e @ cross_v[i]) / e.sum(-1, keepdim=True)
                x = x + c.out_proj(o.transpose(1, 2).reshape(1, -1))
                x = x + lay.fc2(lay.activation_fn(lay.fc1(lay.final_layer_norm(x))))
                ks.append(k)
                vs.append(v)
            return self.proj(self.norm(x)), torch.stack(ks), torch.stack(vs)

    return Encoder().eval(), Step().eval()


def shapes(d: dict[str, int]) -> dict[str, list[int]]:
    hd = d["d_model"] // d["heads"]
    cross = [d["layers"], 1, d["heads"], d["audio_ctx"], hd]
    cache = [d["layers"], 1, d["heads"], d["max_positions"], hd]
    return {
        "mel": [1, d["n_mels"], N_FRAMES], "cross_k": cross, "cross_v": cross,
        "token": [1], "position": [1], "cross_len": [1], "self_k": cache, "self_v": cache,
        "logits": [1, d["vocab"]], "k": [d["layers"], 1, d["heads"], 1, hd], "v": [d["layers"], 1, d["heads"], 1, hd],
    }  # fmt: skip


ENCODER_IO = (("mel",), ("cross_k", "cross_v"))
DECODER_IO = (("token", "position", "self_k", "self_v", "cross_k", "cross_v", "cross_len"), ("logits", "k", "v"))
INT_INPUTS = ("token", "position", "cross_len")


def convert(model: Any, d: dict[str, int]) -> tuple[Any, Any]:
    """(encoder, decoder) as ov.Model with named, static inputs and outputs."""
    import openvino as ov
    import torch

    enc, step = export_modules(model)
    shp = shapes(d)

    def example(name: str) -> torch.Tensor:
        if name in INT_INPUTS:
            return torch.ones(shp[name], dtype=torch.int64)
        return torch.zeros(shp[name])

    out = []
    for module, (ins, outs) in ((enc, ENCODER_IO), (step, DECODER_IO)):
        # the encoder's time axis is traced dynamic (the positional embedding slice follows it), then fixed
        # to the full window: the saved IR is static, and a runtime may reshape it to a shorter audio context
        spec = [(n, [1, d["n_mels"], -1] if n == "mel" else shp[n], ov.Type.i64 if n in INT_INPUTS else ov.Type.f32)
                for n in ins]  # fmt: skip
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            ov_model = ov.convert_model(module, example_input=tuple(example(n) for n in ins), input=spec)
        if "mel" in ins:
            ov_model.reshape({"mel": shp["mel"]})
        for port, name in zip(ov_model.inputs, ins, strict=True):
            port.get_tensor().set_names({name})
        for port, name in zip(ov_model.outputs, outs, strict=True):
            port.get_tensor().set_names({name})
            if list(port.get_shape()) != shp[name]:
                raise RuntimeError(f"exported {name} has shape {port.get_shape()}, expected {shp[name]}")
        out.append(ov_model)
    return out[0], out[1]


def compress_int8(ov_model: Any) -> Any:
    """NNCF weight-only int8 (asymmetric, per output channel): weights stay int8 in memory on the CPU."""
    import nncf

    return nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_ASYM)


def check(out_dir: Path, model: Any, tokens: dict[str, Any], d: dict[str, int], weights: str) -> dict[str, float]:
    """The saved IRs against the torch model on one utterance-like mel, teacher-forced through a prompt.

    fp16 IRs hold the same weights as torch (float16 values): logits must agree closely. int8 ones must pick
    the same token at every step. Returns the largest logit difference (for the meta).
    """
    import openvino as ov
    import torch

    from encoders.asr.mel import log_mel

    t = tokens["tokens"]
    rng = np.random.default_rng(0)
    time_s = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    audio = 0.3 * np.sin(2 * np.pi * (200 + 300 * time_s) * time_s) + 0.05 * rng.standard_normal(time_s.size)
    mel = log_mel(audio.astype(np.float32), d["n_mels"])[None]
    prompt = [t["sot"], *([tokens["languages"]["en"], t["transcribe"]] if tokens["multilingual"] else [])]
    ids = [*prompt, t["notimestamps"], 440, 1002, 13, t["eot"]]  # a few ordinary text tokens
    with torch.inference_mode():
        ref = model(input_features=torch.from_numpy(mel), decoder_input_ids=torch.tensor([ids])).logits[0].numpy()
    core = ov.Core()
    enc = core.compile_model(out_dir / "encoder.xml", "CPU")
    dec = core.compile_model(out_dir / "decoder.xml", "CPU").create_infer_request()
    cross = enc({"mel": mel})
    shp = shapes(d)
    cache = {n: np.zeros(shp[n], np.float32) for n in ("self_k", "self_v")}
    got = []
    for pos, tok in enumerate(ids):
        res = dec.infer({
            "token": np.array([tok]), "position": np.array([pos]), **cache,
            "cross_k": cross["cross_k"], "cross_v": cross["cross_v"], "cross_len": np.array([shp["cross_k"][3]]),
        })  # fmt: skip
        cache["self_k"][:, :, :, pos] = res["k"][:, :, :, 0]
        cache["self_v"][:, :, :, pos] = res["v"][:, :, :, 0]
        got.append(res["logits"][0])
    got = np.stack(got)
    diff = float(np.abs(got - ref).max())
    same = bool((got.argmax(-1) == ref.argmax(-1)).all())
    if not same or (weights == "fp16" and diff > 1e-2 * max(1.0, float(np.abs(ref).max()))):
        raise RuntimeError(f"the exported IRs disagree with torch: max logit difference {diff:.4g}, same tokens {same}")
    return {"max_logit_diff": round(diff, 6)}
