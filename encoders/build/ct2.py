"""Reader for CTranslate2's `model.bin`: its variables as numpy arrays, without importing ctranslate2.

The format is what `ctranslate2.specs.model_spec.ModelSpec._serialize` writes (binary version 6), all
little-endian: u32 version, string spec name, u32 spec revision, u32 variable count, then per variable
a string name, u8 rank, u32 × rank shape, u8 dtype id (`_dtype_to_type_id`'s order), u32 byte count and
the raw bytes; then u32 alias count and (alias, target) string pairs. A string is a u16 length that
counts a trailing NUL, then the UTF-8 bytes and the NUL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

VERSION = 6
# CTranslate2's DataType enum order (include/ctranslate2/types.h); bfloat16 has no numpy type (see `_array`)
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class Ct2FormatError(ValueError):
    """The bytes are not a CTranslate2 model.bin this reader understands."""


@dataclass
class Ct2Model:
    spec: str  # e.g. "WhisperSpec"
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)  # read-only views into the buffer
    aliases: dict[str, str] = field(default_factory=dict)  # e.g. decoder/projection/weight -> decoder/embeddings/weight

    def __getitem__(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]

    def __contains__(self, name: str) -> bool:
        return self.aliases.get(name, name) in self.variables

    def scalar(self, name: str) -> int:
        return int(self[name].reshape(-1)[0])


class _Cursor:
    def __init__(self, buf: memoryview) -> None:
        self.buf, self.off = buf, 0

    def take(self, n: int) -> memoryview:
        if self.off + n > len(self.buf):
            raise Ct2FormatError(f"truncated model.bin: needs {self.off + n} bytes, has {len(self.buf)}")
        out = self.buf[self.off : self.off + n]
        self.off += n
        return out

    def num(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.num("H")))
        if not raw.endswith(b"\0"):
            raise Ct2FormatError("corrupt model.bin: a string lacks its terminating NUL")
        return raw[:-1].decode("utf-8")


def _array(raw: memoryview, dtype: str, shape: list[int]) -> np.ndarray:
    if dtype == "bfloat16":  # the high half of a float32
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    arr = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))
    if arr.size != int(np.prod(shape)):
        raise Ct2FormatError(f"variable of shape {shape} has {arr.size} {dtype} values")
    return arr.reshape(shape)


def parse(data: bytes | bytearray | memoryview) -> Ct2Model:
    """Every variable of a model.bin held in `data` (arrays share its memory: keep `data` alive)."""
    cur = _Cursor(memoryview(data).cast("B"))
    version = cur.num("I")
    if version != VERSION:
        raise Ct2FormatError(f"model.bin binary version {version}; this reader knows version {VERSION}")
    model = Ct2Model(cur.string(), cur.num("I"))
    for _ in range(cur.num("I")):
        name = cur.string()
        shape = [cur.num("I") for _ in range(cur.num("B"))]
        type_id = cur.num("B")
        if type_id >= len(DTYPES):
            raise Ct2FormatError(f"{name}: unknown dtype id {type_id}")
        model.variables[name] = _array(cur.take(cur.num("I")), DTYPES[type_id], shape)
    for _ in range(cur.num("I")):
        alias = cur.string()
        model.aliases[alias] = cur.string()
    if cur.off != len(cur.buf):
        raise Ct2FormatError(f"{len(cur.buf) - cur.off} bytes after the last alias")
    return model
