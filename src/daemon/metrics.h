/* Prometheus text exposition of the daemon's figures (metrics.c), and the
 * opt-in HTTP listener that serves it (metrics_http.c). */
#ifndef BDR_DAEMON_METRICS_H
#define BDR_DAEMON_METRICS_H

#include <stddef.h>

struct bdrd;

/* The whole exposition into *out (malloc'd, *len bytes, NUL-terminated).
 * Loop thread. 0, -ENOMEM or a database error. */
int bdrd_metrics_render(struct bdrd *d, char **out, size_t *len);

/* The listener of [site] metrics_listen, if set: 0 or a libuv error
 * (logged). stop closes it and every client; safe if never started. */
int bdrd_metrics_start(struct bdrd *d);
void bdrd_metrics_stop(struct bdrd *d);

#endif
