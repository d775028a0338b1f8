/* wsbench_report.c - merging the workers' results and printing them (table or JSON). */
#include "tools/wsbench_report.h"

#include "core/wsd.h"

#include <stdio.h>
#include <string.h>

#define NS 1000000000LL

const char *wsbench_report_mode_name(enum wsbench_mode mode)
{
    static const char *const names[] = {"echo", "fanout", "direct", "connect", "idle"};
    return (unsigned)mode < WSD_ARRAY_LEN(names) ? names[mode] : "?";
}

void wsbench_report_merge(struct wsbench_report *r, const struct wsbench_ctl *ctl)
{
    struct wsbench_result *s = &r->sum;
    wsbench_hist_init(&s->hist);
    for (uint32_t i = 0; i < r->nworkers; i++) {
        const struct wsbench_result *w = &ctl->res[i];
        s->messages += w->messages;
        s->sent += w->sent;
        s->replies += w->replies;
        s->errors += w->errors;
        s->conns_ok += w->conns_ok;
        s->conns_failed += w->conns_failed;
        s->late += w->late;
        s->cpu_ns += w->cpu_ns;
        if (s->error[0] == '\0' && w->error[0] != '\0')
            memcpy(s->error, w->error, sizeof(s->error));
        wsbench_hist_merge(&s->hist, &w->hist);
    }
    r->client_cpu_s = (double)s->cpu_ns / NS;
}

static double us(const struct wsbench_hist *h, double q)
{
    return (double)(q >= 1.0 ? h->max : wsbench_hist_quantile(h, q)) / 1000.0;
}

static double per_conn(uint64_t after, uint64_t before, uint64_t n)
{
    return n ? ((double)after - (double)before) / (double)n : 0;
}

/* Writes s as a JSON string (quotes and escapes). */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_json_mem(const struct wsbench_report *r)
{
    uint64_t n = r->sum.conns_ok;
    if (r->have_mem)
        printf(",\"pss_before\":%llu,\"pss_after\":%llu,\"pss_per_conn\":%.1f,"
               "\"rss_before\":%llu,\"rss_after\":%llu,\"rss_per_conn\":%.1f",
               (unsigned long long)r->pss0, (unsigned long long)r->pss1,
               per_conn(r->pss1, r->pss0, n), (unsigned long long)r->rss0,
               (unsigned long long)r->rss1, per_conn(r->rss1, r->rss0, n));
    else
        printf(",\"pss_per_conn\":null,\"rss_per_conn\":null");
    if (r->have_sock)
        printf(",\"sock_mem_before\":%llu,\"sock_mem_after\":%llu,\"sock_mem_per_conn\":%.1f",
               (unsigned long long)r->sock0, (unsigned long long)r->sock1,
               per_conn(r->sock1, r->sock0, n));
}

void wsbench_report_json(const struct wsbench_opts *o, const struct wsbench_report *r)
{
    const struct wsbench_result *s = &r->sum;
    double rate = r->seconds > 0 ? (double)s->messages / r->seconds : 0;
    char path[sizeof(o->url.target)];
    snprintf(path, sizeof(path), "%.*s", (int)strcspn(o->url.target, "?"), o->url.target);
    printf("{\"mode\":\"%s\",\"raw\":%s,\"path\":", wsbench_report_mode_name(o->mode),
           o->raw ? "true" : "false");
    json_str(path);
    printf(",\"conns\":%u,\"publishers\":%u,\"inflight\":%u,\"size\":%u,\"threads\":%u,"
           "\"procs\":%u,\"messages\":%llu,\"sent\":%llu,\"replies\":%llu,\"seconds\":%.3f,"
           "\"rate\":%.1f,",
           o->conns, o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT ? o->publishers : 0,
           o->inflight, o->size, o->threads, o->procs, (unsigned long long)s->messages,
           (unsigned long long)s->sent, (unsigned long long)s->replies, r->seconds, rate);
    if (r->have_cpu && r->server_cpu_s > 0)
        printf("\"server_cpu_seconds\":%.3f,\"per_server_cpu_second\":%.1f,", r->server_cpu_s,
               (double)s->messages / r->server_cpu_s);
    else
        printf("\"server_cpu_seconds\":%s,\"per_server_cpu_second\":null,",
               r->have_cpu ? "0" : "null");
    printf("\"client_cpu_seconds\":%.3f,\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,"
           "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},\"errors\":%llu,\"conns_ok\":%llu,"
           "\"conns_failed\":%llu,\"late\":%llu",
           r->client_cpu_s, us(&s->hist, 0.5), us(&s->hist, 0.9), us(&s->hist, 0.99),
           us(&s->hist, 0.999), us(&s->hist, 1.0), (unsigned long long)s->errors,
           (unsigned long long)s->conns_ok, (unsigned long long)s->conns_failed,
           (unsigned long long)s->late);
    if (o->mode == WSBENCH_IDLE)
        print_json_mem(r);
    printf(",\"first_error\":");
    if (s->error[0])
        json_str(s->error);
    else
        printf("null");
    printf("}\n");
}

static const char *what_counted(enum wsbench_mode mode)
{
    static const char *const names[] = {"round trips", "deliveries", "deliveries",
                                        "handshakes", "messages"};
    return names[mode];
}

static void print_mem(const struct wsbench_report *r)
{
    uint64_t n = r->sum.conns_ok;
    if (r->have_mem)
        printf("  server memory  PSS %.1f -> %.1f MiB: %.0f B/conn PSS, %.0f B/conn RSS\n",
               (double)r->pss0 / 1048576, (double)r->pss1 / 1048576,
               per_conn(r->pss1, r->pss0, n), per_conn(r->rss1, r->rss0, n));
    else
        printf("  server memory  (no --server-pid)\n");
    if (r->have_sock)
        printf("  kernel TCP mem %.1f -> %.1f MiB: %.0f B/conn (both ends of loopback)\n",
               (double)r->sock0 / 1048576, (double)r->sock1 / 1048576,
               per_conn(r->sock1, r->sock0, n));
}

void wsbench_report_table(const struct wsbench_opts *o, const struct wsbench_report *r)
{
    const struct wsbench_result *s = &r->sum;
    const struct wsbench_hist *h = &s->hist;
    printf("wsbench %s %s%s:%u%.*s conns=%u", wsbench_report_mode_name(o->mode), o->raw ? "tcp://" : "ws://",
           o->url.host, (unsigned)o->url.port, o->raw ? 0 : (int)strcspn(o->url.target, "?"),
           o->url.target, o->conns);
    if (o->mode == WSBENCH_ECHO || o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT)
        printf(" inflight=%u size=%u", o->inflight, o->size);
    if (o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT)
        printf(" publishers=%u rate=%.0f", o->publishers, o->rate);
    printf(" threads=%u procs=%u %.2fs\n", o->threads, o->procs, r->seconds);
    if (o->mode != WSBENCH_IDLE)
        printf("  %-14s %llu (%.1f/s)\n", what_counted(o->mode),
               (unsigned long long)s->messages,
               r->seconds > 0 ? (double)s->messages / r->seconds : 0);
    if (o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT)
        printf("  publishes      %llu sent, %llu replies, %llu late\n",
               (unsigned long long)s->sent, (unsigned long long)s->replies,
               (unsigned long long)s->late);
    if (r->have_cpu && r->server_cpu_s > 0 && o->mode != WSBENCH_IDLE)
        printf("  server cpu     %.2f s over %d process(es): %.0f per server CPU-second\n",
               r->server_cpu_s, r->server_procs, (double)s->messages / r->server_cpu_s);
    if (o->mode != WSBENCH_IDLE)
        printf("  client cpu     %.2f s (%.0f%% of %u thread(s))\n", r->client_cpu_s,
               r->seconds > 0 ? 100.0 * r->client_cpu_s / (r->seconds * r->nworkers) : 0,
               r->nworkers);
    if (h->count > 0)
        printf("  latency us     p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
               us(h, 0.5), us(h, 0.9), us(h, 0.99), us(h, 0.999), us(h, 1.0));
    printf("  connections    %llu ok, %llu failed; errors %llu%s%s\n",
           (unsigned long long)s->conns_ok, (unsigned long long)s->conns_failed,
           (unsigned long long)s->errors, s->error[0] ? ": " : "", s->error);
    if (o->mode == WSBENCH_IDLE)
        print_mem(r);
}

