#include "core/vit/posembed.h"

#include <math.h>
#include <stddef.h>

static void posembed_1d(float *out, int d, double pos)
{
    const int half = d / 2;
    for (int m = 0; m < half; m++) {
        double omega = 1.0 / pow(10000.0, (double)m / half);
        out[m] = (float)sin(pos * omega);
        out[half + m] = (float)cos(pos * omega);
    }
}

void posembed_2d_sincos(float *out, int dim, int grid_h, int grid_w, int with_cls)
{
    if (with_cls) {
        for (int c = 0; c < dim; c++) out[c] = 0.0f;
        out += dim;
    }
    for (int i = 0; i < grid_h; i++) {
        for (int j = 0; j < grid_w; j++) {
            float *row = out + ((size_t)i * grid_w + j) * dim;
            posembed_1d(row, dim / 2, j);
            posembed_1d(row + dim / 2, dim / 2, i);
        }
    }
}
