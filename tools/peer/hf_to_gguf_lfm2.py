#!/usr/bin/python3
"""Convert an LFM2 Hugging Face folder (config.json + model.safetensors, e.g. one written by
tools/make-random-model) to a GGUF file that llama.cpp loads, WITHOUT torch/transformers, so
that llama.cpp and lfm2.h can be benchmarked on the very same weights.

    PYTHONPATH=<llama.cpp>/gguf-py /usr/bin/python3 tools/peer/hf_to_gguf_lfm2.py \
        /tmp/lfm2-350m-bf16 /tmp/lfm2-350m-bf16.gguf [--outtype auto|f32|f16|bf16|q8_0|q4_0]

LFM2-MoE folders (model_type lfm2_moe, e.g. tools/make-random-model --shape 8b-a1b) become
llama.cpp's "lfm2moe" architecture, as its own converter (conversion/lfm2.py, LFM2MoeModel) writes
them: the experts of a layer stacked into blk.N.ffn_{gate,up,down}_exps [E, I, D] / [E, D, I], the
router as blk.N.ffn_gate_inp, expert_bias as blk.N.exp_probs_b.bias (F32), and the keys
expert_count, expert_used_count, expert_feed_forward_length, leading_dense_block_count and
expert_gating_func = sigmoid; feed_forward_length = intermediate_size as given. Tensors are
written one at a time (memory: one tensor), and --outtype q8_0 | q4_0 quantizes the matrices
directly (numpy ports of ggml's quantize_row_q8_0_ref / _q4_0_ref; with q4_0 the embedding and the
head are q8_0, as lfm2.h keeps them: llama-quantize would make a tied embedding q6_K), so an
8B-A1B GGUF needs no bf16 GGUF on disk.

Needs numpy (Debian: apt-get install python3-numpy) and llama.cpp's own gguf-py.

Layout follows llama.cpp's convert_hf_to_gguf.py (conversion/lfm2.py, LFM2Model) for
LiquidAI/LFM2-*: per-layer head_count_kv array (0 = conv layer), shortconv.l_cache, adjusted
feed_forward_length, conv weight squeezed [D,1,L] -> [D,L] and kept F32, 1-D tensors and norms
F32, tied embeddings (no output.weight), final norm stored as token_embd_norm.weight. Matrices
keep the source dtype with --outtype auto (the default), so the bytes llama.cpp reads per token
equal the bytes lfm2.h reads.

The tokenizer is NOT converted (the random-model folders have none): a made-up byte-level BPE
vocabulary of the model's vocab_size (10 specials, 256 byte tokens, byte-pair merges), pre-tokenizer
"lfm2", special ids as in the real model (pad 0, bos 1, eos 7). Enough for llama-bench, which feeds
random ids; speed does not depend on the vocabulary contents.
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import gguf

HF_TO_GGUF = {
    "operator_norm.weight": "attn_norm.weight",
    "ffn_norm.weight": "ffn_norm.weight",
    "feed_forward.w1.weight": "ffn_gate.weight",
    "feed_forward.w3.weight": "ffn_up.weight",
    "feed_forward.w2.weight": "ffn_down.weight",
    "conv.in_proj.weight": "shortconv.in_proj.weight",
    "conv.conv.weight": "shortconv.conv.weight",
    "conv.out_proj.weight": "shortconv.out_proj.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.out_proj.weight": "attn_output.weight",
    "self_attn.q_layernorm.weight": "attn_q_norm.weight",
    "self_attn.k_layernorm.weight": "attn_k_norm.weight",
}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.embedding_norm.weight":
        return "token_embd_norm.weight"  # LLM_TENSOR_OUTPUT_NORM_LFM2
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".", 3)  # model . layers . N . rest
    if len(parts) == 4 and parts[0] == "model" and parts[1] == "layers" and parts[3] in HF_TO_GGUF:
        return f"blk.{int(parts[2])}.{HF_TO_GGUF[parts[3]]}"
    raise SystemExit(f"unknown tensor {hf}")


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    hdr.pop("__metadata__", None)
    base = 8 + n
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, t in hdr.items():
        b0, b1 = t["data_offsets"]
        out[name] = (t["dtype"], tuple(t["shape"]), mm[base + b0: base + b1])
    return out


def load_all(folder):
    idx = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for fn in files:
        tensors.update(read_safetensors(os.path.join(folder, fn)))
    return tensors


def as_f32(dtype, raw, shape):
    if dtype == "F32":
        return raw.view(np.float32).reshape(shape)
    if dtype == "F16":
        return raw.view(np.float16).reshape(shape).astype(np.float32)
    if dtype == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    raise SystemExit(f"unsupported dtype {dtype}")


def q8_0(x):
    """ggml Q8_0 (as quantize_row_q8_0_ref, rounding half to even): blocks of 32 -> f16 d + 32 int8"""
    x = np.ascontiguousarray(x, dtype=np.float32)
    shape = x.shape
    b = x.reshape(-1, 32)
    d = (np.abs(b).max(axis=1) / 127.0).astype(np.float16)
    df = d.astype(np.float32)
    idv = np.divide(1.0, df, out=np.zeros_like(df), where=df != 0)
    q = np.clip(np.rint(b * idv[:, None]), -127, 127).astype(np.int8)
    out = np.empty((b.shape[0], 34), dtype=np.uint8)
    out[:, :2] = d.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.reshape(shape[:-1] + (shape[-1] // 32 * 34,))


def q4_0(x):
    """ggml Q4_0 (as quantize_row_q4_0_ref): d = the extreme value / -8, q = trunc(x/d + 8.5) in 0..15,
    byte j = q[j] | q[j + 16] << 4"""
    x = np.ascontiguousarray(x, dtype=np.float32)
    shape = x.shape
    b = x.reshape(-1, 32)
    i = np.abs(b).argmax(axis=1)
    mx = b[np.arange(b.shape[0]), i]
    d = (mx / -8.0).astype(np.float16)
    df = d.astype(np.float32)
    idv = np.divide(1.0, df, out=np.zeros_like(df), where=df != 0)
    q = np.clip(np.trunc(b * idv[:, None] + 8.5), 0, 15).astype(np.uint8)
    out = np.empty((b.shape[0], 18), dtype=np.uint8)
    out[:, :2] = d.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.reshape(shape[:-1] + (shape[-1] // 32 * 18,))


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def made_up_vocab(n_vocab):
    specials = ["<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|fim_pre|>", "<|fim_mid|>",
                "<|fim_suf|>", "<|im_start|>", "<|im_end|>", "<|tool_call_start|>", "<|tool_call_end|>"]
    byte_toks = bytes_to_unicode()
    tokens = specials + byte_toks
    types = [gguf.TokenType.CONTROL] * len(specials) + [gguf.TokenType.NORMAL] * len(byte_toks)
    merges = []
    for a in byte_toks:
        for b in byte_toks:
            if len(tokens) >= n_vocab:
                break
            merges.append(f"{a} {b}")
            tokens.append(a + b)
            types.append(gguf.TokenType.NORMAL)
    assert len(tokens) == n_vocab, len(tokens)
    return tokens, types, merges


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--outtype", choices=["auto", "f32", "f16", "bf16", "q8_0", "q4_0"], default="auto")
    args = ap.parse_args()

    cfg = json.load(open(os.path.join(args.folder, "config.json")))
    D = cfg["hidden_size"]
    L = cfg["num_hidden_layers"]
    V = cfg["vocab_size"]
    H = cfg["num_attention_heads"]
    HKV = cfg["num_key_value_heads"]
    ff = cfg.get("block_ff_dim", cfg.get("intermediate_size"))
    if cfg.get("block_auto_adjust_ff_dim", True):
        ff = int(2 * ff / 3)
        if cfg.get("block_ffn_dim_multiplier") is not None:
            ff = int(cfg["block_ffn_dim_multiplier"] * ff)
        m = cfg.get("block_multiple_of", 256)
        ff = m * ((ff + m - 1) // m)
    if cfg.get("layer_types"):
        kinds = ["conv" if t == "conv" else "attn" for t in cfg["layer_types"]]
    else:
        idxs = cfg.get("full_attn_idxs") or list(range(L))
        kinds = ["attn" if i in idxs else "conv" for i in range(L)]
    kv_arr = [HKV if k == "attn" else 0 for k in kinds]

    tensors = load_all(args.folder)
    moe = cfg.get("model_type") == "lfm2_moe"
    mat_dtypes = {t[0] for n, t in tensors.items() if len(t[1]) == 2 and not n.endswith(".feed_forward.gate.weight")}
    src = mat_dtypes.pop() if len(mat_dtypes) == 1 else "F32"
    outtype = {"F32": "f32", "F16": "f16", "BF16": "bf16"}[src] if args.outtype == "auto" else args.outtype
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
             "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
             "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[outtype]
    if moe:
        ff = cfg["intermediate_size"]
        E, K, I = cfg["num_experts"], cfg["num_experts_per_tok"], cfg["moe_intermediate_size"]
        n_dense = cfg.get("num_dense_layers", 2)

    w = gguf.GGUFWriter(args.out, "lfm2moe" if moe else "lfm2")
    w.add_name(os.path.basename(os.path.normpath(args.folder)))
    w.add_context_length(cfg.get("max_position_embeddings", 128000))
    w.add_embedding_length(D)
    w.add_block_count(L)
    w.add_feed_forward_length(ff)
    w.add_head_count(H)
    w.add_head_count_kv(kv_arr)
    rp = cfg.get("rope_parameters") or {}
    w.add_rope_freq_base(float(cfg.get("rope_theta", rp.get("rope_theta", 1e6))))
    w.add_layer_norm_rms_eps(float(cfg.get("norm_eps", 1e-5)))
    w.add_vocab_size(V)
    w.add_shortconv_l_cache(cfg.get("conv_L_cache", 3))
    if moe:
        w.add_expert_count(E)
        w.add_expert_used_count(K)
        w.add_expert_feed_forward_length(I)
        w.add_leading_dense_block_count(n_dense)
        w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
        w.add_expert_weights_norm(bool(cfg.get("norm_topk_prob", True)))
    w.add_file_type(ftype)

    tokens, types, merges = made_up_vocab(V)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("lfm2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg.get("bos_token_id", 1))
    eos = cfg.get("eos_token_id", 7)
    w.add_eos_token_id(eos[0] if isinstance(eos, list) else eos)
    w.add_pad_token_id(cfg.get("pad_token_id", 0))
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    # the output tensors: (gguf name, producer of the array, raw dtype or None)
    specs = []
    n_params = 0

    def matrix(arr_f32_fn, raw, dtype, shape, embed=False):
        """a weight matrix (2-D, or 3-D stacked experts) in the output type: (producer, raw dtype,
        output array shape, output numpy dtype)"""
        shape = tuple(shape)
        if outtype == "q8_0" or (outtype == "q4_0" and embed):
            return ((lambda: q8_0(arr_f32_fn())), gguf.GGMLQuantizationType.Q8_0, shape[:-1] + (shape[-1] // 32 * 34,), np.uint8)
        if outtype == "q4_0":
            return ((lambda: q4_0(arr_f32_fn())), gguf.GGMLQuantizationType.Q4_0, shape[:-1] + (shape[-1] // 32 * 18,), np.uint8)
        if outtype == "bf16":
            bshape = shape[:-1] + (shape[-1] * 2,)
            if dtype == "BF16" and raw is not None:  # bytes as they are; byte shape [.., in*2]
                return (lambda: raw().reshape(bshape)), gguf.GGMLQuantizationType.BF16, bshape, np.uint8
            return (lambda: gguf.quants.quantize(arr_f32_fn(), gguf.GGMLQuantizationType.BF16)), gguf.GGMLQuantizationType.BF16, bshape, np.uint8
        if outtype == "f16":
            return (lambda: arr_f32_fn().astype(np.float16)), None, shape, np.float16
        return (lambda: np.ascontiguousarray(arr_f32_fn())), None, shape, np.float32

    expert_re = {}
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        parts = name.split(".")
        if moe and len(parts) == 8 and parts[3] == "feed_forward" and parts[4] == "experts":  # stacked below
            expert_re.setdefault(int(parts[2]), set()).add(name)
            continue
        if moe and name.endswith(".feed_forward.gate.weight"):
            gname = f"blk.{int(parts[2])}.ffn_gate_inp.weight"
        elif moe and name.endswith(".feed_forward.expert_bias"):
            gname = f"blk.{int(parts[2])}.exp_probs_b.bias"
        else:
            gname = gguf_name(name)
        n_params += int(np.prod(shape))
        if "conv.conv" in name:  # [D,1,L] -> [D,L], F32 (ggml_ssm_conv needs F32)
            specs.append((gname, (lambda d=dtype, r=raw, sh=shape: np.ascontiguousarray(as_f32(d, r, sh).reshape(sh[0], sh[-1]))), None,
                          (shape[0], shape[-1]), np.float32))
        elif len(shape) <= 1 or gname.endswith("_norm.weight") or gname.endswith("ffn_gate_inp.weight"):
            # (the router stays F32, as llama.cpp's converter keeps ffn_gate_inp)
            specs.append((gname, (lambda d=dtype, r=raw, sh=shape: np.ascontiguousarray(as_f32(d, r, sh))), None, tuple(shape), np.float32))
        else:
            specs.append((gname,) + matrix(lambda d=dtype, r=raw, sh=shape: as_f32(d, r, sh), (lambda r=raw: r), dtype, shape,
                                           embed=gname in ("token_embd.weight", "output.weight")))
    if moe:
        for bid in sorted(expert_re):
            for hf, gg in (("w1", "ffn_gate_exps"), ("w3", "ffn_up_exps"), ("w2", "ffn_down_exps")):
                names = [f"model.layers.{bid}.feed_forward.experts.{x}.{hf}.weight" for x in range(E)]
                dtype, shape = tensors[names[0]][0], tensors[names[0]][1]
                n_params += E * int(np.prod(shape))
                stack_f32 = lambda ns=names: np.stack([as_f32(*[tensors[n][0], tensors[n][2], tensors[n][1]]) for n in ns])
                stack_raw = lambda ns=names: np.stack([tensors[n][2] for n in ns])
                specs.append((f"blk.{bid}.{gg}.weight",) + matrix(stack_f32, stack_raw, dtype, (E,) + tuple(shape)))

    # pass 1: the tensor infos (shapes and sizes, no data), pass 2: the data, one tensor at a time
    t0 = time.time()
    for gname, fn, rt, shape, npdt in specs:
        w.add_tensor_info(gname, shape, np.dtype(npdt), int(np.prod(shape)) * np.dtype(npdt).itemsize, raw_dtype=rt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for gname, fn, rt, shape, npdt in specs:
        a = fn()
        assert a.shape == tuple(shape) and a.dtype == np.dtype(npdt), (gname, a.shape, shape, a.dtype, npdt)
        w.write_tensor_data(a)
    w.close()
    print(f"wrote {args.out}: {'lfm2moe' if moe else 'lfm2'} {outtype} from {src}, D={D} FF={ff} H={H} HKV={HKV} layers={L} kv={kv_arr} "
          f"params={n_params:,} in {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
