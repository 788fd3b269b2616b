#include "run/progress.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

static void format_duration(char *buf, size_t len, double s)
{
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)s;
    if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

void progress_format_rate(char *buf, size_t len, double images_per_s)
{
    if (!(images_per_s > 0) || !isfinite(images_per_s)) snprintf(buf, len, "- img/s");
    else if (images_per_s >= 100) snprintf(buf, len, "%.0f img/s", images_per_s);
    else if (images_per_s >= 1) snprintf(buf, len, "%.1f img/s", images_per_s);
    else snprintf(buf, len, "%.2g img/s (%.3g s/img)", images_per_s, 1.0 / images_per_s);
}

void progress_print(const step_metrics_t *s, long total_steps, double elapsed, long done)
{
    char rate[48];
    progress_format_rate(rate, sizeof rate, s->images_per_s);
    char eta[32];
    format_duration(eta, sizeof eta,
                    elapsed / (double)(done > 0 ? done : 1) * (double)(total_steps - s->step));
    const int tty = isatty(STDERR_FILENO);
    if (tty) {
        const int width = 20;
        int filled = (int)(width * (double)s->step / (double)total_steps);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] ", bar);
    }
    fprintf(stderr, "step %ld/%ld ep %.2f L %.4f rec %.4f max %.4f min %.4f q %.3f lr %.2e "
            "%s ETA %s%s", s->step, total_steps, s->epoch, s->total, s->rec, s->max, s->min,
            s->q, s->lr, rate, eta, tty ? "   " : "\n");
}

void progress_end(void)
{
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\n");
}

void progress_import(const import_progress_t *p, double *next)
{
    const int tty = isatty(STDOUT_FILENO);
    const double every = tty ? 2.0 : 30.0;
    if (*next <= 0) *next = every; /* short imports say only when they are done */
    if (!p->finished && p->seconds < *next) return;
    *next = p->seconds + every;
    const double share = p->total > 0 ? (double)p->done / (double)p->total : 1.0;
    const double images = share * (double)p->split_images; /* all ranks, estimated */
    char rate[48], eta[32];
    progress_format_rate(rate, sizeof rate, p->seconds > 0 ? images / p->seconds : 0.0);
    const char *approx = p->ranks > 1 ? "~" : "";
    if (p->finished) {
        printf("%simport %s: %ld images in %.1f s, %s%s\n", tty ? "\r" : "", p->split,
               p->split_images, p->seconds, approx, rate);
    } else {
        format_duration(eta, sizeof eta, share > 0 ? p->seconds * (1.0 - share) / share : -1);
        printf("%simport %s: %s%.0f/%ld images, %s%s, ETA %s%s", tty ? "\r" : "", p->split,
               approx, images, p->split_images, approx, rate, eta, tty ? "   " : "\n");
    }
    fflush(stdout);
}
