#!/usr/bin/python3
"""Where the C bf16 step should land against /emulated of reference_bf16.h5, and where bugs land.

Run by developers only:   /usr/bin/python3 tests/ref/bf16_spread.py      (about 5 s, writes nothing)

bf16 rounding is discontinuous: a float32 computation of the emulated step (mimae's C up to
its summation order) rounds a few operands to the neighbouring bf16 value where float64 does
not, and each such flip moves later operands across rounding boundaries too. So the C step
cannot match /emulated to float32 precision; this script measures by how much it can miss.
"C-like" runs are the emulation in float32 with the products summed in torch's order and in
six random orders (inner dimension permuted), key-bias gradients zeroed as core/vit/block.c
does. "Bug" runs are float32 implementations of plausible mistakes. Every run is compared with
the float64 emulation with the measures of tests/test_reference.c plus two more (the gradients
of the model and of Q each as one vector: "global"; the median over tensors).
The numbers set the tolerances proposed in tests/ref/README.md.
"""
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True                   # no __pycache__ in tests/ref
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as mr  # noqa: E402

R = mr.bf16_round
KEY_BIAS = {"blocks.0": 32, "blocks.1": 32, "decoder_blocks.0": 24, "decoder_blocks.1": 24}


class ReorderedLinear(torch.autograd.Function):
    """Bf16Linear with every product summed in a random order (the summed index permuted)."""
    gen = None

    @staticmethod
    def forward(ctx, x, w, b):
        xr, wr = R(x), R(w)
        ctx.save_for_backward(xr, wr)
        k = torch.randperm(x.shape[-1], generator=ReorderedLinear.gen)
        return xr[..., k] @ wr[:, k].T + b

    @staticmethod
    def backward(ctx, dy):
        xr, wr = ctx.saved_tensors
        dyr = R(dy)
        o = torch.randperm(dy.shape[-1], generator=ReorderedLinear.gen)
        X, D = xr.reshape(-1, xr.shape[-1]), dyr.reshape(-1, dy.shape[-1])
        r = torch.randperm(X.shape[0], generator=ReorderedLinear.gen)
        return dyr[..., o] @ wr[o], D[r].T @ X[r], dy.reshape(-1, dy.shape[-1]).sum(0)


class ForwardOnlyLinear(torch.autograd.Function):
    """Bug: operands rounded in the forward product only; the backward in float32."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return R(x) @ R(w).T + b

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        D = dy.reshape(-1, dy.shape[-1])
        return dy @ w, D.T @ x.reshape(-1, x.shape[-1]), D.sum(0)


class RoundedOutputLinear(torch.autograd.Function):
    """Bug (autocast's semantics on the linear layers alone): results and bias rounded too."""

    @staticmethod
    def forward(ctx, x, w, b):
        xr, wr = R(x), R(w)
        ctx.save_for_backward(xr, wr)
        return R(xr @ wr.T + R(b))

    @staticmethod
    def backward(ctx, dy):
        xr, wr = ctx.saved_tensors
        D = R(dy).reshape(-1, dy.shape[-1])
        return R(R(dy) @ wr), R(D.T @ xr.reshape(-1, xr.shape[-1])), R(dy.reshape(-1, dy.shape[-1]).sum(0))


def gradients_key_bias_zeroed(p, model_names, q_names, losses, _grad=mr.gradients):
    """mr.gradients, with the key part of each qkv bias gradient set to 0 as the C code does."""
    g = _grad(p, model_names, q_names, losses)
    for block, d in KEY_BIAS.items():
        t = g[f"{block}.attn.qkv.bias"].clone()
        t[d:2 * d] = 0
        g[f"{block}.attn.qkv.bias"] = t
    return g


def run_with(linear, args, dtype):
    """mr.run in emulated mode with `linear` in place of Bf16Linear.apply."""
    saved = mr.Bf16Linear.apply
    mr.Bf16Linear.apply = linear
    try:
        return mr.run(*args, mode="emulated", dtype=dtype)
    finally:
        mr.Bf16Linear.apply = saved


def measures(res, ref):
    """One row: initial losses, 5-step losses, gradients (model, Q), parameters after 5 steps."""
    c = mr.compare(res, ref)
    row = dict(loss=max(c["losses"].values()), loss_wo_Lmin=max(v for k, v in c["losses"].items() if k != "L_min"),
               train_wo_Lmin=max(v for k, v in c["train_losses"].items() if k != "L_min"),
               dLmin_abs=max(abs(a - b) for a, b in zip(res["log"]["L_min"], ref["log"]["L_min"])))
    for block, is_q in (("model", False), ("q", True)):
        rels = {n: v for n, v in c["grads"].items() if n.startswith("q.") == is_q}
        worst = max(rels, key=rels.get)
        row[block] = (rels[worst], worst, c["grads_global"][block], float(np.median(list(rels.values()))))
    flat = lambda d: torch.cat([v.detach().double().reshape(-1) for v in d.values()])
    row["params"] = (c["params_after_max"], c["params_after_worst"], mr.rel_norm(flat(res["p_after"]), flat(ref["p_after"])))
    row["elementwise"] = c["grads_elementwise_max"]
    return row


def worst_of(rows):
    """Each measure's largest value over the rows (the names: the worst first field's)."""
    out = {}
    for k, v in rows[0].items():
        if isinstance(v, tuple):
            named = max(rows, key=lambda r: r[k][0])[k]
            out[k] = tuple(named[i] if isinstance(x, str) else max(r[k][i] for r in rows)
                           for i, x in enumerate(v))
        else:
            out[k] = max(r[k] for r in rows)
    return out


def print_row(name, r):
    m, q, p = r["model"], r["q"], r["params"]
    print(f"{name:28s} {r['loss']:8.1e} {r['loss_wo_Lmin']:8.1e} {r['train_wo_Lmin']:8.1e} {r['dLmin_abs']:8.1e} | "
          f"{m[0]:8.2e} {m[2]:8.2e} {m[3]:8.2e} | {q[0]:8.2e} {q[2]:8.2e} | {r['elementwise']:7.2f} | "
          f"{p[0]:8.2e} {p[2]:8.2e}  worst: {m[1]}, {p[1]}")


def main():
    cfg = mr.CONFIG
    p0, images, perm, model_shapes, q_shapes = mr.setup(cfg)
    args = (p0, images, perm, cfg, model_shapes, q_shapes)
    ref64 = mr.run(*args)
    emulated = mr.run(*args, mode="emulated")
    mr.gradients = gradients_key_bias_zeroed
    print("against /emulated (float64).  losses: worst initial term, same without L_min, worst over the"
          " 5 steps without L_min, max |dL_min| (absolute);\ngradients, per tensor norm-relative: model max,"
          " model global, model median | Q max, Q global | test_reference.c's element-wise measure |"
          " params after 5 steps: max per tensor, global")
    print(f"{'':28s} {'loss':>8s} {'-L_min':>8s} {'5-step':>8s} {'|dLmin|':>8s} | {'max':>8s} {'global':>8s} "
          f"{'median':>8s} | {'Q max':>8s} {'Q glob':>8s} | {'elem':>7s} | {'p max':>8s} {'p glob':>8s}")
    rows = {"C-like, torch order": measures(mr.run(*args, mode="emulated", dtype=torch.float32), emulated)}
    for s in range(6):
        ReorderedLinear.gen = torch.Generator().manual_seed(100 + s)
        rows[f"C-like, sum order {s}"] = measures(run_with(ReorderedLinear.apply, args, torch.float32), emulated)
    for name, r in rows.items():
        print_row(name, r)
    print_row("C-like: worst of each", worst_of(list(rows.values())))
    print_row("bug: no bf16 (f32 products)", measures(mr.run(*args, mode="exact", dtype=torch.float32), emulated))
    print_row("bug: bf16 forward only", measures(run_with(ForwardOnlyLinear.apply, args, torch.float32), emulated))
    print_row("bug: results rounded too", measures(run_with(RoundedOutputLinear.apply, args, torch.float32), emulated))
    print_row("autocast (root of the file)", measures(mr.run(*args, mode="autocast", dtype=torch.float32), emulated))
    mr.gradients = gradients_key_bias_zeroed.__defaults__[0]
    print("against float64 (reference.h5), no key-bias zeroing:")
    print_row("emulated (/emulated)", measures(emulated, ref64))
    print_row("autocast (root)", measures(mr.run(*args, mode="autocast", dtype=torch.float32), ref64))
    print_row("float32, no bf16", measures(mr.run(*args, mode="exact", dtype=torch.float32), ref64))


if __name__ == "__main__":
    main()
