/* Reconstruction loss (docs/METHOD.md step 4): mean squared error over the patches
 * each mask hides, against per-patch normalised pixels when norm_pix is set. */
#ifndef MIMAE_OBJECTIVE_RECON_LOSS_H
#define MIMAE_OBJECTIVE_RECON_LOSS_H

/* target (B, L, P) from patches (B, L, P): (t - mean)/sqrt(var + 1e-6), var
 * unbiased over the P values; a plain copy without norm_pix. */
void recon_targets(float *target, const float *patches, int B, int L, int P, int norm_pix);

/* pred (S*(L+1), P) is the decoder output with its cls row first. Returns
 * sum over this process's sequences of the per-sequence loss / norm_sequences
 * (norm_sequences = global batch * N, so the sum over processes is L_rec).
 * dpred is overwritten with grad_scale * dloss/dpred (zero on cls and visible rows). */
double recon_loss(float *dpred, const float *pred, const float *target, const int *token_of,
                  int B, int N, int L, int V, int P, double norm_sequences, float grad_scale);

#endif
