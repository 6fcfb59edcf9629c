"""Writes a trained model.Llama and its SentencePiece tokenizer as a GGUF v3 file.

Our own minimal writer of the GGUF layout (header, key/value metadata, tensor infos, 32-byte
aligned data). Matrices are stored F16, norm weights F32; PyTorch's [out, in] Linear weight is
GGUF's ne = [in, out] with the same bytes. Keys are llama.cpp's names for the `llama` architecture.
"""
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32
# GGUF metadata value types
UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9
# GGML tensor types
GGML_F32, GGML_F16 = 0, 1
LLAMA_FTYPE_MOSTLY_F16 = 1
# llama.cpp's token types
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_BYTE = 1, 2, 3, 6


def _string(text):
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _value(kind, value):
    if kind == STRING:
        return _string(value)
    if kind == BOOL:
        return struct.pack("<?", value)
    return struct.pack({UINT32: "<I", INT32: "<i", FLOAT32: "<f"}[kind], value)


class GgufWriter:
    def __init__(self):
        self.kv = []  # (key, encoded type + value)
        self.tensors = []  # (name, numpy array, ggml type)

    def add(self, key, kind, value):
        self.kv.append((key, struct.pack("<I", kind) + _value(kind, value)))

    def add_array(self, key, kind, values):
        body = b"".join(_value(kind, v) for v in values)
        self.kv.append((key, struct.pack("<IIQ", ARRAY, kind, len(values)) + body))

    def add_tensor(self, name, array):
        array = np.ascontiguousarray(array)
        ggml_type = {np.dtype(np.float32): GGML_F32, np.dtype(np.float16): GGML_F16}[array.dtype]
        self.tensors.append((name, array, ggml_type))

    def write(self, path):
        out = bytearray(GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv)))
        for key, encoded in self.kv:
            out += _string(key) + encoded
        offset = 0
        for name, array, ggml_type in self.tensors:
            ne = list(reversed(array.shape))  # ne[0] is the contiguous (innermost) dimension
            out += _string(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
            out += struct.pack("<IQ", ggml_type, offset)
            offset += -(-array.nbytes // ALIGNMENT) * ALIGNMENT
        out += bytes(-len(out) % ALIGNMENT)
        for _, array, _ in self.tensors:
            out += array.tobytes()
            out += bytes(-array.nbytes % ALIGNMENT)
        with open(path, "wb") as f:
            f.write(out)


def token_type(sp, i):
    if sp.is_unknown(i):
        return TOKEN_UNKNOWN
    if sp.is_control(i):
        return TOKEN_CONTROL
    if sp.is_byte(i):
        return TOKEN_BYTE
    return TOKEN_NORMAL


def write_model(path, net, sp, name):
    cfg = net.cfg
    w = GgufWriter()
    w.add("general.architecture", STRING, "llama")
    w.add("general.name", STRING, name)
    w.add("general.file_type", UINT32, LLAMA_FTYPE_MOSTLY_F16)
    w.add("llama.context_length", UINT32, cfg.context)
    w.add("llama.embedding_length", UINT32, cfg.dim)
    w.add("llama.block_count", UINT32, cfg.layers)
    w.add("llama.feed_forward_length", UINT32, cfg.ffn)
    w.add("llama.attention.head_count", UINT32, cfg.heads)
    w.add("llama.attention.head_count_kv", UINT32, cfg.heads)
    w.add("llama.attention.layer_norm_rms_epsilon", FLOAT32, cfg.norm_eps)
    w.add("llama.rope.freq_base", FLOAT32, cfg.rope_base)
    w.add("llama.rope.dimension_count", UINT32, cfg.head_dim)
    w.add("llama.vocab_size", UINT32, cfg.vocab)
    n = sp.get_piece_size()
    w.add("tokenizer.ggml.model", STRING, "llama")
    w.add_array("tokenizer.ggml.tokens", STRING, [sp.id_to_piece(i) for i in range(n)])
    w.add_array("tokenizer.ggml.scores", FLOAT32, [sp.get_score(i) for i in range(n)])
    w.add_array("tokenizer.ggml.token_type", INT32, [token_type(sp, i) for i in range(n)])
    w.add("tokenizer.ggml.unknown_token_id", UINT32, sp.unk_id())
    w.add("tokenizer.ggml.bos_token_id", UINT32, sp.bos_id())
    w.add("tokenizer.ggml.eos_token_id", UINT32, sp.eos_id())
    w.add("tokenizer.ggml.add_bos_token", BOOL, True)
    w.add("tokenizer.ggml.add_eos_token", BOOL, False)
    w.add("tokenizer.ggml.add_space_prefix", BOOL, True)

    def matrix(t):
        return t.detach().numpy().astype(np.float16)

    def vector(t):
        return t.detach().numpy().astype(np.float32)

    w.add_tensor("token_embd.weight", matrix(net.embed.weight))
    for i, b in enumerate(net.blocks):
        w.add_tensor(f"blk.{i}.attn_norm.weight", vector(b.attn_norm.weight))
        w.add_tensor(f"blk.{i}.attn_q.weight", matrix(b.wq.weight))
        w.add_tensor(f"blk.{i}.attn_k.weight", matrix(b.wk.weight))
        w.add_tensor(f"blk.{i}.attn_v.weight", matrix(b.wv.weight))
        w.add_tensor(f"blk.{i}.attn_output.weight", matrix(b.wo.weight))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", vector(b.ffn_norm.weight))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", matrix(b.w_gate.weight))
        w.add_tensor(f"blk.{i}.ffn_up.weight", matrix(b.w_up.weight))
        w.add_tensor(f"blk.{i}.ffn_down.weight", matrix(b.w_down.weight))
    w.add_tensor("output_norm.weight", vector(net.norm.weight))
    w.write(path)
