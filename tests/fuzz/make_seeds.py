#!/usr/bin/env python3
"""tests/fuzz/make_seeds.py - regenerates the seed corpora of the fuzz targets in tests/fuzz/corpus/
from the golden test data (tests/data). Run from the repository root: python3 tests/fuzz/make_seeds.py
Only the standard library is needed. The seeds are small (the biggest is a mini tokenizer.json)."""
import json, os, struct, random, shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
rng = random.Random(1234)

# must match FUZZ_MICRO_CONFIG in tests/fuzz/fuzz_micro.h
V, D, F, H, HKV, HD, L = 16, 8, 16, 2, 1, 4, 3

def tensors_micro():
    t = [("model.embed_tokens.weight", [V, D]), ("model.embedding_norm.weight", [D])]
    for l, kind in enumerate(["conv", "full_attention"]):
        p = "model.layers.%d." % l
        t += [(p + "operator_norm.weight", [D]), (p + "ffn_norm.weight", [D]),
              (p + "feed_forward.w1.weight", [F, D]), (p + "feed_forward.w3.weight", [F, D]),
              (p + "feed_forward.w2.weight", [D, F])]
        if kind == "conv":
            t += [(p + "conv.in_proj.weight", [3 * D, D]), (p + "conv.out_proj.weight", [D, D]),
                  (p + "conv.conv.weight", [D, 1, L]), (p + "conv.in_proj.bias", [3 * D]),
                  (p + "conv.conv.bias", [D]), (p + "conv.out_proj.bias", [D])]
        else:
            t += [(p + "self_attn.q_proj.weight", [H * HD, D]), (p + "self_attn.k_proj.weight", [HKV * HD, D]),
                  (p + "self_attn.v_proj.weight", [HKV * HD, D]), (p + "self_attn.out_proj.weight", [D, H * HD]),
                  (p + "self_attn.q_layernorm.weight", [HD]), (p + "self_attn.k_layernorm.weight", [HD])]
    return t

def f32_bytes(x): return struct.pack("<f", x)
def bf16_bytes(x): return struct.pack("<f", x)[2:4]
def f16_bytes(x): return struct.pack("<e", x)

def numel(shape):
    n = 1
    for s in shape: n *= s
    return n

def safetensors(tensors, dtype_of, pad=True):
    hdr, data = {"__metadata__": {"format": "pt"}}, b""
    for name, shape in tensors:
        dt = dtype_of(name)
        conv = {"F32": f32_bytes, "BF16": bf16_bytes, "F16": f16_bytes}[dt]
        norm = name.endswith("norm.weight")
        blob = b"".join(conv(1.0 if norm else rng.uniform(-0.5, 0.5)) for _ in range(numel(shape)))
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

# must match LFM2__X16_LAYOUT in lfm2.h
X16_LAYOUT = "x16 v1: rows=16 cols=64 q8_record=1088 q4_record=576"

def prequant(tensors, bits, x16=False):
    """a pre-quantized file as tools/lfm2-quantize writes it; vectors stay F32. Row-major
    (x16=False): NAME I8 [r, c] (Q8) or U8 [r, c/2] (Q4) + NAME_scale F16 [r, c/32] for the
    2-D matrices. Interleaved (x16=True): NAME U8 [r/16, c/64, 1088] (Q8, and the embedding)
    or [r/16, c/64, 576] (Q4), each record its 32 f16 scales then random quants; the layout
    named in __metadata__ "lfm2.h.interleave". (The rng draws are the same, in the same order,
    as those of the two writers this one replaced: the seeds stay byte for byte.)"""
    meta = {"format": "lfm2.h-q%d" % bits, "lfm2.h.interleave": X16_LAYOUT} if x16 else {"format": "pt"}
    hdr, data = {"__metadata__": meta}, b""
    def add(name, dt, shape, blob):
        nonlocal data
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    for name, shape in tensors:
        if len(shape) == 2 and x16:
            r, c = shape
            rec = 1088 if bits == 8 or "embed" in name else 576
            blob = b"".join(f16_bytes(0.01) * 32 + bytes(rng.randrange(256) for _ in range(rec - 64)) for _ in range(r // 16 * (c // 64)))
            add(name, "U8", [r // 16, c // 64, rec], blob)
        elif len(shape) == 2:
            r, c = shape
            if bits == 8:
                add(name, "I8", [r, c], bytes(rng.randrange(256) for _ in range(r * c)))
            else:
                add(name, "U8", [r, c // 2], bytes(rng.randrange(256) for _ in range(r * c // 2)))
            add(name + "_scale", "F16", [r, c // 32], b"".join(f16_bytes(0.01) for _ in range(r * c // 32)))
        else:
            norm = name.endswith("norm.weight")
            add(name, "F32", shape, b"".join(f32_bytes(1.0 if norm else rng.uniform(-0.5, 0.5)) for _ in range(numel(shape))))
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

def write(sub, name, blob):
    d = os.path.join(OUT, sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)

def main():
    # every subfolder of corpus/ is this script's: it is rebuilt whole (a seed added by hand is
    # lost: add it here instead)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    tm = tensors_micro()
    bf = safetensors(tm, lambda n: "BF16")
    mixed = safetensors(tm, lambda n: "F32" if "norm" in n else ("F16" if "w2" in n or "proj" in n else "BF16"))
    write("safetensors", "micro-bf16", bf)
    write("safetensors", "micro-mixed", mixed)
    write("safetensors", "micro-f32-unpadded", safetensors(tm, lambda n: "F32", pad=False))
    # header of the real tiny model (its offsets run past this data: header-parsing coverage)
    with open(os.path.join(DATA, "tiny-bf16", "model.safetensors"), "rb") as f:
        raw = f.read()
    hl = struct.unpack("<Q", raw[:8])[0]
    write("safetensors", "tiny-bf16-header-only", raw[:8 + hl])
    # the quantization target: micro32 (hidden 32, FFN 32): byte 0 = params.weights, then the file
    global V, D, F, H, HKV, HD
    V, D, F, H, HKV, HD = 32, 32, 32, 2, 1, 16
    t32 = tensors_micro()
    for w in (0, 1, 2):
        write("safetensors_quant", "micro32-bf16-w%d" % w, bytes([w]) + safetensors(t32, lambda n: "BF16"))
    write("safetensors_quant", "micro32-prequant-q8", b"\x00" + prequant(t32, 8))
    write("safetensors_quant", "micro32-prequant-q4", b"\x00" + prequant(t32, 4))
    V, D, F, H, HKV, HD = 16, 8, 16, 2, 1, 4
    # sharded: u32 LE length of shard 1, shard 1, shard 2
    half = len(tm) // 2
    s1, s2 = safetensors(tm[:half], lambda n: "BF16"), safetensors(tm[half:], lambda n: "F16")
    write("safetensors_sharded", "micro-2shards", struct.pack("<I", len(s1)) + s1 + s2)
    s1, s2 = safetensors(tm[::2], lambda n: "F32"), safetensors(tm[1::2], lambda n: "BF16")
    write("safetensors_sharded", "micro-2shards-interleaved", struct.pack("<I", len(s1)) + s1 + s2)
    # config.json: every config of the test data
    n = 0
    for dp, _, files in sorted(os.walk(DATA)):
        for fn in sorted(files):
            if fn.startswith("config") and fn.endswith(".json") and "tokenizer" not in fn:
                with open(os.path.join(dp, fn), "rb") as f:
                    write("config", "config-%02d" % n, f.read())
                n += 1
    write("config", "micro", open(os.path.join(ROOT, "tests", "fuzz", "micro_config.json"), "rb").read())
    # a mini tokenizer.json: the real one's pipeline, the 256 byte symbols + a few hundred merges
    # (and a nano one with 16 merges: the fixed tokenizer.json of fuzz_tokenizer_config, cheap to parse)
    def small_tokenizer(n_merges):
        tj = json.load(open(os.path.join(DATA, "tokenizer", "lfm2-like", "tokenizer.json"), encoding="utf-8"))
        vocab = tj["model"]["vocab"]
        inv = sorted(vocab.items(), key=lambda kv: kv[1])
        keep = dict(kv for kv in inv if len(kv[0]) == 1)
        merges, kept = [], 0
        for m in tj["model"]["merges"]:
            a, b = (m.split(" ", 1) if isinstance(m, str) else m)
            if a in keep and b in keep and (a + b) in vocab:
                keep[a + b] = vocab[a + b]
                merges.append(m)
                kept += 1
                if kept >= n_merges: break
        ids = sorted(set(keep.values()))
        remap = {old: i for i, old in enumerate(ids)}
        tj["model"]["vocab"] = {k: remap[v] for k, v in keep.items()}
        tj["model"]["merges"] = merges
        nxt = len(ids)
        for at in tj.get("added_tokens", []):
            at["id"] = nxt if at["id"] not in remap else remap[at["id"]]
            nxt += 1
        tj["added_tokens"] = tj.get("added_tokens", [])[:40]
        return json.dumps(tj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    write("tokenizer_json", "mini-tokenizer.json", small_tokenizer(300))
    write("tokenizer_json", "nano-tokenizer.json", small_tokenizer(16))
    tc = json.load(open(os.path.join(DATA, "tokenizer", "lfm2-like", "tokenizer_config.json"), encoding="utf-8"))
    atd = tc.get("added_tokens_decoder", {})
    tc["added_tokens_decoder"] = {k: atd[k] for k in list(atd)[:12]}
    write("tokenizer_config", "mini-tokenizer_config.json", json.dumps(tc, ensure_ascii=False).encode("utf-8"))
    write("tokenizer_config", "empty-object.json", b"{}")
    # text for tokenize: flags byte + text
    g = json.load(open(os.path.join(DATA, "tokenizer", "tokenizer_golden.json"), encoding="utf-8"))
    for i, c in enumerate(g["cases"][:24]):
        txt = c["text"].encode("utf-8", "surrogatepass")
        write("tokenize", "golden-%02d" % i, bytes([i & 3]) + txt)
    write("tokenize", "special", b"\x03<|startoftext|><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    write("tokenize", "invalid-utf8", b"\x02\xff\xfe\xc3\x28\xe2\x82\xf0\x9f\x98 a\xed\xa0\x80 <|im_end")
    # long pre-tokens (BPE in windows; exactly fitting buffers): letters, spaces, a 3-byte symbol
    lr = random.Random(512)
    write("tokenize", "long-letters", b"\x04" + bytes(lr.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(3000)))
    write("tokenize", "long-spaces", b"\x05x" + b" " * 1500 + b"y")
    write("tokenize", "long-symbols", b"\x06" + "\u2500".encode("utf-8") * 400 + b"\n")
    # ids for detokenize: mode byte + u16 LE ids
    for i, c in enumerate(g["cases"][:16]):
        ids = c.get("ids_with_special") or c["ids"]
        write("detokenize", "golden-%02d" % i, bytes([i & 3]) + b"".join(struct.pack("<H", x) for x in ids))
    write("detokenize", "split-utf8", b"\x01" + b"".join(struct.pack("<H", x) for x in [1, 65000, 64399, 64400, 300, 7, 0]))
    # chat: byte 0 = flags (bit0 add_generation_prompt, bits 1-2 n_tools), then NUL-separated
    # fields: tools..., then role, content, role, content ...
    write("chat", "basic", b"\x01system\x00You are helpful.\x00user\x00Hi!\x00assistant\x00Hello <|im_end|>")
    write("chat", "tools", b"\x03{\"name\":\"f\"}\x00system\x00sys\x00user\x00call f\x00tool\x00{\"r\":1}")
    write("chat", "unicode", "\x00user\x00caf\u00e9 \U0001F600\x00assistant\x00".encode("utf-8"))
    # decode scripts: n_ctx byte, n_batch byte, then ops (see fuzz_decode.c)
    write("decode", "prefill-then-steps", bytes([16, 4]) + bytes([0, 5, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0]) + bytes([0, 1, 9, 0]) * 4)
    write("decode", "context-full", bytes([4, 8]) + bytes([0, 6]) + bytes(range(12)))
    write("decode", "bad-ids", bytes([8, 2]) + bytes([0, 2, 0xff, 0xff, 0x00, 0x02]) + bytes([2, 0, 3, 1, 0]))
    write("decode", "all-and-state", bytes([12, 3]) + bytes([1, 4, 1, 0, 2, 0, 3, 0, 4, 0, 3, 0, 1, 6, 0, 4]))
    # the quantization target with the micro64 config (byte 0 >= 3: hidden 64, FFN 64): the
    # interleaved pre-quantized layout (last, so that the seeds above stay as they were)
    V, D, F, H, HKV, HD = 32, 64, 64, 2, 1, 32
    t64 = tensors_micro()
    write("safetensors_quant", "micro64-x16-q8", b"\x03" + prequant(t64, 8, x16=True))
    write("safetensors_quant", "micro64-x16-q4", b"\x03" + prequant(t64, 4, x16=True))
    write("safetensors_quant", "micro64-x16-q4-w1", b"\x04" + prequant(t64, 4, x16=True))
    write("safetensors_quant", "micro64-bf16-w2", b"\x05" + safetensors(t64, lambda n: "BF16"))
    V, D, F, H, HKV, HD = 16, 8, 16, 2, 1, 4
    chat_seeds()

# the chat targets (tests/data/chat/chat_golden.json, made by tools/golden/gen_chat.py)
TEMPLATE_BITS = {"lfm2": 0, "lfm2-tools": 1, "lfm2.5": 2}  # fuzz_chat_render: kind = 1 + bits 0-1

def chat_render_seed(r):
    """a golden render case in fuzz_chat_render's input format (see the comment at its top):
    byte 0 = template + add_generation_prompt (bit 2) + keep_past_thinking (bit 3) + date (bit 4),
    byte 1 = n_tools, then NUL-separated: the tools' JSON, then role, content ("\x01" = none,
    "\x02" + parts joined by "\x03", an image an empty part), thinking, the first tool call's
    name and its arguments (JSON) per message"""
    o = r["options"]
    b0 = (TEMPLATE_BITS[r["template"]] | (4 if o.get("add_generation_prompt", True) else 0) |
          (8 if o.get("keep_past_thinking") else 0) | (16 if r.get("date") else 0))
    tools = r["tools"] or []
    fields = [json.dumps(t, ensure_ascii=False) for t in tools]
    for m in r["messages"]:
        c = m.get("content")
        if c is None:
            content = "\x01"
        elif isinstance(c, list):
            content = "\x02" + "\x03".join(p.get("text", "") if p["type"] == "text" else "" for p in c)
        else:
            content = c
        name = args = ""
        if m.get("tool_calls"):
            fn = m["tool_calls"][0]["function"]
            name, a = fn["name"], fn["arguments"]
            args = a if isinstance(a, str) else json.dumps(a, ensure_ascii=False)
        fields += [m["role"], content, m.get("thinking") or "", name, args]
    return bytes([b0, len(tools)]) + "\x00".join(fields).encode("utf-8")

def chat_seeds():
    g = json.load(open(os.path.join(DATA, "chat", "chat_golden.json"), encoding="utf-8"))
    for i, r in enumerate(g["renders"]):
        write("chat_render", "render-%d" % i, chat_render_seed(r))
        # splitter: byte 0 = in_reasoning, byte 1 = seed of the cuts, then the rendered text
        if "text" in r:
            write("splitter", "render-%d" % i, b"\x00\x07" + r["text"].encode("utf-8"))
    write("splitter", "mixed", b"\x00\x09<think>a</thin</think>b<|tool_call_st<|tool_call_start|>[g()]<|tool_call_end|><")
    write("splitter", "think", b"\x01\x05thinking</think>answer<|tool_call_start|>[f(a=1)]<|tool_call_end|>")
    # tool_calls: the text alone
    for i, c in enumerate(g["tool_calls"]):
        write("tool_calls", "golden-%d" % i, c["text"].encode("utf-8"))
    for i, t in enumerate(g["bad_tool_calls"]):
        write("tool_calls", "bad-%d" % i, t.encode("utf-8"))
    write("tool_calls", "literals", b"[f(a='it''s', b=\"\\x41\\u00e9\", c=(1, 2), d=(3), g=1_000, h=0x1F, i=.5, j=1e-5, k={'a': [None]}, m=+7)]")

if __name__ == "__main__":
    main()
