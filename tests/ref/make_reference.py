#!/usr/bin/python3
"""Regenerates tests/ref/reference.h5 (and reference_bf16.h5), the PyTorch reference for mimae's C step.

Run by developers only:
    /usr/bin/python3 tests/ref/make_reference.py [--selftest]                   # reference.h5
    /usr/bin/python3 tests/ref/make_reference.py --precision bf16 [--selftest]  # reference_bf16.h5

Everything is computed in float64 from float32-rounded inputs and parameters; the
fixture stores the tensors as float32 and the losses as float64. The model follows
docs/METHOD.md (steps 2-12) with random (non-MAE) initial values so every path is exercised.
With --precision bf16 the same step is also run with bf16 linear layers (train.precision
= bf16, issue 18), two ways: under torch.autocast on CPU, and emulated (operands of the
linear layers' products rounded to bf16, everything else float64).
The layout of the files is described in tests/ref/README.md.
"""
import argparse
import contextlib
import math
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

SEED = 1234
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = {"f32": os.path.join(HERE, "reference.h5"), "bf16": os.path.join(HERE, "reference_bf16.h5")}

# Root attributes of reference.h5 (blr is raised from 1.5e-4 so 5 steps show).
CONFIG = dict(
    img_h=16, img_w=16, channels=3, patch=4,
    enc_dim=32, enc_depth=2, enc_heads=2, dec_dim=24, dec_depth=2, dec_heads=3,
    mlp_ratio=4, num_masks=4, mask_ratio=0.75, norm_pix=1, pool=0,
    proj_hidden=64, proj_out=16, q_hidden=20, club_contrast=0, tau=0.07,
    w_rec=1.0, w_max=0.1, w_min=0.01, batch=6,
    blr=0.05, min_lr=1e-3, weight_decay=0.05, beta1=0.9, beta2=0.95, adam_eps=1e-8,
    warmup_iters=2, total_iters=6, global_batch=6,
)
TRAIN_STEPS = 5


def dims(cfg):
    """Derived sizes: grid, L patches, P pixels per patch, V visible per mask."""
    gh, gw = cfg["img_h"] // cfg["patch"], cfg["img_w"] // cfg["patch"]
    L = gh * gw
    P = cfg["patch"] ** 2 * cfg["channels"]
    V = int(L * (1 - cfg["mask_ratio"]))
    assert cfg["num_masks"] * V <= L
    return gh, gw, L, P, V


# ---------------------------------------------------------------- fixed pieces

def sincos_1d(d, pos):
    """(len(pos), d): concat(sin(pos*omega), cos(pos*omega)), omega[m] = 10000^(-m/(d/2))."""
    omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
    out = np.outer(pos.astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim, gh, gw, cls_row):
    """MAE's 2-D table, raster order: patch (i, j) -> concat(1d(dim/2, j), 1d(dim/2, i))."""
    rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    emb = np.concatenate([sincos_1d(dim // 2, cols.reshape(-1)),
                          sincos_1d(dim // 2, rows.reshape(-1))], axis=1)
    if cls_row:
        emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return torch.from_numpy(emb)


def patchify(images, p):
    """(B, H, W, C) -> (B, L, P); patch vector ordered (row-in-patch, col-in-patch, channel)."""
    B, H, W, C = images.shape
    x = images.reshape(B, H // p, p, W // p, p, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


# ---------------------------------------------------------------- parameters

def param_shapes(cfg):
    """Ordered {name: shape} of the model (encoder, decoder, projector) and of Q."""
    _, _, L, P, _ = dims(cfg)
    D, Dd, H = cfg["enc_dim"], cfg["dec_dim"], cfg["q_hidden"]
    r = cfg["mlp_ratio"]

    def block(prefix, d):
        return {f"{prefix}.norm1.weight": (d,), f"{prefix}.norm1.bias": (d,),
                f"{prefix}.attn.qkv.weight": (3 * d, d), f"{prefix}.attn.qkv.bias": (3 * d,),
                f"{prefix}.attn.proj.weight": (d, d), f"{prefix}.attn.proj.bias": (d,),
                f"{prefix}.norm2.weight": (d,), f"{prefix}.norm2.bias": (d,),
                f"{prefix}.mlp.fc1.weight": (r * d, d), f"{prefix}.mlp.fc1.bias": (r * d,),
                f"{prefix}.mlp.fc2.weight": (d, r * d), f"{prefix}.mlp.fc2.bias": (d,)}

    model = {"patch_embed.weight": (D, P), "patch_embed.bias": (D,), "cls_token": (D,)}
    for i in range(cfg["enc_depth"]):
        model.update(block(f"blocks.{i}", D))
    model.update({"norm.weight": (D,), "norm.bias": (D,),
                  "decoder_embed.weight": (Dd, D), "decoder_embed.bias": (Dd,),
                  "mask_token": (Dd,)})
    for i in range(cfg["dec_depth"]):
        model.update(block(f"decoder_blocks.{i}", Dd))
    ph, po = cfg["proj_hidden"], cfg["proj_out"]
    model.update({"decoder_norm.weight": (Dd,), "decoder_norm.bias": (Dd,),
                  "decoder_pred.weight": (P, Dd), "decoder_pred.bias": (P,),
                  "projector.fc1.weight": (ph, D), "projector.fc1.bias": (ph,),
                  "projector.fc2.weight": (po, ph), "projector.fc2.bias": (po,)})
    q = {"q.embed.weight": (H, P), "q.embed.bias": (H,)}
    for head in ("mu", "logvar"):
        q.update({f"q.{head}.fc1.weight": (H, H), f"q.{head}.fc1.bias": (H,),
                  f"q.{head}.fc2.weight": (D, H), f"q.{head}.fc2.bias": (D,)})
    return model, q


def init_value(rng, name, shape):
    """Random init (not MAE's): every path gets a non-trivial value."""
    if name in ("cls_token", "mask_token"):
        v = rng.normal(0.0, 0.02, shape) * 10
    elif "norm" in name and name.endswith(".weight"):
        v = 1.0 + rng.normal(0.0, 0.1, shape)
    elif len(shape) == 2:
        v = rng.normal(0.0, 1.0 / math.sqrt(shape[1]), shape)
    else:  # biases and LayerNorm biases
        v = rng.normal(0.0, 0.05, shape)
    return v.astype(np.float32)


def uses_decay(name, shape):
    """AdamW weight decay on matrices and the cls/mask tokens only."""
    return len(shape) == 2 or name in ("cls_token", "mask_token")


# ---------------------------------------------------------------- linear layers' precision

# How linear() multiplies, set by precision() for the forward passes:
#   "exact"     x W^T + b in the tensors' own dtype (reference.h5 is float64 throughout);
#   "emulated"  mimae's train.precision = bf16: the operands of the forward and backward
#               products rounded to bf16, the products and outputs not rounded (Bf16Linear);
#   "autocast"  F.linear (nn.Linear's op) under torch.autocast("cpu", dtype=torch.bfloat16),
#               which also runs every other autocast-listed op (matmul...) in bf16.
LINEAR_MODE = "exact"


@contextlib.contextmanager
def precision(mode):
    """Runs the enclosed forward with the linear layers in `mode` (see LINEAR_MODE)."""
    global LINEAR_MODE
    assert mode in ("exact", "emulated", "autocast")
    saved, LINEAR_MODE = LINEAR_MODE, mode
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "autocast"):
            yield
    finally:
        LINEAR_MODE = saved


def bf16_round(t):
    """t rounded to bf16 (nearest even) from float32, as mimae rounds its f32 operands; t's dtype."""
    return t.float().bfloat16().to(t.dtype)


class Bf16Linear(torch.autograd.Function):
    """y = bf16(x) bf16(W)^T + b; dx = bf16(dy) bf16(W), dW = bf16(dy)^T bf16(x), db = sum dy.

    Products and sums in the tensors' dtype (bf16 pairs multiply exactly in f32 and f64)."""

    @staticmethod
    def forward(ctx, x, w, b):
        xr, wr = bf16_round(x), bf16_round(w)
        ctx.save_for_backward(xr, wr)
        return xr @ wr.T + b

    @staticmethod
    def backward(ctx, dy):
        xr, wr = ctx.saved_tensors
        dyr = bf16_round(dy)
        dw = dyr.reshape(-1, dy.shape[-1]).T @ xr.reshape(-1, xr.shape[-1])
        return dyr @ wr, dw, dy.reshape(-1, dy.shape[-1]).sum(0)


# ---------------------------------------------------------------- model pieces

def linear(x, p, name):
    w, b = p[name + ".weight"], p[name + ".bias"]
    if LINEAR_MODE == "emulated":
        return Bf16Linear.apply(x, w, b)
    if LINEAR_MODE == "autocast":
        return F.linear(x, w, b)
    return x @ w.T + b


def layer_norm(x, p, name):
    return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"], eps=1e-6)


def attention(x, p, name, heads):
    """Multi-head self-attention over (S, T, d); qkv columns [q | k | v], head-major inside."""
    S, T, d = x.shape
    dh = d // heads
    qkv = linear(x, p, name + ".qkv").reshape(S, T, 3, heads, dh).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]                          # (S, heads, T, dh)
    probs = torch.softmax(q @ k.transpose(-2, -1) * dh ** -0.5, dim=-1)
    out = (probs @ v).transpose(1, 2).reshape(S, T, d)
    return linear(out, p, name + ".proj")


def block(x, p, name, heads):
    """Pre-norm ViT block: x += attn(LN1 x); x += fc2(GELU(fc1(LN2 x)))."""
    x = x + attention(layer_norm(x, p, name + ".norm1"), p, name + ".attn", heads)
    h = F.gelu(linear(layer_norm(x, p, name + ".norm2"), p, name + ".mlp.fc1"))
    return x + linear(h, p, name + ".mlp.fc2")


def encoder(vis_patches, vis_idx, p, cfg, pos_enc):
    """(S, V, P) visible patches -> h (S, V+1, D) after the final LayerNorm."""
    x = linear(vis_patches, p, "patch_embed") + pos_enc[1 + vis_idx]
    cls = (p["cls_token"] + pos_enc[0]).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1)
    for i in range(cfg["enc_depth"]):
        x = block(x, p, f"blocks.{i}", cfg["enc_heads"])
    return layer_norm(x, p, "norm")


def decoder(h, vis_idx, p, cfg, pos_dec, L):
    """h (S, V+1, D) -> pred (S, L, P): mask tokens fill hidden positions, raster order."""
    y = linear(h, p, "decoder_embed")
    S, Dd = y.shape[0], y.shape[2]
    full = p["mask_token"].expand(S, L, Dd).clone()
    full[torch.arange(S)[:, None], vis_idx] = y[:, 1:].to(full.dtype)   # bf16 under autocast
    x = torch.cat([y[:, :1], full], dim=1) + pos_dec
    for i in range(cfg["dec_depth"]):
        x = block(x, p, f"decoder_blocks.{i}", cfg["dec_heads"])
    x = linear(layer_norm(x, p, "decoder_norm"), p, "decoder_pred")
    return x[:, 1:]


def rec_loss(pred, target, vis_idx, norm_pix):
    """Mean squared error over the patches hidden from each sequence, then over sequences."""
    if norm_pix:
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)  # unbiased
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = ((pred - target) ** 2).mean(-1)               # (S, L)
    hidden = torch.ones_like(per_patch)
    hidden[torch.arange(pred.shape[0])[:, None], vis_idx] = 0.0
    return ((per_patch * hidden).sum(1) / hidden.sum(1)).mean()


def projector(z, p):
    """u = g(z) / max(|g(z)|, 1e-12), g = fc2(GELU(fc1 z))."""
    g = linear(F.gelu(linear(z, p, "projector.fc1")), p, "projector.fc2")
    return F.normalize(g, dim=-1, eps=1e-12)


def infonce_loss(u, B, N, tau):
    """Mean over ordered mask pairs (i != k) of CE(U_i U_k^T / tau, arange(B)); 0 for N = 1."""
    U = u.reshape(B, N, -1)
    target = torch.arange(B)
    terms = [F.cross_entropy(U[:, i] @ U[:, k].T / tau, target)
             for i in range(N) for k in range(N) if i != k]
    return torch.stack(terms).mean() if terms else u.new_zeros(())


def q_net(vis_patches, vis_idx, p, pos_q):
    """Approximation network Q: s = mean(embed(patch) + pos_q); (mu, logvar) of q(z|s)."""
    s = (linear(vis_patches, p, "q.embed") + pos_q[vis_idx]).mean(1)
    mu = linear(F.relu(linear(s, p, "q.mu.fc1")), p, "q.mu.fc2")
    logvar = torch.tanh(linear(F.relu(linear(s, p, "q.logvar.fc1")), p, "q.logvar.fc2"))
    return mu, logvar


def club_loss(z, mu, logvar, B, N):
    """CLUB over the masks of one image; mu/logvar detached so Q gets no gradient."""
    z, mu, ivar = z.reshape(B, N, -1), mu.detach().reshape(B, N, -1), torch.exp(-logvar.detach()).reshape(B, N, -1)
    pos = ((z - mu) ** 2 * ivar).sum(-1)                              # (B, N_j)
    neg = ((z[:, None] - mu[:, :, None]) ** 2 * ivar[:, :, None]).sum(-1)  # (B, N_j, N_k)
    return (-0.5 * pos + 0.5 * neg.mean(-1)).mean()


def q_nll_loss(z, mu, logvar):
    """Gaussian NLL of the detached latents under Q (Q's only objective)."""
    zd = z.detach()
    return (0.5 * ((zd - mu) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)).mean()


def forward(p, images, perm, cfg):
    """One step's losses and intermediates for sequences s = b*N + k."""
    gh, gw, L, P, V = dims(cfg)
    B, N = images.shape[0], cfg["num_masks"]
    patches = patchify(images, cfg["patch"])                          # (B, L, P)
    vis_idx = perm[:, :N * V].reshape(B * N, V)                       # (S, V)
    vis_patches = patches[torch.arange(B).repeat_interleave(N)[:, None], vis_idx]
    pos_enc = sincos_2d(cfg["enc_dim"], gh, gw, cls_row=True).to(images.dtype)
    pos_dec = sincos_2d(cfg["dec_dim"], gh, gw, cls_row=True).to(images.dtype)
    pos_q = sincos_2d(cfg["q_hidden"], gh, gw, cls_row=False).to(images.dtype)

    h = encoder(vis_patches, vis_idx, p, cfg, pos_enc)
    pred = decoder(h, vis_idx, p, cfg, pos_dec, L)
    L_rec = rec_loss(pred, patches.repeat_interleave(N, dim=0), vis_idx, cfg["norm_pix"])
    assert cfg["pool"] == 0 and cfg["club_contrast"] == 0
    z = h[:, 1:].mean(1)
    u = projector(z, p)
    L_max = infonce_loss(u, B, N, cfg["tau"])
    mu, logvar = q_net(vis_patches, vis_idx, p, pos_q)
    L_min = club_loss(z, mu, logvar, B, N)
    L_q = q_nll_loss(z, mu, logvar)
    L_tot = cfg["w_rec"] * L_rec + cfg["w_max"] * L_max + cfg["w_min"] * L_min
    losses = dict(L_rec=L_rec, L_max=L_max, L_min=L_min, L_q=L_q, L=L_tot)
    debug = dict(z=z, u=u, mu=mu, logvar=logvar, pred=pred, h=h)
    return losses, debug


def gradients(p, model_names, q_names, losses):
    """dL/d(model params) and dL_q/d(q params), as {name: tensor}."""
    gm = torch.autograd.grad(losses["L"], [p[n] for n in model_names], retain_graph=True)
    gq = torch.autograd.grad(losses["L_q"], [p[n] for n in q_names])
    return dict(zip(model_names, gm)) | dict(zip(q_names, gq))


# ---------------------------------------------------------------- training

def lr_at(t, cfg):
    """Linear warmup from 0, then half-cycle cosine to min_lr (per iteration)."""
    peak = cfg["blr"] * cfg["global_batch"] / 256
    if t < cfg["warmup_iters"]:
        return peak * t / cfg["warmup_iters"]
    frac = (t - cfg["warmup_iters"]) / (cfg["total_iters"] - cfg["warmup_iters"])
    return cfg["min_lr"] + (peak - cfg["min_lr"]) * 0.5 * (1 + math.cos(math.pi * frac))


def make_adamw(p, names, shapes, cfg):
    decay = [p[n] for n in names if uses_decay(n, shapes[n])]
    no_decay = [p[n] for n in names if not uses_decay(n, shapes[n])]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=0.0, betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["adam_eps"])


def train(p0, images, perm, cfg, model_shapes, q_shapes, mode="exact"):
    """TRAIN_STEPS AdamW steps on the same batch/masks; losses recorded before each update.

    The forward passes run under precision(mode); backward and AdamW in the parameters' dtype."""
    p = {n: v.detach().clone().requires_grad_(True) for n, v in p0.items()}
    opt_m = make_adamw(p, list(model_shapes), model_shapes, cfg)
    opt_q = make_adamw(p, list(q_shapes), q_shapes, cfg)
    log = {k: [] for k in ("lr", "L_rec", "L_max", "L_min", "L_q", "L")}
    for t in range(TRAIN_STEPS):
        lr = lr_at(t, cfg)
        for opt in (opt_m, opt_q):
            for group in opt.param_groups:
                group["lr"] = lr
        with precision(mode):
            losses, _ = forward(p, images, perm, cfg)
        log["lr"].append(lr)
        for k, v in losses.items():
            log[k].append(v.item())
        for n, g in gradients(p, list(model_shapes), list(q_shapes), losses).items():
            p[n].grad = g
        opt_m.step()
        opt_q.step()
    return log, p


def run(p0, images, perm, cfg, model_shapes, q_shapes, mode="exact", dtype=torch.float64):
    """One step (losses, gradients, intermediates) and the TRAIN_STEPS trajectory, with the
    parameters and images in `dtype` and the linear layers in `mode`."""
    p = {n: v.detach().to(dtype).requires_grad_(True) for n, v in p0.items()}
    images = images.to(dtype)
    with precision(mode):
        losses, debug = forward(p, images, perm, cfg)
    grads = gradients(p, list(model_shapes), list(q_shapes), losses)
    log, p_after = train(p, images, perm, cfg, model_shapes, q_shapes, mode)
    return dict(p=p, losses=losses, grads=grads, debug=debug, log=log, p_after=p_after)


# ---------------------------------------------------------------- checks

def finite_difference_check(p, images, perm, cfg, grads):
    """Central differences in float64 on a few entries; prints the relative errors."""
    probes = [("patch_embed.weight", (3, 5), "L"), ("cls_token", (7,), "L"),
              ("blocks.0.attn.qkv.weight", (40, 2), "L"), ("blocks.1.norm2.weight", (1,), "L"),
              ("norm.bias", (0,), "L"), ("mask_token", (4,), "L"),
              ("decoder_blocks.1.mlp.fc1.weight", (10, 3), "L"), ("decoder_pred.bias", (9,), "L"),
              ("projector.fc1.weight", (12, 6), "L"), ("projector.fc2.bias", (2,), "L"),
              ("q.embed.weight", (1, 17), "L_q"), ("q.mu.fc2.bias", (3,), "L_q"),
              ("q.logvar.fc1.weight", (5, 8), "L_q")]
    eps, worst = 1e-6, 0.0
    for name, idx, loss in probes:
        with torch.no_grad():
            orig = p[name][idx].item()
            p[name][idx] = orig + eps
            up = forward(p, images, perm, cfg)[0][loss].item()
            p[name][idx] = orig - eps
            down = forward(p, images, perm, cfg)[0][loss].item()
            p[name][idx] = orig
        fd, ad = (up - down) / (2 * eps), grads[name][idx].item()
        rel = abs(fd - ad) / max(abs(fd), abs(ad), 1e-8)
        worst = max(worst, rel)
        print(f"  d{loss}/d{name}{list(idx)}: autograd {ad:+.9e}  fd {fd:+.9e}  rel {rel:.2e}")
    assert worst < 1e-5, f"finite-difference mismatch {worst:.2e}"
    print(f"  finite differences: worst relative error {worst:.2e}")


def selftest(p, images, perm):
    """N = 1 must give L_max = L_min = 0; the 2-D pos-embed must match MAE's square form."""
    cfg1 = dict(CONFIG, num_masks=1)
    with torch.no_grad():
        losses, _ = forward(p, images, perm, cfg1)
    print(f"  N=1: L_max {losses['L_max'].item():.3e}  L_min {losses['L_min'].item():.3e}")
    assert losses["L_max"].item() == 0.0 and abs(losses["L_min"].item()) < 1e-12
    # MAE: grid = meshgrid(grid_w, grid_h); emb_h from grid[0]; concat(emb_h, emb_w).
    gs, d = 4, 32
    g = np.stack(np.meshgrid(np.arange(gs, dtype=np.float64), np.arange(gs, dtype=np.float64)))
    mae = np.concatenate([sincos_1d(d // 2, g[0].reshape(-1)), sincos_1d(d // 2, g[1].reshape(-1))], 1)
    assert np.allclose(sincos_2d(d, gs, gs, cls_row=False).numpy(), mae)
    # block() against PyTorch's own pre-norm transformer layer with the same weights.
    D, heads, name = CONFIG["enc_dim"], CONFIG["enc_heads"], "blocks.1"
    ref = torch.nn.TransformerEncoderLayer(D, heads, 4 * D, dropout=0.0, activation="gelu",
                                           layer_norm_eps=1e-6, batch_first=True, norm_first=True)
    with torch.no_grad():
        for dst, src in [("self_attn.in_proj_weight", "attn.qkv.weight"), ("self_attn.in_proj_bias", "attn.qkv.bias"),
                         ("self_attn.out_proj.weight", "attn.proj.weight"), ("self_attn.out_proj.bias", "attn.proj.bias"),
                         ("linear1.weight", "mlp.fc1.weight"), ("linear1.bias", "mlp.fc1.bias"),
                         ("linear2.weight", "mlp.fc2.weight"), ("linear2.bias", "mlp.fc2.bias"),
                         ("norm1.weight", "norm1.weight"), ("norm1.bias", "norm1.bias"),
                         ("norm2.weight", "norm2.weight"), ("norm2.bias", "norm2.bias")]:
            ref.get_parameter(dst).copy_(p[f"{name}.{src}"])
        x = torch.randn(3, 5, D)
        assert torch.allclose(ref.eval()(x), block(x, p, name, heads), atol=1e-12)
    print("  selftest passed")


def check_bf16_linear():
    """bf16_round is round-to-nearest-even through f32, and Bf16Linear's backward is right: on
    operands that are already bf16 its gradients are autograd's of the plain x W^T + b."""
    v = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -(1 + 2**-8), 1 + 2**-8 + 2**-40])
    assert bf16_round(v).tolist() == [1.0, 1 + 2**-6, 1 + 2**-7, -1.0, 1.0]   # last: f32 first
    g = torch.Generator().manual_seed(SEED)          # leaves the global generator alone
    x, w, b, dy = (bf16_round(torch.randn(s, generator=g)) for s in ((3, 5, 8), (6, 8), (6,), (3, 5, 6)))
    grads = []
    for f in (Bf16Linear.apply, lambda x, w, b: x @ w.T + b):
        xw = [t.clone().requires_grad_(True) for t in (x, w, b)]
        grads.append(torch.autograd.grad(f(*xw), xw, dy))
    for got, want in zip(*grads):
        assert torch.allclose(got, want, rtol=1e-13, atol=0)
    x = torch.randn(3, 5, 8, generator=g)
    assert torch.equal(Bf16Linear.apply(x, w, b), bf16_round(x) @ w.T + b)
    assert not torch.equal(bf16_round(x), x)
    print("  bf16 rounding and Bf16Linear's backward checked")


def autocast_table():
    """What CPU autocast (bf16) does to the ops the model uses, measured on this torch:
    [(op, result)]; printed by --precision bf16 and copied into README.md."""
    g = torch.Generator().manual_seed(SEED)
    x, w, b = (torch.randn(s, generator=g, dtype=torch.float32) for s in ((64, 512), (64, 512), (64,)))
    a4, b4 = (torch.randn(s, generator=g, dtype=torch.float32) for s in ((2, 3, 5, 8), (2, 3, 8, 5)))
    xb, lw, lb = x.bfloat16(), torch.ones(512, dtype=torch.float32), torch.zeros(512, dtype=torch.float32)
    ops = [("F.linear(x, W, b)", lambda: F.linear(x, w, b)),
           ("x @ W.T (2-D matmul)", lambda: x @ w.T),
           ("x @ W.T + b", lambda: x @ w.T + b),
           ("4-D matmul (q k^T, p v)", lambda: a4 @ b4),
           ("F.layer_norm(f32 input)", lambda: F.layer_norm(x, (512,), lw, lb, 1e-6)),
           ("F.layer_norm(bf16 input, f32 weight)", lambda: F.layer_norm(xb, (512,), lw, lb, 1e-6)),
           ("torch.softmax(f32 input)", lambda: torch.softmax(x, -1)),
           ("torch.softmax(bf16 input)", lambda: torch.softmax(xb, -1)),
           ("F.gelu / F.relu / tanh / exp (bf16 input)", lambda: F.gelu(xb)),
           ("F.normalize(bf16 input)", lambda: F.normalize(xb, dim=-1)),
           ("F.cross_entropy(bf16 logits)", lambda: F.cross_entropy(xb, torch.zeros(64, dtype=torch.long))),
           ("bf16 + f32, cat(bf16, f32)", lambda: torch.cat([xb, x]) + x.repeat(2, 1)),
           ("float64 F.linear", lambda: F.linear(x.double(), w.double(), b.double()))]
    rows = []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for name, op in ops:
            try:
                rows.append((name, str(op().dtype).replace("torch.", "")))
            except RuntimeError as e:
                rows.append((name, "error: " + str(e).splitlines()[0]))
        y = F.linear(x, w, b)
    exact = F.linear(x.bfloat16().double(), w.bfloat16().double(), b.bfloat16().double())
    rows.append(("F.linear result == bf16(exact product of bf16 operands + bf16(b))",
                 f"{(y.double() == exact.float().bfloat16().double()).double().mean().item():.4f} of elements"))
    xg, wg, bg = (t.clone().requires_grad_(True) for t in (x, w, b))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yg = F.linear(xg, wg, bg)
    yg.float().sum().backward()
    is_bf16 = lambda t: torch.equal(t, t.bfloat16().float())
    rows.append(("F.linear backward: dx, dW, db", ", ".join(
        f"{t.grad.dtype}".replace("torch.", "") + (" bf16-valued" if is_bf16(t.grad) else "") for t in (xg, wg, bg))))
    return rows


# ---------------------------------------------------------------- comparison with float64

def rel_norm(got, want):
    """||got - want|| / ||want|| in float64."""
    got, want = got.detach().double(), want.detach().double()
    return ((got - want).norm() / want.norm().clamp_min(1e-12)).item()


def rel_elementwise(got, want):
    """tests/test_reference.c's gradient measure: the worse of rel_norm and the largest
    element-wise relative error with a floor of 1 % of want's RMS."""
    g, w = got.detach().double(), want.detach().double()
    floor = 1e-2 * w.pow(2).mean().sqrt() + 1e-20
    return max(rel_norm(g, w), ((g - w).abs() / (w.abs() + floor)).max().item())


def compare(res, ref):
    """How far run `res` is from run `ref`: per loss (and its worst over the TRAIN_STEPS),
    per gradient, the gradients of the model and of Q as one vector each (grads_global), and
    per parameter after the updates; with the worst of each."""
    worst = lambda d: max(d.items(), key=lambda kv: kv[1])
    rel = lambda a, b: abs(a - b) / max(abs(b), 1e-12)
    flat = lambda d, q: torch.cat([v.detach().double().reshape(-1) for n, v in d.items()
                                   if n.startswith("q.") == q])
    out = dict(losses={k: rel(v.item(), ref["losses"][k].item()) for k, v in res["losses"].items()},
               train_losses={k: max(rel(a, b) for a, b in zip(res["log"][k], ref["log"][k]))
                             for k in res["losses"]},
               grads={n: rel_norm(g, ref["grads"][n]) for n, g in res["grads"].items()},
               grads_global={b: rel_norm(flat(res["grads"], b == "q"), flat(ref["grads"], b == "q"))
                             for b in ("model", "q")},
               grads_elementwise={n: rel_elementwise(g, ref["grads"][n]) for n, g in res["grads"].items()},
               params_after={n: rel_norm(v, ref["p_after"][n]) for n, v in res["p_after"].items()})
    out["train_losses_max"] = max(out["train_losses"].values())
    for k in ("grads", "grads_elementwise", "params_after"):
        out[k + "_worst"], out[k + "_max"] = worst(out[k])
    return out


def print_comparison(title, c, top=4):
    print(f"{title}:")
    print("  losses      " + "  ".join(f"{k} {v:.2e}" for k, v in c["losses"].items()))
    print("  5-step max  " + "  ".join(f"{k} {v:.2e}" for k, v in c["train_losses"].items()))
    print("  grads_global model {model:.2e}  q {q:.2e}".format(**c["grads_global"]))
    for k in ("grads", "grads_elementwise", "params_after"):
        ranked = sorted(c[k].items(), key=lambda kv: -kv[1])[:top]
        print(f"  {k:17s} max {c[k + '_max']:.2e}  worst: " + ", ".join(f"{n} {v:.2e}" for n, v in ranked))


# ---------------------------------------------------------------- output

def write_run(f, group, res):
    """losses/, grads/, debug/, train/ of one run under `group` ("" = the root), and its
    rel_to_f64/ when it has been compared with the float64 run."""
    f32 = lambda t: t.detach().to(torch.float64).numpy().astype(np.float32)   # bf16 under autocast
    for k, v in res["losses"].items():
        f[f"{group}losses/{k}"] = np.float64(v.item())
    for n, g in res["grads"].items():
        f[f"{group}grads/{n}"] = f32(g)
    for k, v in res["debug"].items():
        f[f"{group}debug/{k}"] = f32(v)
    for k, v in res["log"].items():
        f[f"{group}train/{k}"] = np.asarray(v, dtype=np.float64)
    for n, v in res["p_after"].items():
        f[f"{group}train/params_after/{n}"] = f32(v)
    if "rel" in res:
        rel = res["rel"]
        for k in ("losses", "train_losses", "grads", "grads_global", "grads_elementwise", "params_after"):
            for n, v in rel[k].items():
                f[f"{group}rel_to_f64/{k}/{n}"] = np.float64(v)
        for k in ("grads", "grads_elementwise", "params_after"):
            f[f"{group}rel_to_f64/{k}_max"] = np.float64(rel[k + "_max"])
            f[f"{group}rel_to_f64/{k}_max"].attrs["worst"] = rel[k + "_worst"]
        f[f"{group}rel_to_f64/train_losses_max"] = np.float64(rel["train_losses_max"])


def write_h5(path, cfg, images, perm, p0, runs, attrs=None):
    """The configuration, batch and initial parameters, then each run under its group name
    ({group: run}); writes to a temporary name in the same directory, then renames."""
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        for k, v in cfg.items():
            f.attrs[k] = np.float64(v) if isinstance(v, float) else np.int32(v)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        f["images"] = images.numpy().astype(np.float32)
        f["perm"] = perm.numpy().astype(np.int32)
        for n, v in p0.items():
            f[f"params/{n}"] = v.detach().numpy().astype(np.float32)
        for group, res in runs.items():
            write_run(f, group, res)
        if "emulated/" in runs:
            f["emulated"].attrs["variant"] = (
                "float64; the linear layers' forward and backward product operands rounded to bf16")
    os.replace(tmp, path)


def bf16_runs(p0, images, perm, cfg, model_shapes, q_shapes, ref):
    """The two bf16 variants, compared with the float64 run `ref`; also prints how far the
    emulation moves in float32 arithmetic (mimae's C, up to summation order) and how far
    plain float32 is from float64 (the scale reference.h5's tolerances were set on)."""
    print("bf16 checks:")
    check_bf16_linear()
    print(f"CPU autocast (bf16) in torch {torch.__version__}:")
    for op, result in autocast_table():
        print(f"  {op:62s} -> {result}")
    args = (p0, images, perm, cfg, model_shapes, q_shapes)
    autocast = run(*args, mode="autocast", dtype=torch.float32)
    emulated = run(*args, mode="emulated", dtype=torch.float64)
    autocast["rel"], emulated["rel"] = compare(autocast, ref), compare(emulated, ref)
    print_comparison("autocast (float32 under torch.autocast) against float64", autocast["rel"])
    print_comparison("emulated (float64, bf16 operands) against float64", emulated["rel"])
    print_comparison("emulated in float32 against emulated in float64 (not stored)",
                     compare(run(*args, mode="emulated", dtype=torch.float32), emulated))
    print_comparison("float32 against float64, no bf16 (not stored)",
                     compare(run(*args, mode="exact", dtype=torch.float32), ref))
    return {"": autocast, "emulated/": emulated}


def print_run(res, title):
    print(f"{title} losses at the initial parameters:")
    for k, v in res["losses"].items():
        print(f"  {k:6s} {v.item():.12f}")
    print(f"{title} training (losses before each update):")
    log = res["log"]
    for t in range(TRAIN_STEPS):
        print(f"  step {t} lr {log['lr'][t]:.6e}  L {log['L'][t]:.9f}  L_rec {log['L_rec'][t]:.9f}"
              f"  L_max {log['L_max'][t]:.9f}  L_min {log['L_min'][t]:+.9f}  L_q {log['L_q'][t]:.9f}")


def setup(cfg):
    """Seeds torch (one thread, float64 default) and draws, from numpy seed SEED, the images,
    the masks' permutations and the initial parameters: (p0, images, perm, model_shapes, q_shapes)."""
    torch.manual_seed(SEED)
    torch.set_num_threads(1)          # fixed reduction order: a reproducible file
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(SEED)
    _, _, L, _, _ = dims(cfg)
    B = cfg["batch"]
    images32 = rng.normal(0.0, 1.0, (B, cfg["img_h"], cfg["img_w"], cfg["channels"])).astype(np.float32)
    perm = torch.from_numpy(np.stack([rng.permutation(L) for _ in range(B)]).astype(np.int64))
    model_shapes, q_shapes = param_shapes(cfg)
    shapes = model_shapes | q_shapes
    p0 = {n: torch.from_numpy(init_value(rng, n, s).astype(np.float64)).requires_grad_(True)
          for n, s in shapes.items()}
    images = torch.from_numpy(images32.astype(np.float64))
    return p0, images, perm, model_shapes, q_shapes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", choices=("f32", "bf16"), default="f32",
                    help="f32: reference.h5 (float64); bf16: reference_bf16.h5 (autocast, emulated)")
    ap.add_argument("--selftest", action="store_true", help="extra checks of the model pieces")
    opts = ap.parse_args()
    cfg = CONFIG
    p0, images, perm, model_shapes, q_shapes = setup(cfg)
    ref = run(p0, images, perm, cfg, model_shapes, q_shapes)      # float64 throughout
    print_run(ref, "float64")
    print("gradient check:")
    finite_difference_check(ref["p"], images, perm, cfg, ref["grads"])
    if opts.selftest:
        print("selftest:")
        selftest(ref["p"], images, perm)

    if opts.precision == "f32":
        runs, attrs = {"": ref}, None
    else:
        runs = bf16_runs(p0, images, perm, cfg, model_shapes, q_shapes, ref)
        attrs = dict(precision="bf16", torch_version=str(torch.__version__))
        print_run(runs[""], "autocast")
        print_run(runs["emulated/"], "emulated")
    write_h5(OUT[opts.precision], cfg, images, perm, p0, runs, attrs)
    print(f"wrote {OUT[opts.precision]}")


if __name__ == "__main__":
    main()
