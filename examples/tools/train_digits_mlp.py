#!/usr/bin/env python3
"""Train the 64-32-10 digits MLP used by veil's private-inference example and export it to ONNX.

Data: scikit-learn's bundled copy of the UCI "Optical Recognition of Handwritten Digits" test
set (1,797 8x8 images, integer pixels 0..16), stored offline in
examples/assets/digits/digits.csv. Everything runs offline, on the CPU, with numpy for the
training and the `onnx` package for the export and the check:

    pip install -r examples/tools/requirements.txt     # numpy, onnx (+ scikit-learn for --export-data)
    python3 examples/tools/train_digits_mlp.py                   # train from digits.csv, write model
    python3 examples/tools/train_digits_mlp.py --export-data     # also regenerate digits.csv first

Outputs (default --out-dir examples/assets/digits, see README.md there):
  digits.csv       only with --export-data: `split,label,p0,...,p63`, one row per sample in
                   sklearn's order; `split` is a deterministic stratified 80/20 train/test split
                   (numpy default_rng(7); per class, round(20 %) of the samples go to test).
  digits_mlp.onnx  opset 13, IR version 8. Input `pixels` float32 [N, 64] = pixel / 16.0;
                   Gemm `fc1` (fc1.weight [32,64], fc1.bias [32], transB=1) -> h1,
                   Relu `relu1` -> a1, Gemm `fc2` (fc2.weight [10,32], fc2.bias [10], transB=1)
                   -> `logits` float32 [N, 10], ArgMax `argmax` (axis 1, keepdims 0)
                   -> `class` int64 [N].
  reference.json   test accuracy, the first 5 test rows' logits and classes, all computed by
                   onnx.reference.ReferenceEvaluator on the exported model.

Training: float64 numpy, He/Glorot init, Adam (lr 1e-3), minibatch 32, L2 1e-4 on the weights,
300 epochs, softmax cross-entropy; all randomness comes from fixed numpy seeds, so two runs on
the same machine give byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT / "examples" / "assets" / "digits"

INPUT_SCALE = 16.0
N_PIXELS = 64
HIDDEN = 32
N_CLASSES = 10
SPLIT_SEED = 7
TEST_FRACTION = 0.2
PRODUCER = "veil train_digits_mlp.py"
PRODUCER_VERSION = "1"


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def stratified_split(labels: np.ndarray, seed: int = SPLIT_SEED) -> np.ndarray:
    """Boolean mask, True = test. Per class (0..9 in order), round(20 %) of its samples, chosen
    by one numpy default_rng(seed) permutation per class."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for c in range(N_CLASSES):
        idx = np.flatnonzero(labels == c)
        n_test = int(np.floor(TEST_FRACTION * len(idx) + 0.5))  # round half up, no banker's
        is_test[rng.permutation(idx)[:n_test]] = True
    return is_test


def export_data(path: Path) -> None:
    from sklearn.datasets import load_digits  # only needed here

    digits = load_digits()
    data = np.asarray(digits.data)
    pixels = data.astype(np.int64)
    if not np.array_equal(pixels, data) or pixels.min() < 0 or pixels.max() > 16:
        raise SystemExit("unexpected pixel values in sklearn digits")
    labels = np.asarray(digits.target, dtype=np.int64)
    is_test = stratified_split(labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "split,label," + ",".join(f"p{i}" for i in range(N_PIXELS))
    lines = [header]
    for t, y, row in zip(is_test, labels, pixels):
        lines.append(("test" if t else "train") + f",{y}," + ",".join(str(int(v)) for v in row))
    path.write_bytes(("\n".join(lines) + "\n").encode("ascii"))
    print(f"wrote {path} ({len(labels)} rows, {int(is_test.sum())} test)")


def read_data(path: Path):
    lines = path.read_text(encoding="ascii").splitlines()
    header = lines[0].split(",")
    if header != ["split", "label"] + [f"p{i}" for i in range(N_PIXELS)]:
        raise SystemExit(f"{path}: unexpected header")
    splits, labels, pixels = [], [], []
    for n, line in enumerate(lines[1:], start=2):
        f = line.split(",")
        if len(f) != 2 + N_PIXELS or f[0] not in ("train", "test"):
            raise SystemExit(f"{path}:{n}: malformed row")
        splits.append(f[0] == "test")
        labels.append(int(f[1]))
        pixels.append([int(v) for v in f[2:]])
    return np.array(splits), np.array(labels, dtype=np.int64), np.array(pixels, dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------


def forward32(x: np.ndarray, w1, b1, w2, b2):
    """The float32 forward pass the ONNX graph computes (Gemm with transB=1 = x @ W.T + b)."""
    h1 = np.dot(x, w1.T) + b1
    a1 = np.maximum(h1, np.float32(0))
    logits = np.dot(a1, w2.T) + b2
    return logits.astype(np.float32), np.argmax(logits, axis=1).astype(np.int64)


def train(x_tr, y_tr, x_te, y_te, epochs: int, seed: int, lr: float, batch: int, l2: float):
    rng = np.random.default_rng(seed)
    x_tr = x_tr.astype(np.float64)
    # He init for the ReLU layer, Glorot for the output layer; zero biases.
    params = {
        "w1": rng.normal(0.0, np.sqrt(2.0 / N_PIXELS), (HIDDEN, N_PIXELS)),
        "b1": np.zeros(HIDDEN),
        "w2": rng.normal(0.0, np.sqrt(2.0 / (HIDDEN + N_CLASSES)), (N_CLASSES, HIDDEN)),
        "b2": np.zeros(N_CLASSES),
    }
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    onehot = np.eye(N_CLASSES)[y_tr]
    n = len(x_tr)
    step = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        loss_sum = 0.0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            xb, tb = x_tr[idx], onehot[idx]
            h1 = xb @ params["w1"].T + params["b1"]
            a1 = np.maximum(h1, 0.0)
            z = a1 @ params["w2"].T + params["b2"]
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            loss_sum += -np.sum(tb * np.log(p + 1e-12))
            bs = len(idx)
            dz = (p - tb) / bs
            grads = {
                "w2": dz.T @ a1 + l2 * params["w2"],
                "b2": dz.sum(axis=0),
            }
            da1 = dz @ params["w2"]
            dh1 = da1 * (h1 > 0)
            grads["w1"] = dh1.T @ xb + l2 * params["w1"]
            grads["b1"] = dh1.sum(axis=0)
            step += 1
            for k in params:
                m[k] = beta1 * m[k] + (1 - beta1) * grads[k]
                v[k] = beta2 * v[k] + (1 - beta2) * grads[k] ** 2
                mhat = m[k] / (1 - beta1**step)
                vhat = v[k] / (1 - beta2**step)
                params[k] -= lr * mhat / (np.sqrt(vhat) + eps)
        if epoch == 1 or epoch % 50 == 0 or epoch == epochs:
            w = to_float32(params)
            _, pred_tr = forward32(x_tr.astype(np.float32), *w)
            _, pred_te = forward32(x_te, *w)
            print(
                f"epoch {epoch:4d}  loss {loss_sum / n:.4f}  "
                f"train acc {np.mean(pred_tr == y_tr):.4f}  test acc {np.mean(pred_te == y_te):.4f}"
            )
    return to_float32(params)


def to_float32(params):
    return tuple(np.ascontiguousarray(params[k], dtype=np.float32) for k in ("w1", "b1", "w2", "b2"))


def build_onnx(w1, b1, w2, b2):
    from onnx import helper, numpy_helper

    inits = [
        numpy_helper.from_array(w1, "fc1.weight"),
        numpy_helper.from_array(b1, "fc1.bias"),
        numpy_helper.from_array(w2, "fc2.weight"),
        numpy_helper.from_array(b2, "fc2.bias"),
    ]
    nodes = [
        helper.make_node("Gemm", ["pixels", "fc1.weight", "fc1.bias"], ["h1"], name="fc1", transB=1),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("Gemm", ["a1", "fc2.weight", "fc2.bias"], ["logits"], name="fc2", transB=1),
        helper.make_node("ArgMax", ["logits"], ["class"], name="argmax", axis=1, keepdims=0),
    ]
    return classifier_model(
        "digits_mlp", nodes, inits, ["N", N_PIXELS], "8x8 digits MLP 64-32-10; input = pixel / 16.0", PRODUCER
    )


def classifier_model(name: str, nodes, inits, input_dims, doc: str, producer: str):
    """An opset-13, IR-8 model with input `pixels` and outputs `logits` [N, 10] and `class` [N],
    checked with onnx.checker."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        name,
        inputs=[helper.make_tensor_value_info("pixels", TensorProto.FLOAT, input_dims)],
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", N_CLASSES]),
            helper.make_tensor_value_info("class", TensorProto.INT64, ["N"]),
        ],
        initializer=inits,
        doc_string=doc,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13)],
        ir_version=8,
        producer_name=producer,
        producer_version=PRODUCER_VERSION,
        doc_string=producer,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def f32(x) -> float:
    """Shortest decimal that round-trips to the same float32 (parse it as f32)."""
    return float(str(np.float32(x)))


def dump_json(obj: dict) -> str:
    """One key per line; lists on one line, except lists of lists (one inner list per line)."""
    items = []
    for k, v in obj.items():
        if isinstance(v, list) and v and isinstance(v[0], list):
            rows = ",\n".join("    " + json.dumps(r) for r in v)
            items.append(f"  {json.dumps(k)}: [\n{rows}\n  ]")
        else:
            items.append(f"  {json.dumps(k)}: {json.dumps(v)}")
    text = "{\n" + ",\n".join(items) + "\n}\n"
    assert json.loads(text) == obj
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--export-data", action="store_true", help="regenerate digits.csv from sklearn first")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="init/shuffle seed (the split uses 7)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--l2", type=float, default=1e-4)
    args = ap.parse_args()

    import onnx
    from onnx.reference import ReferenceEvaluator

    out: Path = args.out_dir
    csv_path = out / "digits.csv"
    if args.export_data:
        export_data(csv_path)
    is_test, labels, pixels = read_data(csv_path)
    x = (pixels.astype(np.float32) / np.float32(INPUT_SCALE)).astype(np.float32)
    x_tr, y_tr = x[~is_test], labels[~is_test]
    x_te, y_te = x[is_test], labels[is_test]
    print(f"{csv_path}: {len(x_tr)} train, {len(x_te)} test")

    w1, b1, w2, b2 = train(x_tr, y_tr, x_te, y_te, args.epochs, args.seed, args.lr, args.batch, args.l2)
    _, np_pred_tr = forward32(x_tr, w1, b1, w2, b2)
    np_logits_te, np_pred_te = forward32(x_te, w1, b1, w2, b2)

    model = build_onnx(w1, b1, w2, b2)
    onnx_path = out / "digits_mlp.onnx"
    blob = model.SerializeToString(deterministic=True)
    onnx_path.write_bytes(blob)

    # Check the file as written, with the ONNX reference implementation.
    sess = ReferenceEvaluator(onnx.load(str(onnx_path)))
    ref_logits_te, ref_class_te = sess.run(None, {"pixels": x_te})
    _, ref_class_tr = sess.run(None, {"pixels": x_tr})
    if ref_class_te.dtype != np.int64 or ref_logits_te.dtype != np.float32:
        raise SystemExit(f"unexpected output dtypes {ref_logits_te.dtype}, {ref_class_te.dtype}")
    if not np.array_equal(ref_class_te, np_pred_te) or not np.array_equal(ref_class_tr, np_pred_tr):
        raise SystemExit("ONNX reference predictions differ from the numpy forward pass")
    max_diff = float(np.max(np.abs(ref_logits_te.astype(np.float64) - np_logits_te)))
    if max_diff > 1e-5:
        raise SystemExit(f"ONNX reference logits differ from numpy by {max_diff}")

    train_acc = float(np.mean(ref_class_tr == y_tr))
    test_acc = float(np.mean(ref_class_te == y_te))
    test_rows = np.flatnonzero(is_test)
    reference = {
        "input_scale": INPUT_SCALE,
        "train_samples": int(len(x_tr)),
        "test_samples": int(len(x_te)),
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "first_test_rows": [int(i) for i in test_rows[:5]],
        "first_test_labels": [int(v) for v in y_te[:5]],
        "first_test_logits": [[f32(v) for v in row] for row in ref_logits_te[:5]],
        "first_test_classes": [int(v) for v in ref_class_te[:5]],
    }
    ref_path = out / "reference.json"
    ref_path.write_bytes(dump_json(reference).encode("ascii"))

    print(f"numpy vs ONNX reference: classes identical, max |logit diff| = {max_diff:.3g}")
    print(f"train accuracy {train_acc:.4f} ({int(np.sum(ref_class_tr == y_tr))}/{len(y_tr)})")
    print(f"test accuracy  {test_acc:.4f} ({int(np.sum(ref_class_te == y_te))}/{len(y_te)})")
    for p in ([csv_path] if args.export_data else []) + [onnx_path, ref_path]:
        print(f"{p}: {p.stat().st_size} bytes, sha256 {hashlib.sha256(p.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
