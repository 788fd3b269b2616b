/* Fixed 2-D sin-cos position embeddings, MAE's get_2d_sincos_pos_embed
 * generalised to grid_h x grid_w. For the patch at (row i, col j) the row
 * i*grid_w + j holds [1d(dim/2, j), 1d(dim/2, i)], 1d(d, pos) =
 * [sin(pos*w_m), cos(pos*w_m)], w_m = 10000^(-m/(d/2)). dim % 4 == 0. */
#ifndef MIMAE_VIT_POSEMBED_H
#define MIMAE_VIT_POSEMBED_H

/* Writes (with_cls + grid_h*grid_w) rows of width dim; the cls row is zero. */
void posembed_2d_sincos(float *out, int dim, int grid_h, int grid_w, int with_cls);

#endif
