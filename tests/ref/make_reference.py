#!/usr/bin/python3
"""Regenerates tests/ref/reference.h5, the PyTorch reference for mimae's C step.

Run by developers only:   /usr/bin/python3 tests/ref/make_reference.py [--selftest]

Everything is computed in float64 from float32-rounded inputs and parameters; the
fixture stores the tensors as float32 and the losses as float64. The model follows
docs/METHOD.md (steps 2-12) with random (non-MAE) initial values so every path is exercised.
The layout of the file is described in tests/ref/README.md.
"""
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

SEED = 1234
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.h5")

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


# ---------------------------------------------------------------- model pieces

def linear(x, p, name):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


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
    full[torch.arange(S)[:, None], vis_idx] = y[:, 1:]
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
    pos_enc = sincos_2d(cfg["enc_dim"], gh, gw, cls_row=True)
    pos_dec = sincos_2d(cfg["dec_dim"], gh, gw, cls_row=True)
    pos_q = sincos_2d(cfg["q_hidden"], gh, gw, cls_row=False)

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


def train(p0, images, perm, cfg, model_shapes, q_shapes):
    """TRAIN_STEPS AdamW steps on the same batch/masks; losses recorded before each update."""
    p = {n: v.detach().clone().requires_grad_(True) for n, v in p0.items()}
    opt_m = make_adamw(p, list(model_shapes), model_shapes, cfg)
    opt_q = make_adamw(p, list(q_shapes), q_shapes, cfg)
    log = {k: [] for k in ("lr", "L_rec", "L_max", "L_min", "L_q", "L")}
    for t in range(TRAIN_STEPS):
        lr = lr_at(t, cfg)
        for opt in (opt_m, opt_q):
            for group in opt.param_groups:
                group["lr"] = lr
        losses, _ = forward(p, images, perm, cfg)
        log["lr"].append(lr)
        for k, v in losses.items():
            log[k].append(v.item())
        for n, g in gradients(p, list(model_shapes), list(q_shapes), losses).items():
            p[n].grad = g
        opt_m.step()
        opt_q.step()
    return log, p


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


# ---------------------------------------------------------------- output

def write_h5(path, cfg, images, perm, p0, losses, grads, debug, log, p_after):
    """Writes to a temporary name in the same directory, then renames."""
    tmp = path + ".tmp"
    f32 = lambda t: t.detach().numpy().astype(np.float32)
    with h5py.File(tmp, "w") as f:
        for k, v in cfg.items():
            f.attrs[k] = np.float64(v) if isinstance(v, float) else np.int32(v)
        f["images"] = images.numpy().astype(np.float32)
        f["perm"] = perm.numpy().astype(np.int32)
        for n, v in p0.items():
            f[f"params/{n}"] = f32(v)
        for k, v in losses.items():
            f[f"losses/{k}"] = np.float64(v.item())
        for n, g in grads.items():
            f[f"grads/{n}"] = f32(g)
        for k, v in debug.items():
            f[f"debug/{k}"] = f32(v)
        for k, v in log.items():
            f[f"train/{k}"] = np.asarray(v, dtype=np.float64)
        for n, v in p_after.items():
            f[f"train/params_after/{n}"] = f32(v)
    os.replace(tmp, path)


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)          # fixed reduction order: a reproducible file
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(SEED)
    cfg = CONFIG
    _, _, L, _, _ = dims(cfg)
    B = cfg["batch"]

    images32 = rng.normal(0.0, 1.0, (B, cfg["img_h"], cfg["img_w"], cfg["channels"])).astype(np.float32)
    perm = torch.from_numpy(np.stack([rng.permutation(L) for _ in range(B)]).astype(np.int64))
    model_shapes, q_shapes = param_shapes(cfg)
    shapes = model_shapes | q_shapes
    p0 = {n: torch.from_numpy(init_value(rng, n, s).astype(np.float64)).requires_grad_(True)
          for n, s in shapes.items()}
    images = torch.from_numpy(images32.astype(np.float64))

    losses, debug = forward(p0, images, perm, cfg)
    grads = gradients(p0, list(model_shapes), list(q_shapes), losses)
    print("losses at the initial parameters:")
    for k, v in losses.items():
        print(f"  {k:6s} {v.item():.12f}")
    print("gradient check:")
    finite_difference_check(p0, images, perm, cfg, grads)
    if "--selftest" in sys.argv[1:]:
        print("selftest:")
        selftest(p0, images, perm)

    log, p_after = train(p0, images, perm, cfg, model_shapes, q_shapes)
    print("training (losses before each update):")
    for t in range(TRAIN_STEPS):
        print(f"  step {t} lr {log['lr'][t]:.6e}  L {log['L'][t]:.9f}  L_rec {log['L_rec'][t]:.9f}"
              f"  L_max {log['L_max'][t]:.9f}  L_min {log['L_min'][t]:+.9f}  L_q {log['L_q'][t]:.9f}")
    write_h5(OUT, cfg, images, perm, p0, losses, grads, debug, log, p_after)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
