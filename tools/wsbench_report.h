/*
 * wsbench_report.h - the outcome of a wsbench run: the workers' counters and latency
 * histograms merged, the server's CPU time and memory sampled around the window, and the
 * two ways of printing it (a human table, or one JSON object on stdout).
 */
#ifndef WSD_TOOLS_WSBENCH_REPORT_H
#define WSD_TOOLS_WSBENCH_REPORT_H

#include "tools/wsbench_worker.h"

#include <stdbool.h>
#include <stdint.h>

struct wsbench_report {
    uint32_t nworkers;
    double seconds;              /* the measured window */
    struct wsbench_result sum;   /* every worker's result added up */
    double client_cpu_s;
    bool have_cpu;               /* server CPU was sampled (--server-pid) */
    double server_cpu_s;         /* utime + stime over the window, server and children */
    int server_procs;
    bool have_mem;               /* idle: server memory was sampled */
    uint64_t pss0, pss1, rss0, rss1;
    bool have_sock;              /* idle: kernel TCP memory was sampled */
    uint64_t sock0, sock1;
    bool aborted;                /* nothing could be set up; no run */
};

/* "echo", "fanout", "direct", "connect", "idle"; "?" for anything else. */
const char *wsbench_report_mode_name(enum wsbench_mode mode);

/* Adds the results of ctl's r->nworkers workers into r->sum and sets r->client_cpu_s. */
void wsbench_report_merge(struct wsbench_report *r, const struct wsbench_ctl *ctl);

/*
 * Prints one JSON object on stdout: mode, conns, messages, seconds, rate,
 * server_cpu_seconds, per_server_cpu_second (null without --server-pid), latency_us
 * {p50, p90, p99, p999, max}, errors, and the rest of the counters; idle adds the memory
 * figures (pss_per_conn, rss_per_conn, sock_mem_per_conn, ...).
 */
void wsbench_report_json(const struct wsbench_opts *o, const struct wsbench_report *r);

/* Prints the human table on stdout. */
void wsbench_report_table(const struct wsbench_opts *o, const struct wsbench_report *r);

#endif
