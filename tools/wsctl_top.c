/* wsctl_top.c - the live view. */
#include "tools/wsctl_top.h"
#include "core/clock.h"
#include "tools/wsctl_inspect.h"
#include "tools/wsctl_out.h"
#include "tools/wsctl_seg.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define TOP_MAX_CONNS 1000

static volatile sig_atomic_t top_stop;

struct top_args {
    uint64_t iterations; /* 0: until q or a signal */
    uint64_t conns;
};

/* Everything one frame needs from one moment. */
struct top_sample {
    int64_t mono_ms;
    struct wsctl_stats tot;
    struct wsctl_worker w[SHM_SEG_WORKERS];
    size_t nw;
    struct wsctl_conn *conns; /* sorted by id */
    size_t nconns;
};

/* One connection of the ranking. */
struct top_rank {
    const struct wsctl_conn *c;
    double in_rate;
    double out_rate;
};

/* The terminal state to restore. */
struct top_term {
    bool raw;
    struct termios saved;
};

static void top_on_signal(int sig)
{
    (void)sig;
    top_stop = 1;
}

static int top_parse(struct wsctl_opts *o, int argc, char **argv, struct top_args *a)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'J'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"iterations", required_argument, NULL, 'n'},
                                         {"conns", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:hn:", opts, NULL)) != -1) {
        switch (c) {
        case 'J': o->json = true; break;
        case 'h': wsctl_cli_usage(true); return WSCTL_EXIT_OK;
        case 'n':
            if (wsctl_cli_parse_u64(optarg, UINT32_MAX, &a->iterations) < 0 || a->iterations == 0)
                return wsctl_cli_usage_error("top: --iterations needs a positive number");
            break;
        case 'c':
            if (wsctl_cli_parse_u64(optarg, TOP_MAX_CONNS, &a->conns) < 0)
                return wsctl_cli_usage_error("top: --conns needs a number 0-%d", TOP_MAX_CONNS);
            break;
        default: return wsctl_cli_bad_option(argv[0], c, argv);
        }
    }
    if (optind != argc)
        return wsctl_cli_usage_error("top takes no arguments besides its options");
    return -1;
}

static int top_conn_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct wsctl_conn *)a)->info.id;
    uint64_t y = ((const struct wsctl_conn *)b)->info.id;
    return x < y ? -1 : x > y;
}

static int top_take(const struct wsctl_seg *s, struct top_sample *out)
{
    free(out->conns);
    out->conns = NULL;
    out->mono_ms = clock_mono_ms();
    wsctl_seg_totals(s, &out->tot);
    out->nw = wsctl_seg_workers(s, out->w);
    int rc = wsctl_seg_conns(s, &out->conns, &out->nconns);
    if (rc == 0 && out->nconns > 1)
        qsort(out->conns, out->nconns, sizeof(*out->conns), top_conn_cmp);
    return rc;
}

static double top_rate(uint64_t now, uint64_t before, double secs)
{
    return now >= before && secs > 0 ? (double)(now - before) / secs : 0;
}

/* The stats of slot in prev, or NULL when it had none. */
static const struct wsctl_worker *top_prev_worker(const struct top_sample *prev, uint32_t slot)
{
    for (size_t i = 0; i < prev->nw; i++) {
        if (prev->w[i].slot == slot)
            return &prev->w[i];
    }
    return NULL;
}

static int top_rank_cmp(const void *a, const void *b)
{
    const struct top_rank *x = a, *y = b;
    double rx = x->in_rate + x->out_rate, ry = y->in_rate + y->out_rate;
    if (rx != ry)
        return rx < ry ? 1 : -1;
    uint64_t tx = x->c->info.bytes_in + x->c->info.bytes_out;
    uint64_t ty = y->c->info.bytes_in + y->c->info.bytes_out;
    return tx < ty ? 1 : tx > ty ? -1 : 0;
}

/* Ranks cur's connections by bytes per second since prev (then by total bytes). Returns
 * a new array of cur->nconns entries (free() it), or NULL when out of memory or empty. */
static struct top_rank *top_ranking(const struct top_sample *prev, const struct top_sample *cur)
{
    double secs = (double)(cur->mono_ms - prev->mono_ms) / 1000.0;
    struct top_rank *r = cur->nconns ? calloc(cur->nconns, sizeof(*r)) : NULL;
    for (size_t i = 0; r && i < cur->nconns; i++) {
        const struct wsctl_conn *c = &cur->conns[i];
        const struct wsctl_conn *p =
            prev->conns ? bsearch(c, prev->conns, prev->nconns, sizeof(*c), top_conn_cmp) : NULL;
        r[i].c = c;
        r[i].in_rate = top_rate(c->info.bytes_in, p ? p->info.bytes_in : 0, secs);
        r[i].out_rate = top_rate(c->info.bytes_out, p ? p->info.bytes_out : 0, secs);
    }
    if (r && cur->nconns > 1)
        qsort(r, cur->nconns, sizeof(*r), top_rank_cmp);
    return r;
}

/* ---- JSON frames ---- */

static void top_rates_json(struct wsctl_json *j, const struct wsctl_stats *a,
                           const struct wsctl_stats *b, double secs)
{
    wsctl_json_object(j, "rates");
    wsctl_json_double(j, "msgs_in", top_rate(a->msgs_in, b->msgs_in, secs), 2);
    wsctl_json_double(j, "msgs_out", top_rate(a->msgs_out, b->msgs_out, secs), 2);
    wsctl_json_double(j, "bytes_in", top_rate(a->bytes_in, b->bytes_in, secs), 1);
    wsctl_json_double(j, "bytes_out", top_rate(a->bytes_out, b->bytes_out, secs), 1);
    wsctl_json_double(j, "deliveries", top_rate(a->deliveries, b->deliveries, secs), 2);
    wsctl_json_double(j, "delivery_failures",
                      top_rate(a->delivery_failures, b->delivery_failures, secs), 2);
    wsctl_json_double(j, "handshakes", top_rate(a->handshakes_ok, b->handshakes_ok, secs), 2);
    wsctl_json_object_end(j);
}

static void top_workers_json(struct wsctl_json *j, const struct top_sample *prev,
                             const struct top_sample *cur, double secs)
{
    wsctl_json_array(j, "workers");
    for (size_t i = 0; i < cur->nw; i++) {
        const struct wsctl_worker *w = &cur->w[i];
        const struct wsctl_worker *p = top_prev_worker(prev, w->slot);
        wsctl_json_object(j, NULL);
        wsctl_inspect_worker_json(j, w);
        if (p != NULL)
            top_rates_json(j, &w->stats, &p->stats, secs);
        wsctl_json_object_end(j);
    }
    wsctl_json_array_end(j);
}

static int top_frame_json(const struct wsctl_seg *s, const struct top_sample *prev,
                          const struct top_sample *cur, const struct top_rank *r, size_t nr)
{
    double secs = (double)(cur->mono_ms - prev->mono_ms) / 1000.0;
    struct wsctl_json j;
    wsctl_json_init(&j);
    wsctl_json_object(&j, NULL);
    wsctl_json_i64(&j, "ts_ms", clock_wall_ms());
    wsctl_json_i64(&j, "interval_ms", cur->mono_ms - prev->mono_ms);
    wsctl_json_str(&j, "state", wsctl_seg_run_state_name(shm_seg_state(&s->seg)));
    wsctl_json_i64(&j, "master_pid", s->seg.hdr->master_pid);
    wsctl_json_u64(&j, "connections", cur->nconns);
    top_rates_json(&j, &cur->tot, &prev->tot, secs);
    wsctl_json_object(&j, "totals");
    wsctl_inspect_stats_json(&j, &cur->tot);
    wsctl_json_object_end(&j);
    top_workers_json(&j, prev, cur, secs);
    wsctl_json_array(&j, "top");
    for (size_t i = 0; i < nr; i++) {
        wsctl_json_object(&j, NULL);
        wsctl_inspect_conn_json(&j, r[i].c);
        wsctl_json_double(&j, "bytes_in_rate", r[i].in_rate, 1);
        wsctl_json_double(&j, "bytes_out_rate", r[i].out_rate, 1);
        wsctl_json_object_end(&j);
    }
    wsctl_json_array_end(&j);
    wsctl_json_object_end(&j);
    int rc = wsctl_json_print(&j, stdout);
    wsctl_json_fini(&j);
    return rc;
}

/* ---- text frames ---- */

static void top_text_head(const struct wsctl_opts *o, const struct wsctl_seg *s,
                          const struct top_sample *prev, const struct top_sample *cur)
{
    double secs = (double)(cur->mono_ms - prev->mono_ms) / 1000.0;
    const struct wsctl_stats *a = &cur->tot, *b = &prev->tot;
    char up[32], bi[32], bo[32];
    printf("wsd on %s  state %s  master %d  uptime %s  conns %zu/%u\n", o->socket,
           wsctl_seg_run_state_name(shm_seg_state(&s->seg)), s->seg.hdr->master_pid,
           wsctl_fmt_duration(up, sizeof(up), (clock_wall_ms() - s->seg.hdr->start_wall_ms) / 1000),
           cur->nconns, conn_table_capacity(&s->seg));
    printf("per second: msgs in %.1f  out %.1f  bytes in %s  out %s  deliveries %.1f  "
           "failures %.1f\n\n",
           top_rate(a->msgs_in, b->msgs_in, secs), top_rate(a->msgs_out, b->msgs_out, secs),
           wsctl_fmt_bytes(bi, sizeof(bi), top_rate(a->bytes_in, b->bytes_in, secs)),
           wsctl_fmt_bytes(bo, sizeof(bo), top_rate(a->bytes_out, b->bytes_out, secs)),
           top_rate(a->deliveries, b->deliveries, secs),
           top_rate(a->delivery_failures, b->delivery_failures, secs));
}

static void top_text_workers(const struct top_sample *prev, const struct top_sample *cur)
{
    static const char *const head[] = {"SLOT",   "PID",     "STATE",    "CONNS",
                                       "RING",   "MSGS_IN/S", "MSGS_OUT/S", "BYTES_IN/S",
                                       "BYTES_OUT/S"};
    double secs = (double)(cur->mono_ms - prev->mono_ms) / 1000.0;
    struct wsctl_table t;
    char buf[64];
    wsctl_table_init(&t, 9, head, 0x1ebu);
    for (size_t i = 0; i < cur->nw; i++) {
        const struct wsctl_worker *w = &cur->w[i];
        const struct wsctl_worker *p = top_prev_worker(prev, w->slot);
        const struct wsctl_stats *ps = p ? &p->stats : &w->stats;
        wsctl_table_cell(&t, "%u", w->slot);
        wsctl_table_cell(&t, "%d", w->pid);
        wsctl_table_cell(&t, "%s", wsctl_seg_worker_state_name(w->state));
        wsctl_table_cell(&t, "%u", w->connections);
        wsctl_table_cell(&t, "%s", wsctl_inspect_ring_fill(buf, sizeof(buf), w));
        wsctl_table_cell(&t, "%.1f", top_rate(w->stats.msgs_in, ps->msgs_in, secs));
        wsctl_table_cell(&t, "%.1f", top_rate(w->stats.msgs_out, ps->msgs_out, secs));
        double in = top_rate(w->stats.bytes_in, ps->bytes_in, secs);
        double out = top_rate(w->stats.bytes_out, ps->bytes_out, secs);
        wsctl_table_cell(&t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), in));
        wsctl_table_cell(&t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), out));
    }
    wsctl_table_print(&t, stdout);
    wsctl_table_fini(&t);
}

static void top_text_conns(const struct top_rank *r, size_t nr)
{
    static const char *const head[] = {"ID", "WORKER", "USER", "REMOTE", "IN/S", "OUT/S",
                                       "IN", "OUT"};
    struct wsctl_table t;
    char buf[64];
    printf("\nbusiest connections (bytes per second):\n");
    wsctl_table_init(&t, 8, head, 0xf3u);
    for (size_t i = 0; i < nr; i++) {
        const struct conn_table_info *c = &r[i].c->info;
        wsctl_table_cell(&t, "%llu", (unsigned long long)c->id);
        wsctl_table_cell(&t, "%u", c->owner);
        wsctl_table_cell(&t, "%s", r[i].c->user[0] ? r[i].c->user : "-");
        wsctl_table_cell(&t, "%s", conn_table_addr_format(&c->remote, buf, sizeof(buf)));
        wsctl_table_cell(&t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), r[i].in_rate));
        wsctl_table_cell(&t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), r[i].out_rate));
        wsctl_table_cell(&t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), (double)c->bytes_in));
        wsctl_table_cell(&t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), (double)c->bytes_out));
    }
    wsctl_table_print(&t, stdout);
    wsctl_table_fini(&t);
}

static int top_frame(const struct wsctl_opts *o, const struct wsctl_seg *s,
                     const struct top_sample *prev, const struct top_sample *cur, size_t limit)
{
    struct top_rank *r = top_ranking(prev, cur);
    size_t nr = r ? WSD_MIN(limit, cur->nconns) : 0;
    int rc = 0;
    if (o->json) {
        rc = top_frame_json(s, prev, cur, r, nr);
    } else {
        if (isatty(STDOUT_FILENO))
            fputs("\033[H\033[2J", stdout);
        top_text_head(o, s, prev, cur);
        top_text_workers(prev, cur);
        top_text_conns(r, nr);
        if (isatty(STDOUT_FILENO))
            fputs("\n(q quits)\n", stdout);
        else
            fputs("\n", stdout);
    }
    fflush(stdout);
    free(r);
    return rc;
}

/* ---- the loop ---- */

static void top_term_setup(struct top_term *t)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = top_on_signal; /* no SA_RESTART: poll() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    t->raw = false;
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &t->saved) == -1)
        return;
    struct termios raw = t->saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    t->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
}

static void top_term_restore(const struct top_term *t)
{
    if (t->raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
}

/* Waits until the next frame is due. Returns false when the user asked to quit. */
static bool top_wait(const struct top_term *t, int64_t until_ms)
{
    for (;;) {
        int64_t left = until_ms - clock_mono_ms();
        if (top_stop)
            return false;
        if (left <= 0)
            return true;
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int n = poll(&pfd, t->raw ? 1 : 0, (int)left);
        if (n > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
            return false; /* the terminal went away */
        if (n > 0 && (pfd.revents & POLLIN)) {
            char ch;
            if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
                return false;
        }
    }
}

static int top_loop(struct wsctl_opts *o, const struct wsctl_seg *s, const struct top_args *a,
                    const struct top_term *term)
{
    static struct top_sample samples[2];
    struct top_sample *prev = &samples[0], *cur = &samples[1];
    int rc = WSCTL_EXIT_OK;
    if (top_take(s, prev) < 0)
        rc = wsctl_cli_error(o, "out of memory");
    for (uint64_t i = 0; rc == 0 && (a->iterations == 0 || i < a->iterations); i++) {
        if (!top_wait(term, prev->mono_ms + WSCTL_TOP_INTERVAL_MS))
            break;
        if (!wsctl_seg_master_alive(s)) {
            rc = wsctl_cli_error(o, "wsd stopped (master pid %d is gone)", s->seg.hdr->master_pid);
            break;
        }
        if (top_take(s, cur) < 0 || top_frame(o, s, prev, cur, a->conns) < 0)
            rc = wsctl_cli_error(o, "out of memory");
        struct top_sample *t = prev;
        prev = cur;
        cur = t;
    }
    for (int k = 0; k < 2; k++) {
        free(samples[k].conns);
        samples[k].conns = NULL;
    }
    return rc;
}

int wsctl_top(struct wsctl_opts *o, int argc, char **argv)
{
    struct top_args a = {.iterations = 0, .conns = WSCTL_TOP_CONNS};
    int rc = top_parse(o, argc, argv, &a);
    struct wsctl_seg s;
    if (rc >= 0 || (rc = wsctl_seg_open(&s, o)) != 0)
        return rc;
    struct top_term term;
    top_term_setup(&term);
    rc = top_loop(o, &s, &a, &term);
    top_term_restore(&term);
    wsctl_seg_close(&s);
    return rc;
}
