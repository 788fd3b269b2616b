/* Class-per-folder import (see folder_import.h): directory listing, JPEG
 * (libjpeg, setjmp error manager) and PNG (libpng simplified API) decoding,
 * resize of the shorter side + centre crop, then dataset_writer_*. */
#include "io/folder_import.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "io/data_import.h"
#include "io/dataset.h"
#include "io/io_error.h"
#include "io/io_path.h"

#define MAX_PIXELS (1L << 26) /* decoded images larger than this are refused */
#define BLOCK 32              /* images per append */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ------------------------------------------------------------ listings */

typedef struct {
    char **v;
    int n, cap;
} strlist_t;

static void strlist_free(strlist_t *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int strlist_add(strlist_t *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return -1;
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entries of dir not starting with '.': sub-directories when
 * dirs is set (other entries ignored), else regular files (a directory
 * there is an error). */
static int list_dir(const char *dir, int dirs, strlist_t *out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return io_fail(err, errlen, "%s: cannot list the directory (%s): check the path", dir,
                       strerror(errno));
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *p = io_path_join(dir, e->d_name);
        struct stat st;
        if (!p) rc = io_fail(err, errlen, "%s: out of memory", dir);
        else if (stat(p, &st) != 0)
            rc = io_fail(err, errlen, "%s: cannot stat (%s): fix or remove it", p, strerror(errno));
        else if (dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) {
            if (strlist_add(out, e->d_name)) rc = io_fail(err, errlen, "%s: out of memory", dir);
        } else if (!dirs && S_ISDIR(st.st_mode)) {
            rc = io_fail(err, errlen, "%s: a directory inside a class folder: class folders "
                         "hold image files only; move it", p);
        } else if (!dirs) { /* a FIFO, device or socket: said, not skipped */
            io_file_err_t fe = {p, err, errlen, 0};
            rc = io_check_input(&fe, "image", 1, NULL);
        }
        free(p);
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = io_fail(err, errlen, "%s: cannot list the directory (%s)", dir, strerror(errno));
    closedir(d);
    if (rc == 0) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return rc;
}

/* ------------------------------------------------------------ decoding */

struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int truncated;
};

static void jpeg_on_error(j_common_ptr ci)
{
    longjmp(((struct jpeg_err *)ci->err)->jump, 1);
}

/* Warnings are not printed; a premature end of data makes the file an error. */
static void jpeg_on_message(j_common_ptr ci, int level)
{
    if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF)
        ((struct jpeg_err *)ci->err)->truncated = 1;
}

static uint8_t *load_jpeg(const char *path, FILE *fp, int *w, int *h, char *err,
                          size_t errlen)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_err je;
    uint8_t *volatile rgb = NULL;
    JSAMPLE *volatile row = NULL;
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.emit_message = jpeg_on_message;
    je.truncated = 0;
    if (setjmp(je.jump)) {
        char msg[JMSG_LENGTH_MAX];
        je.pub.format_message((j_common_ptr)&ci, msg);
        io_fail(err, errlen, "%s: cannot decode the JPEG (%s): replace or remove the file",
                path, msg);
        jpeg_destroy_decompress(&ci);
        free(rgb);
        free(row);
        return NULL;
    }
    jpeg_create_decompress(&ci);
    jpeg_stdio_src(&ci, fp);
    jpeg_read_header(&ci, TRUE);
    if (ci.jpeg_color_space == JCS_GRAYSCALE) ci.out_color_space = JCS_GRAYSCALE;
    else if (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK)
        ci.out_color_space = JCS_CMYK;
    else ci.out_color_space = JCS_RGB;
    jpeg_start_decompress(&ci);
    const int W = (int)ci.output_width, H = (int)ci.output_height;
    const int nc = ci.output_components;
    if ((long)W * H > MAX_PIXELS || (nc != 1 && nc != 3 && nc != 4)) {
        io_fail(err, errlen, "%s: a %dx%d JPEG with %d components is not supported: convert it",
                path, W, H, nc);
        jpeg_destroy_decompress(&ci);
        return NULL;
    }
    rgb = malloc((size_t)W * H * 3);
    row = malloc((size_t)W * nc);
    if (!rgb || !row) {
        io_fail(err, errlen, "%s: out of memory for a %dx%d image", path, W, H);
        jpeg_destroy_decompress(&ci);
        free(rgb);
        free(row);
        return NULL;
    }
    const int inverted = ci.saw_Adobe_marker; /* Adobe CMYK is stored inverted */
    while (ci.output_scanline < ci.output_height) {
        uint8_t *out = rgb + (size_t)ci.output_scanline * W * 3;
        JSAMPROW rows[1] = { row };
        jpeg_read_scanlines(&ci, rows, 1);
        for (int x = 0; x < W; x++) {
            if (nc == 1) {
                out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row[x];
            } else if (nc == 3) {
                memcpy(out + 3 * x, row + 3 * x, 3);
            } else {
                int k = row[4 * x + 3];
                if (!inverted) k = 255 - k;
                for (int ch = 0; ch < 3; ch++) {
                    int v = row[4 * x + ch];
                    if (!inverted) v = 255 - v;
                    out[3 * x + ch] = (uint8_t)((v * k + 127) / 255);
                }
            }
        }
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(row);
    if (je.truncated) {
        free(rgb);
        io_fail(err, errlen, "%s: truncated JPEG (premature end of data): replace or remove "
                "the file", path);
        return NULL;
    }
    *w = W;
    *h = H;
    return rgb;
}

static uint8_t *load_png(const char *path, FILE *fp, int *w, int *h, char *err, size_t errlen)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(&im, fp)) {
        io_fail(err, errlen, "%s: cannot decode the PNG (%s): replace or remove the file", path,
                im.message);
        png_image_free(&im);
        return NULL;
    }
    const int W = (int)im.width, H = (int)im.height;
    if ((long)im.width * im.height > MAX_PIXELS) {
        io_fail(err, errlen, "%s: a %ux%u PNG is too large: shrink it", path, im.width,
                im.height);
        png_image_free(&im);
        return NULL;
    }
    im.format = PNG_FORMAT_RGBA;
    uint8_t *rgba = malloc(PNG_IMAGE_SIZE(im));
    if (!rgba) {
        io_fail(err, errlen, "%s: out of memory for a %dx%d image", path, W, H);
        png_image_free(&im);
        return NULL;
    }
    if (!png_image_finish_read(&im, NULL, rgba, 0, NULL)) {
        io_fail(err, errlen, "%s: cannot decode the PNG (%s): replace or remove the file", path,
                im.message);
        png_image_free(&im);
        free(rgba);
        return NULL;
    }
    png_image_free(&im);
    /* Drop alpha in place (as PIL's convert("RGB") does). */
    const size_t n = (size_t)W * H;
    for (size_t i = 0; i < n; i++) memmove(rgba + 3 * i, rgba + 4 * i, 3);
    uint8_t *rgb = realloc(rgba, n * 3);
    *w = W;
    *h = H;
    return rgb ? rgb : rgba;
}

uint8_t *folder_load_rgb(const char *path, int *w, int *h, char *err, size_t errlen)
{
    io_file_err_t e = {path, err, errlen, 0};
    FILE *fp = io_fopen_input(&e, "image", 1);
    if (!fp) return NULL;
    unsigned char sig[8] = { 0 };
    size_t got = fread(sig, 1, sizeof sig, fp);
    static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    uint8_t *img = NULL;
    if (got >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff) {
        rewind(fp);
        img = load_jpeg(path, fp, w, h, err, errlen);
    } else if (got == 8 && memcmp(sig, png_sig, 8) == 0) {
        rewind(fp);
        img = load_png(path, fp, w, h, err, errlen);
    } else {
        io_fail(err, errlen, "%s: not a JPEG or PNG file (unknown content): convert or remove "
                "it", path);
    }
    fclose(fp);
    return img;
}

/* ------------------------------------------------------------ resizing */

/* Filter taps mapping out_len outputs (positions off.. of an axis resized
 * from src_len to full_len) to source positions: first[o], count[o] and
 * weights[o * max_taps + t], summing to 1. */
typedef struct {
    int *first, *count, max_taps;
    float *weights;
} taps_t;

static void taps_free(taps_t *t)
{
    free(t->first);
    free(t->count);
    free(t->weights);
}

static int taps_make(taps_t *t, int src_len, int full_len, int off, int out_len)
{
    const double scale = (double)full_len / src_len;
    t->max_taps = scale >= 1 ? 2 : (int)ceil(1 / scale) + 2;
    t->first = malloc((size_t)out_len * sizeof *t->first);
    t->count = malloc((size_t)out_len * sizeof *t->count);
    t->weights = calloc((size_t)out_len * (size_t)t->max_taps, sizeof *t->weights);
    if (!t->first || !t->count || !t->weights) {
        taps_free(t);
        return -1;
    }
    for (int o = 0; o < out_len; o++) {
        const int X = o + off;
        float *wt = t->weights + (size_t)o * t->max_taps;
        if (scale >= 1) { /* bilinear with pixel centres aligned */
            double c = (X + 0.5) / scale - 0.5;
            if (c < 0) c = 0;
            int i0 = (int)floor(c);
            double f = c - i0;
            if (i0 >= src_len - 1) {
                i0 = src_len - 1;
                f = 0;
            }
            t->first[o] = i0;
            t->count[o] = f > 0 ? 2 : 1;
            wt[0] = (float)(1 - f);
            if (f > 0) wt[1] = (float)f;
        } else { /* area average over [X, X+1) / scale */
            const double lo = X / scale, hi = (X + 1) / scale;
            int i0 = (int)floor(lo), i1 = (int)ceil(hi);
            if (i1 > src_len) i1 = src_len;
            if (i1 - i0 > t->max_taps) i1 = i0 + t->max_taps;
            double sum = 0;
            for (int i = i0; i < i1; i++) {
                double a = (i + 1 < hi ? i + 1 : hi) - (i > lo ? i : lo);
                wt[i - i0] = (float)(a > 0 ? a : 0);
                sum += wt[i - i0];
            }
            for (int i = i0; i < i1; i++) wt[i - i0] = (float)(wt[i - i0] / sum);
            t->first[o] = i0;
            t->count[o] = i1 - i0;
        }
    }
    return 0;
}

int folder_resize_crop(const uint8_t *src, int sw, int sh, int size, uint8_t *dst)
{
    /* Resized extent: the shorter side becomes size, the longer one is
     * scaled the same and rounded (at least size). */
    if (!src || !dst || sw < 1 || sh < 1 || size < 1) return -1;
    const int shorter = sw < sh ? sw : sh;
    long fw = sw == shorter ? size : ((long)sw * size * 2 + shorter) / (2L * shorter);
    long fh = sh == shorter ? size : ((long)sh * size * 2 + shorter) / (2L * shorter);
    if (fw < size) fw = size;
    if (fh < size) fh = size;
    taps_t tx, ty;
    if (taps_make(&tx, sw, (int)fw, (int)((fw - size) / 2), size)) return -1;
    if (taps_make(&ty, sh, (int)fh, (int)((fh - size) / 2), size)) {
        taps_free(&tx);
        return -1;
    }
    const int y0 = ty.first[0];
    const int y1 = ty.first[size - 1] + ty.count[size - 1]; /* source rows y0..y1-1 */
    float *tmp = malloc((size_t)(y1 - y0) * size * 3 * sizeof *tmp);
    if (!tmp) {
        taps_free(&tx);
        taps_free(&ty);
        return -1;
    }
    for (int y = y0; y < y1; y++) { /* horizontal pass on the rows needed */
        const uint8_t *in = src + (size_t)y * sw * 3;
        float *out = tmp + (size_t)(y - y0) * size * 3;
        for (int o = 0; o < size; o++) {
            const float *wt = tx.weights + (size_t)o * tx.max_taps;
            float acc[3] = { 0, 0, 0 };
            for (int t = 0; t < tx.count[o]; t++) {
                const uint8_t *p = in + 3 * (size_t)(tx.first[o] + t);
                for (int ch = 0; ch < 3; ch++) acc[ch] += wt[t] * p[ch];
            }
            for (int ch = 0; ch < 3; ch++) out[3 * o + ch] = acc[ch];
        }
    }
    for (int o = 0; o < size; o++) { /* vertical pass */
        const float *wt = ty.weights + (size_t)o * ty.max_taps;
        uint8_t *out = dst + (size_t)o * size * 3;
        for (int x = 0; x < 3 * size; x++) {
            float acc = 0;
            for (int t = 0; t < ty.count[o]; t++)
                acc += wt[t] * tmp[(size_t)(ty.first[o] + t - y0) * size * 3 + x];
            acc = floorf(acc + 0.5f);
            out[x] = (uint8_t)(acc < 0 ? 0 : acc > 255 ? 255 : acc);
        }
    }
    free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return 0;
}

/* ------------------------------------------------------------ import */

typedef struct {
    strlist_t paths;
    int *labels;
    int cap;
} items_t;

static int items_add(items_t *it, const char *path, int label)
{
    if (it->paths.n == it->cap) {
        int cap = it->cap ? 2 * it->cap : 256;
        int *l = realloc(it->labels, (size_t)cap * sizeof *l);
        if (!l) return -1;
        it->labels = l;
        it->cap = cap;
    }
    it->labels[it->paths.n] = label;
    return strlist_add(&it->paths, path);
}

static void items_free(items_t *it)
{
    strlist_free(&it->paths);
    free(it->labels);
}

/* Every image of split_dir/<class>/ with its label (index in classes). */
static int collect(const char *split_dir, const strlist_t *classes, items_t *it, char *err,
                   size_t errlen)
{
    strlist_t sub = { 0 };
    int rc = list_dir(split_dir, 1, &sub, err, errlen);
    for (int i = 0; rc == 0 && i < sub.n; i++) {
        const char *key = sub.v[i];
        char *const *hit = bsearch(&key, classes->v, (size_t)classes->n, sizeof *classes->v,
                                   cmp_str);
        char *cdir = io_path_join(split_dir, sub.v[i]);
        strlist_t files = { 0 };
        if (!cdir) rc = io_fail(err, errlen, "%s: out of memory", split_dir);
        else if (!hit)
            rc = io_fail(err, errlen, "%s: \"%s\" is not a class of the train split: every "
                         "class folder must exist under train", cdir, sub.v[i]);
        else rc = list_dir(cdir, 0, &files, err, errlen);
        for (int f = 0; rc == 0 && f < files.n; f++) {
            char *p = io_path_join(cdir, files.v[f]);
            if (!p || items_add(it, p, (int)(hit - classes->v)))
                rc = io_fail(err, errlen, "%s: out of memory", cdir);
            free(p);
        }
        strlist_free(&files);
        free(cdir);
    }
    strlist_free(&sub);
    return rc;
}

/* Decodes, resizes and crops images [first, first + count) of the split. */
static int read_images(const import_split_t *s, long first, long count, uint8_t *pixels,
                       int32_t *labels, char *err, size_t errlen)
{
    const items_t *it = s->ctx;
    const int size = s->info.h;
    const size_t image_bytes = (size_t)size * size * 3;
    for (long i = 0; i < count; i++) {
        const char *path = it->paths.v[first + i];
        int sw, sh;
        uint8_t *rgb = folder_load_rgb(path, &sw, &sh, err, errlen);
        if (!rgb) return -1;
        const int r = folder_resize_crop(rgb, sw, sh, size, pixels + (size_t)i * image_bytes);
        free(rgb);
        if (r) return io_fail(err, errlen, "%s: out of memory resizing it", path);
        labels[i] = it->labels[first + i];
    }
    return 0;
}

/* The listing as one number (file names and labels, in order), so that MPI
 * ranks can tell they see the same tree. */
static uint64_t items_digest(const items_t *it)
{
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < it->paths.n; i++) {
        for (const unsigned char *p = (const unsigned char *)it->paths.v[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ (uint64_t)(uint32_t)it->labels[i]) * 1099511628211ull;
    }
    return h;
}

int folder_import(const char *src_dir, const char *out_dir, int size, char *err,
                  size_t errlen)
{
    return folder_import_opts(src_dir, out_dir, size, NULL, err, errlen);
}

/* The tree's classes and images (train, and a second split when there is
 * one) into the splits' descriptions. */
static int list_tree(const char *src_dir, int size, strlist_t *classes, items_t *train,
                     items_t *second, dataset_info_t *info, int *nsplits, char *err,
                     size_t errlen)
{
    char *train_dir = io_path_join(src_dir, "train"), *val_dir = io_path_join(src_dir, "val");
    char *test_dir = io_path_join(src_dir, "test");
    int rc = -1;
    if (!train_dir || !val_dir || !test_dir) {
        io_fail(err, errlen, "%s: out of memory", src_dir);
        goto out;
    }
    const char *tdir = src_dir, *sdir = NULL;
    if (is_dir(train_dir)) {
        tdir = train_dir;
        sdir = is_dir(val_dir) ? val_dir : is_dir(test_dir) ? test_dir : NULL;
    }
    if (list_dir(tdir, 1, classes, err, errlen)) goto out;
    if (classes->n < 1 || classes->n > DATASET_MAX_CLASSES) {
        io_fail(err, errlen, "%s: %d class folders found (supported: 1..%d): put each class's "
                "images in a folder of its own", tdir, classes->n, DATASET_MAX_CLASSES);
        goto out;
    }
    info->class_names = calloc((size_t)classes->n, sizeof *info->class_names);
    if (!info->class_names) {
        io_fail(err, errlen, "%s: out of memory", src_dir);
        goto out;
    }
    for (int k = 0; k < classes->n; k++) {
        if (strlen(classes->v[k]) >= DATASET_NAME_MAX) {
            io_fail(err, errlen, "%s/%s: class folder names are limited to %d characters: "
                    "rename it", tdir, classes->v[k], DATASET_NAME_MAX - 1);
            goto out;
        }
        snprintf(info->class_names[k], DATASET_NAME_MAX, "%s", classes->v[k]);
    }
    if (collect(tdir, classes, train, err, errlen) ||
        (sdir && collect(sdir, classes, second, err, errlen)))
        goto out;
    if (train->paths.n == 0 || (sdir && second->paths.n == 0)) {
        io_fail(err, errlen, "%s: no images found: put images in the class folders",
                train->paths.n == 0 ? tdir : sdir);
        goto out;
    }

    /* name: the last component of src_dir */
    size_t len = strlen(src_dir);
    while (len > 1 && src_dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && src_dir[start - 1] != '/') start--;
    size_t nlen = len - start < DATASET_NAME_MAX - 1 ? len - start : DATASET_NAME_MAX - 1;
    memcpy(info->name, src_dir + start, nlen);
    info->name[nlen] = '\0';
    if (!info->name[0] || !strcmp(info->name, ".") || !strcmp(info->name, ".."))
        snprintf(info->name, sizeof info->name, "folder");
    snprintf(info->source, sizeof info->source, "%s", src_dir);
    info->h = info->w = size;
    info->c = 3;
    info->num_classes = classes->n;
    *nsplits = sdir ? 2 : 1;
    rc = 0;
out:
    free(train_dir);
    free(val_dir);
    free(test_dir);
    return rc;
}

int folder_import_opts(const char *src_dir, const char *out_dir, int size,
                       const import_opts_t *opts, char *err, size_t errlen)
{
    if (!src_dir || !*src_dir)
        return io_fail(err, errlen, "folder import: no source directory given");
    if (!out_dir || !*out_dir)
        return io_fail(err, errlen, "folder import: no output directory given");
    if (size < 1 || size > FOLDER_MAX_SIZE)
        return io_fail(err, errlen, "%s: image size %d is not supported: give 1..%d", src_dir,
                       size, FOLDER_MAX_SIZE);
    if (!is_dir(src_dir))
        return io_fail(err, errlen, "%s: not a directory: give the folder holding train/ (and "
                       "val/ or test/) or the class folders", src_dir);
    strlist_t classes = { 0 };
    items_t train = { 0 }, second = { 0 };
    dataset_info_t info;
    memset(&info, 0, sizeof info);
    int nsplits = 0;
    int rc = list_tree(src_dir, size, &classes, &train, &second, &info, &nsplits, err, errlen);
    rc = import_agree(opts, rc, err, errlen);
    if (rc == 0) {
        import_split_t splits[2];
        const items_t *items[2] = {&train, &second};
        for (int s = 0; s < nsplits; s++) {
            splits[s] = import_split_of(&info, s, items[s]->paths.n, BLOCK, read_images,
                                        (void *)items[s]);
            splits[s].digest = items_digest(items[s]);
        }
        rc = data_import(out_dir, splits, nsplits, opts, err, errlen);
    }
    dataset_info_free(&info);
    items_free(&train);
    items_free(&second);
    strlist_free(&classes);
    return rc;
}
