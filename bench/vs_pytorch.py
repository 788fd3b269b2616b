#!/usr/bin/python3
"""PyTorch peer of mimae's single-process training step, for bench/vs_pytorch.

    /usr/bin/python3 bench/vs_pytorch.py --preset cifar|fmnist --masks N --threads T \
        [--steps K] [--warmup W] [--batch B]

The same model and step as core/optim/update.c, in float32: patchify, N disjoint masks
per image (a random permutation per image), the encoder on the B*N masked views, the
decoder over all L patches, the per-patch normalised reconstruction loss, the projector
and InfoNCE over ordered mask pairs, the approximation network Q with CLUB (detached
mu/logvar) and its own NLL L_q (detached z), one backward of L + L_q (the detaches keep
the model's gradient from L and Q's from L_q), and two AdamW optimisers with the
decay groups of MAE. MAE is N = 1 with w_max = w_min = 0 (the projector and Q still
run, as in mimae). The model follows tests/ref/make_reference.py, written with the
usual torch modules (nn.Linear, F.layer_norm, F.gelu, softmax, batched matmul).

Prints one line: `torch ms_per_step=<median> steps=<K> threads=<T> ...`.
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import make_reference  # noqa: E402  (the position tables of the PyTorch reference)

SMALL = dict(patch=4, D=192, depth=6, heads=3, Dd=128, ddepth=2, dheads=4, H=256,
             proj_hidden=384, proj_out=128)
PRESETS = {
    # fmnist-tiny's model (encoder 192 x 6, 3 heads; decoder 128 x 2, 4 heads) on 32x32x3
    # and 28x28x1 images, and the paper's ViT-B/16 (mimae's preset vit-b16)
    "cifar": dict(img=32, channels=3, **SMALL),
    "fmnist": dict(img=28, channels=1, **SMALL),
    "vitb16": dict(img=224, channels=3, patch=16, D=768, depth=12, heads=12, Dd=512, ddepth=8,
                   dheads=16, H=256, proj_hidden=1536, proj_out=128),
}


def sincos_2d(dim, gh, gw, cls_row):
    """MAE's fixed 2-D position table, the reference fixture's, in float32."""
    return make_reference.sincos_2d(dim, gh, gw, cls_row).float()


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        S, T, d = x.shape
        dh = d // self.heads
        qkv = self.qkv(x).reshape(S, T, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        probs = torch.softmax((q @ k.transpose(-2, -1)) * dh ** -0.5, dim=-1)
        return self.proj((probs @ v).transpose(1, 2).reshape(S, T, d))


class Block(nn.Module):
    """Pre-norm ViT block (timm's): x += attn(LN1 x); x += fc2(GELU(fc1(LN2 x)))."""

    def __init__(self, d, heads, ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = Attention(d, heads)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.fc1 = nn.Linear(d, ratio * d)
        self.fc2 = nn.Linear(ratio * d, d)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class MIMAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg
        D, Dd, H, P = c["D"], c["Dd"], c["H"], c["P"]
        self.cfg = c
        self.patch_embed = nn.Linear(P, D)
        self.cls_token = nn.Parameter(torch.zeros(D).normal_(0, 0.02))
        self.blocks = nn.ModuleList([Block(D, c["heads"], 4) for _ in range(c["depth"])])
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.decoder_embed = nn.Linear(D, Dd)
        self.mask_token = nn.Parameter(torch.zeros(Dd).normal_(0, 0.02))
        self.decoder_blocks = nn.ModuleList([Block(Dd, c["dheads"], 4) for _ in range(c["ddepth"])])
        self.decoder_norm = nn.LayerNorm(Dd, eps=1e-6)
        self.decoder_pred = nn.Linear(Dd, P)
        self.proj_fc1 = nn.Linear(D, c["proj_hidden"])
        self.proj_fc2 = nn.Linear(c["proj_hidden"], c["proj_out"])
        gh = gw = c["grid"]
        self.register_buffer("pos_enc", sincos_2d(D, gh, gw, True))
        self.register_buffer("pos_dec", sincos_2d(Dd, gh, gw, True))


class QNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        P, H, D = cfg["P"], cfg["H"], cfg["D"]
        self.embed = nn.Linear(P, H)
        self.mu_fc1, self.mu_fc2 = nn.Linear(H, H), nn.Linear(H, D)
        self.lv_fc1, self.lv_fc2 = nn.Linear(H, H), nn.Linear(H, D)
        self.register_buffer("pos_q", sincos_2d(H, cfg["grid"], cfg["grid"], False))

    def forward(self, vis_patches, vis_idx):
        s = (self.embed(vis_patches) + self.pos_q[vis_idx]).mean(1)
        mu = self.mu_fc2(F.relu(self.mu_fc1(s)))
        logvar = torch.tanh(self.lv_fc2(F.relu(self.lv_fc1(s))))
        return mu, logvar


def step_losses(model, qnet, images, perm, c):
    B, N, L, V, P, p = images.shape[0], c["N"], c["L"], c["V"], c["P"], c["patch"]
    H = W = c["img"]
    C = c["channels"]
    x = images.reshape(B, H // p, p, W // p, p, C).permute(0, 1, 3, 2, 4, 5)
    patches = x.reshape(B, L, P)
    S = B * N
    vis_idx = perm[:, :N * V].reshape(S, V)
    img_of = torch.arange(B).repeat_interleave(N)
    vis_patches = patches[img_of[:, None], vis_idx]                       # (S, V, P)
    # encoder
    pos = model.pos_enc
    xe = model.patch_embed(vis_patches) + pos[1 + vis_idx]
    cls = (model.cls_token + pos[0]).expand(S, 1, -1)
    xe = torch.cat([cls, xe], dim=1)
    for blk in model.blocks:
        xe = blk(xe)
    h = model.norm(xe)
    # decoder
    y = model.decoder_embed(h)
    Dd = y.shape[2]
    full = model.mask_token.expand(S, L, Dd).clone()
    full[torch.arange(S)[:, None], vis_idx] = y[:, 1:]
    xd = torch.cat([y[:, :1], full], dim=1) + model.pos_dec
    for blk in model.decoder_blocks:
        xd = blk(xd)
    pred = model.decoder_pred(model.decoder_norm(xd))[:, 1:]
    # reconstruction loss on hidden patches, per-patch normalised targets
    target = patches
    mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
    target = ((target - mean) / (var + 1e-6) ** 0.5)[img_of]
    per_patch = ((pred - target) ** 2).mean(-1)
    hidden = torch.ones_like(per_patch)
    hidden[torch.arange(S)[:, None], vis_idx] = 0.0
    L_rec = ((per_patch * hidden).sum(1) / hidden.sum(1)).mean()
    # MI terms
    z = h[:, 1:].mean(1)
    g = model.proj_fc2(F.gelu(model.proj_fc1(z)))
    u = F.normalize(g, dim=-1, eps=1e-12)
    if N > 1:
        U = u.reshape(B, N, -1)
        tgt = torch.arange(B)
        L_max = torch.stack([F.cross_entropy(U[:, i] @ U[:, k].T / c["tau"], tgt)
                             for i in range(N) for k in range(N) if i != k]).mean()
    else:
        L_max = u.new_zeros(())
    mu, logvar = qnet(vis_patches, vis_idx)
    zr, mur = z.reshape(B, N, -1), mu.detach().reshape(B, N, -1)
    ivar = torch.exp(-logvar.detach()).reshape(B, N, -1)
    pos_t = ((zr - mur) ** 2 * ivar).sum(-1)
    neg = ((zr[:, None] - mur[:, :, None]) ** 2 * ivar[:, :, None]).sum(-1)
    L_min = (-0.5 * pos_t + 0.5 * neg.mean(-1)).mean() if N > 1 else u.new_zeros(())
    zd = z.detach()
    L_q = (0.5 * ((zd - mu) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)).mean()
    L = c["w_rec"] * L_rec + c["w_max"] * L_max + c["w_min"] * L_min
    return L, L_q


def adamw(module, lr, foreach):
    decay = [p for n, p in module.named_parameters() if p.ndim == 2 or n in ("cls_token", "mask_token")]
    rest = [p for n, p in module.named_parameters() if not (p.ndim == 2 or n in ("cls_token", "mask_token"))]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                              {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8, foreach=foreach)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--masks", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--foreach", type=int, default=1, help="AdamW foreach implementation")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    pr = PRESETS[a.preset]
    grid = pr["img"] // pr["patch"]
    L = grid * grid
    V = int(L * (1 - 0.75))
    N = a.masks
    c = dict(pr, grid=grid, L=L, V=V, P=pr["patch"] ** 2 * pr["channels"], N=N, tau=0.07,
             w_rec=1.0, w_max=0.1 if N > 1 else 0.0, w_min=0.01 if N > 1 else 0.0)
    model, qnet = MIMAE(c), QNet(c)
    opt_m = adamw(model, 1.5e-4 * a.batch / 256, bool(a.foreach))
    opt_q = adamw(qnet, 1.5e-4 * a.batch / 256, bool(a.foreach))
    rng = np.random.default_rng(0)
    times = []
    for it in range(a.warmup + a.steps):
        images = torch.from_numpy(rng.normal(0, 1, (a.batch, c["img"], c["img"], c["channels"])).astype(np.float32))
        perm = torch.from_numpy(np.stack([rng.permutation(L) for _ in range(a.batch)]))
        t0 = time.perf_counter()
        opt_m.zero_grad(set_to_none=True)
        opt_q.zero_grad(set_to_none=True)
        L_tot, L_q = step_losses(model, qnet, images, perm, c)
        (L_tot + L_q).backward()
        gn = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters() if p.grad is not None))
        if not math.isfinite(L_tot.item()) or not math.isfinite(gn.item()):
            sys.exit("non-finite loss")
        opt_m.step()
        opt_q.step()
        t1 = time.perf_counter()
        if it >= a.warmup:
            times.append(t1 - t0)
    ms = 1e3 * statistics.median(times)
    print(f"torch ms_per_step={ms:.2f} min_ms={1e3 * min(times):.2f} steps={a.steps} "
          f"threads={torch.get_num_threads()} preset={a.preset} masks={N} batch={a.batch} "
          f"loss={L_tot.item():.4f} torch={torch.__version__}", flush=True)


if __name__ == "__main__":
    main()
