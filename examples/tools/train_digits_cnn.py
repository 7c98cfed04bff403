#!/usr/bin/env python3
"""Train the small digits CNN used by veil's private-inference example and export it to ONNX.

Same data, split and scaling as train_digits_mlp.py (examples/assets/digits/digits.csv, pixel /
16.0), numpy for the training (manual backpropagation, Adam) and the `onnx` package for the
export and the check. Offline and on the CPU:

    pip install -r examples/tools/requirements.txt     # numpy, onnx
    python3 examples/tools/train_digits_cnn.py

Model (opset 13, IR version 8): input `pixels` float32 [N, 1, 8, 8] (a row of the 64 pixels of
the MLP, reshaped) -> Conv 3x3, 8 channels, padding 1 (+ bias) -> Relu -> MaxPool 2x2 (stride 2)
-> Flatten (128 = 8 x 4 x 4) -> Gemm (transB = 1) -> `logits` [N, 10], and ArgMax -> `class`.

Outputs in --out-dir (default examples/assets/digits): digits_cnn.onnx and reference_cnn.json
(accuracies and the first test logits by the ONNX reference evaluator, the plaintext baseline
the Rust tests compare against).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_digits_mlp import (  # noqa: E402
    DEFAULT_DIR,
    INPUT_SCALE,
    classifier_model,
    dump_json,
    f32,
    read_data,
)

CHANNELS = 8
N_CLASSES = 10
PRODUCER = "veil train_digits_cnn.py"


def patches(x: np.ndarray) -> np.ndarray:
    """[B, 8, 8] images -> [B, 8, 8, 9] 3x3 windows (zero padding 1), window order (i, j)."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    return np.stack([p[:, i : i + 8, j : j + 8] for i in range(3) for j in range(3)], axis=-1)


def forward(x: np.ndarray, wc, bc, wf, bf):
    """x [B, 64] -> (logits [B, 10], cache). wc [8, 9] (= Conv weight [8, 1, 3, 3] flattened),
    features flattened in ONNX's (c, y, x) order."""
    pt = patches(x.reshape(-1, 8, 8))  # [B, 8, 8, 9]
    h = pt @ wc.T + bc  # [B, 8, 8, C] channels-last
    a = np.maximum(h, 0.0)
    win = a.reshape(-1, 4, 2, 4, 2, CHANNELS)  # [B, y, i, x, j, C]
    pooled = win.max(axis=(2, 4))  # [B, 4, 4, C]
    flat = pooled.transpose(0, 3, 1, 2).reshape(len(x), -1)  # [B, C*4*4] in (c, y, x) order
    logits = flat @ wf.T + bf
    return logits, (pt, h, a, win, pooled, flat)


def train(x_tr, y_tr, x_te, y_te, epochs: int, seed: int, lr: float, batch: int, l2: float):
    rng = np.random.default_rng(seed)
    params = {
        "wc": rng.normal(0.0, np.sqrt(2.0 / 9), (CHANNELS, 9)),
        "bc": np.zeros(CHANNELS),
        "wf": rng.normal(0.0, np.sqrt(2.0 / (CHANNELS * 16 + N_CLASSES)), (N_CLASSES, CHANNELS * 16)),
        "bf": np.zeros(N_CLASSES),
    }
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    onehot = np.eye(N_CLASSES)[y_tr]
    n, step = len(x_tr), 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        loss_sum = 0.0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            xb, tb = x_tr[idx].astype(np.float64), onehot[idx]
            z, (pt, h, a, win, pooled, flat) = forward(xb, *(params[k] for k in ("wc", "bc", "wf", "bf")))
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            loss_sum += -np.sum(tb * np.log(p + 1e-12))
            bs = len(idx)
            dz = (p - tb) / bs
            grads = {"wf": dz.T @ flat + l2 * params["wf"], "bf": dz.sum(axis=0)}
            dflat = dz @ params["wf"]
            dpooled = dflat.reshape(bs, CHANNELS, 4, 4).transpose(0, 2, 3, 1)  # [B, 4, 4, C]
            # Max pooling passes the gradient to the window's maximum (the first one on ties).
            flatwin = win.transpose(0, 1, 3, 5, 2, 4).reshape(bs, 4, 4, CHANNELS, 4)
            first = np.argmax(flatwin, axis=-1)
            mask = np.eye(4)[first]  # [B, 4, 4, C, 4]
            dwin = (mask * dpooled[..., None]).reshape(bs, 4, 4, CHANNELS, 2, 2)
            da = dwin.transpose(0, 1, 4, 2, 5, 3).reshape(bs, 8, 8, CHANNELS)
            dh = da * (h > 0)
            grads["wc"] = dh.reshape(-1, CHANNELS).T @ pt.reshape(-1, 9) + l2 * params["wc"]
            grads["bc"] = dh.reshape(-1, CHANNELS).sum(axis=0)
            step += 1
            for k in params:
                m[k] = beta1 * m[k] + (1 - beta1) * grads[k]
                v[k] = beta2 * v[k] + (1 - beta2) * grads[k] ** 2
                mhat = m[k] / (1 - beta1**step)
                vhat = v[k] / (1 - beta2**step)
                params[k] -= lr * mhat / (np.sqrt(vhat) + eps)
        if epoch == 1 or epoch % 10 == 0 or epoch == epochs:
            w = to_float32(params)
            acc_tr = np.mean(np.argmax(forward(x_tr, *w)[0], axis=1) == y_tr)
            acc_te = np.mean(np.argmax(forward(x_te, *w)[0], axis=1) == y_te)
            print(f"epoch {epoch:3d}  loss {loss_sum / n:.4f}  train acc {acc_tr:.4f}  test acc {acc_te:.4f}")
    return to_float32(params)


def to_float32(params):
    return tuple(np.ascontiguousarray(params[k], dtype=np.float32) for k in ("wc", "bc", "wf", "bf"))


def build_onnx(wc, bc, wf, bf):
    from onnx import helper, numpy_helper

    inits = [
        numpy_helper.from_array(wc.reshape(CHANNELS, 1, 3, 3), "conv1.weight"),
        numpy_helper.from_array(bc, "conv1.bias"),
        numpy_helper.from_array(wf, "fc.weight"),
        numpy_helper.from_array(bf, "fc.bias"),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["pixels", "conv1.weight", "conv1.bias"], ["h"], name="conv1",
            kernel_shape=[3, 3], pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["h"], ["a"], name="relu1"),
        helper.make_node("MaxPool", ["a"], ["p"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
        helper.make_node("ArgMax", ["logits"], ["class"], name="argmax", axis=1, keepdims=0),
    ]
    return classifier_model(
        "digits_cnn",
        nodes,
        inits,
        ["N", 1, 8, 8],
        "8x8 digits CNN conv3x3x8-relu-maxpool2-fc10; input = pixel / 16.0",
        PRODUCER,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0, help="init/shuffle seed (the split uses 7)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--l2", type=float, default=1e-4)
    args = ap.parse_args()

    import onnx
    from onnx.reference import ReferenceEvaluator

    out: Path = args.out_dir
    is_test, labels, pixels = read_data(out / "digits.csv")
    x = (pixels.astype(np.float32) / np.float32(INPUT_SCALE)).astype(np.float32)
    x_tr, y_tr, x_te, y_te = x[~is_test], labels[~is_test], x[is_test], labels[is_test]
    print(f"{len(x_tr)} train, {len(x_te)} test")

    w = train(x_tr, y_tr, x_te, y_te, args.epochs, args.seed, args.lr, args.batch, args.l2)
    np_logits_te = forward(x_te, *w)[0]

    model = build_onnx(*w)
    onnx_path = out / "digits_cnn.onnx"
    onnx_path.write_bytes(model.SerializeToString(deterministic=True))

    # Check the file as written, with the ONNX reference implementation.
    sess = ReferenceEvaluator(onnx.load(str(onnx_path)))
    ref_logits_te, ref_class_te = sess.run(None, {"pixels": x_te.reshape(-1, 1, 8, 8)})
    _, ref_class_tr = sess.run(None, {"pixels": x_tr.reshape(-1, 1, 8, 8)})
    max_diff = float(np.max(np.abs(ref_logits_te.astype(np.float64) - np_logits_te)))
    if max_diff > 1e-4:
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
    (out / "reference_cnn.json").write_bytes(dump_json(reference).encode("ascii"))
    print(f"numpy vs ONNX reference: max |logit diff| = {max_diff:.3g}")
    print(f"train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f}")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes) and reference_cnn.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
