/* wsctl_inspect.c - status, workers, conns, users and groups from the shared segment. */
#include "tools/wsctl_inspect.h"
#include "core/clock.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define RELAXED memory_order_relaxed

/* Options of conns. */
struct conns_filter {
    const char *user;
    const char *group;
    int64_t worker; /* -1: any */
};

const char *wsctl_inspect_ring_fill(char *out, size_t cap, const struct wsctl_worker *w)
{
    char used[32];
    double pct = w->ring_size ? 100.0 * (double)w->ring_used / (double)w->ring_size : 0;
    snprintf(out, cap, "%s (%.1f%%)", wsctl_fmt_bytes(used, sizeof(used), (double)w->ring_used),
             pct);
    return out;
}

void wsctl_inspect_stats_json(struct wsctl_json *j, const struct wsctl_stats *st)
{
    wsctl_json_u64(j, "msgs_in", st->msgs_in);
    wsctl_json_u64(j, "msgs_out", st->msgs_out);
    wsctl_json_u64(j, "bytes_in", st->bytes_in);
    wsctl_json_u64(j, "bytes_out", st->bytes_out);
    wsctl_json_u64(j, "deliveries", st->deliveries);
    wsctl_json_u64(j, "delivery_failures", st->delivery_failures);
    wsctl_json_u64(j, "dedup_hits", st->dedup_hits);
    wsctl_json_u64(j, "ring_full_retries", st->ring_full_retries);
    wsctl_json_u64(j, "handshakes_ok", st->handshakes_ok);
    wsctl_json_u64(j, "handshakes_failed", st->handshakes_failed);
}

void wsctl_inspect_worker_json(struct wsctl_json *j, const struct wsctl_worker *w)
{
    wsctl_json_u64(j, "slot", w->slot);
    wsctl_json_i64(j, "pid", w->pid);
    wsctl_json_str(j, "state", wsctl_seg_worker_state_name(w->state));
    wsctl_json_u64(j, "restarts", w->restarts);
    wsctl_json_u64(j, "connections", w->connections);
    if (w->pid > 0 && w->started_wall_ms > 0)
        wsctl_json_i64(j, "uptime_s", (clock_wall_ms() - w->started_wall_ms) / 1000);
    else
        wsctl_json_null(j, "uptime_s");
    if (w->pid > 0 && w->loop_mono_ms > 0)
        wsctl_json_i64(j, "loop_age_ms", clock_mono_ms() - w->loop_mono_ms);
    else
        wsctl_json_null(j, "loop_age_ms");
    wsctl_json_u64(j, "ring_used", w->ring_used);
    wsctl_json_u64(j, "ring_size", w->ring_size);
    wsctl_json_double(j, "ring_fill_pct",
                      w->ring_size ? 100.0 * (double)w->ring_used / (double)w->ring_size : 0, 2);
    wsctl_inspect_stats_json(j, &w->stats);
}

void wsctl_inspect_conn_json(struct wsctl_json *j, const struct wsctl_conn *c)
{
    const struct conn_table_info *i = &c->info;
    char addr[64];
    wsctl_json_u64(j, "id", i->id);
    wsctl_json_u64(j, "worker", i->owner);
    wsctl_json_str(j, "user", c->user);
    wsctl_json_bool(j, "authenticated", c->has_user);
    wsctl_json_str(j, "remote", conn_table_addr_format(&i->remote, addr, sizeof(addr)));
    wsctl_json_str(j, "state", wsctl_seg_conn_state_name(i->state));
    wsctl_json_i64(j, "connect_wall_ms", i->connect_wall_ms);
    wsctl_json_double(j, "age_s", (double)(clock_wall_ms() - i->connect_wall_ms) / 1000.0, 1);
    wsctl_json_double(j, "last_seen_s", (double)(clock_mono_ms() - i->last_seen_ms) / 1000.0,
                      1);
    if (i->rtt_us > 0)
        wsctl_json_double(j, "rtt_ms", i->rtt_us / 1000.0, 3);
    else
        wsctl_json_null(j, "rtt_ms");
    wsctl_json_u64(j, "missed_pings", i->missed_pings);
    wsctl_json_u64(j, "bytes_in", i->bytes_in);
    wsctl_json_u64(j, "bytes_out", i->bytes_out);
    wsctl_json_u64(j, "msgs_in", i->msgs_in);
    wsctl_json_u64(j, "msgs_out", i->msgs_out);
    wsctl_json_array(j, "flags"); /* as the owning worker recorded them */
    if (i->flags & CONN_TABLE_F_TLS)
        wsctl_json_str(j, NULL, "tls");
    if (i->flags & CONN_TABLE_F_DEFLATE)
        wsctl_json_str(j, NULL, "deflate");
    if (i->flags & CONN_TABLE_F_AUTHENTICATED)
        wsctl_json_str(j, NULL, "authenticated");
    wsctl_json_array_end(j);
    wsctl_json_u64(j, "close_requested", i->close_request);
}

/* ---- status ---- */

static void status_json(const struct wsctl_opts *o, const struct wsctl_seg *s,
                        const struct wsctl_worker *w, size_t nw, struct wsctl_json *j)
{
    const struct shm_seg_header *h = s->seg.hdr;
    struct wsctl_stats tot;
    wsctl_seg_totals(s, &tot);
    wsctl_json_object(j, NULL);
    wsctl_json_str(j, "socket", o->socket);
    wsctl_json_str(j, "segment", s->name);
    wsctl_json_i64(j, "master_pid", h->master_pid);
    wsctl_json_str(j, "state", wsctl_seg_run_state_name(shm_seg_state(&s->seg)));
    wsctl_json_bool(j, "broken", shm_seg_is_broken(&s->seg));
    wsctl_json_i64(j, "start_wall_ms", h->start_wall_ms);
    wsctl_json_i64(j, "uptime_s", (clock_wall_ms() - h->start_wall_ms) / 1000);
    wsctl_json_u64(j, "config_generation",
                   atomic_load_explicit(&h->config_generation, memory_order_acquire));
    wsctl_json_u64(j, "max_connections", conn_table_capacity(&s->seg));
    wsctl_json_u64(j, "users", atomic_load_explicit(&s->seg.users->used, RELAXED));
    wsctl_json_u64(j, "groups", atomic_load_explicit(&s->seg.groups->used, RELAXED));
    wsctl_json_array(j, "workers");
    for (size_t i = 0; i < nw; i++) {
        wsctl_json_object(j, NULL);
        wsctl_inspect_worker_json(j, &w[i]);
        wsctl_json_object_end(j);
    }
    wsctl_json_array_end(j);
    wsctl_json_object(j, "totals");
    wsctl_json_u64(j, "connections", conn_table_in_use(&s->seg));
    wsctl_inspect_stats_json(j, &tot);
    wsctl_json_object_end(j);
    wsctl_json_object_end(j);
}

static void status_text_totals(const struct wsctl_seg *s)
{
    struct wsctl_stats t;
    char a[32], b[32];
    wsctl_seg_totals(s, &t);
    printf("\nconnections %u  handshakes ok %llu  failed %llu\n", conn_table_in_use(&s->seg),
           (unsigned long long)t.handshakes_ok, (unsigned long long)t.handshakes_failed);
    printf("msgs in %llu  out %llu  bytes in %s  out %s\n", (unsigned long long)t.msgs_in,
           (unsigned long long)t.msgs_out, wsctl_fmt_bytes(a, sizeof(a), (double)t.bytes_in),
           wsctl_fmt_bytes(b, sizeof(b), (double)t.bytes_out));
    printf("deliveries %llu  failures %llu  dedup hits %llu  ring-full retries %llu\n",
           (unsigned long long)t.deliveries, (unsigned long long)t.delivery_failures,
           (unsigned long long)t.dedup_hits, (unsigned long long)t.ring_full_retries);
}

static int status_text(const struct wsctl_opts *o, const struct wsctl_seg *s,
                       const struct wsctl_worker *w, size_t nw)
{
    static const char *const head[] = {"SLOT", "PID", "STATE", "RESTARTS", "CONNS", "RING"};
    const struct shm_seg_header *h = s->seg.hdr;
    char up[32], ring[64];
    const char *state = wsctl_seg_run_state_name(shm_seg_state(&s->seg));
    if (shm_seg_is_broken(&s->seg))
        state = "broken";
    printf("wsd on %s (segment %s)\n", o->socket, s->name);
    printf("state        %s\n", state);
    printf("master pid   %d\n", h->master_pid);
    printf("uptime       %s\n",
           wsctl_fmt_duration(up, sizeof(up), (clock_wall_ms() - h->start_wall_ms) / 1000));
    printf("config       generation %llu\n",
           (unsigned long long)atomic_load_explicit(&h->config_generation, memory_order_acquire));
    printf("connections  %u of %u\n", conn_table_in_use(&s->seg), conn_table_capacity(&s->seg));
    printf("users        %u\n", atomic_load_explicit(&s->seg.users->used, RELAXED));
    printf("groups       %u\n\n", atomic_load_explicit(&s->seg.groups->used, RELAXED));
    struct wsctl_table t;
    wsctl_table_init(&t, 6, head, 0x1bu);
    for (size_t i = 0; i < nw; i++) {
        wsctl_table_cell(&t, "%u", w[i].slot);
        wsctl_table_cell(&t, "%d", w[i].pid);
        wsctl_table_cell(&t, "%s", wsctl_seg_worker_state_name(w[i].state));
        wsctl_table_cell(&t, "%u", w[i].restarts);
        wsctl_table_cell(&t, "%u", w[i].connections);
        wsctl_table_cell(&t, "%s", wsctl_inspect_ring_fill(ring, sizeof(ring), &w[i]));
    }
    int rc = wsctl_table_print(&t, stdout);
    wsctl_table_fini(&t);
    status_text_totals(s);
    return rc;
}

/* Prints j (or reports its error). Returns the exit status. */
static int inspect_print_json(const struct wsctl_opts *o, struct wsctl_json *j)
{
    int rc = wsctl_json_print(j, stdout);
    wsctl_json_fini(j);
    return rc == 0 ? WSCTL_EXIT_OK : wsctl_cli_error(o, "out of memory");
}

int wsctl_inspect_status(struct wsctl_opts *o, int argc, char **argv)
{
    int rc = wsctl_cli_plain_args(o, argc, argv);
    struct wsctl_seg s;
    if (rc >= 0 || (rc = wsctl_seg_open(&s, o)) != 0)
        return rc;
    struct wsctl_worker w[SHM_SEG_WORKERS];
    size_t nw = wsctl_seg_workers(&s, w);
    if (o->json) {
        struct wsctl_json j;
        wsctl_json_init(&j);
        status_json(o, &s, w, nw, &j);
        rc = inspect_print_json(o, &j);
    } else {
        rc = status_text(o, &s, w, nw) == 0 ? 0 : wsctl_cli_error(o, "out of memory");
    }
    wsctl_seg_close(&s);
    return rc;
}

/* ---- workers ---- */

static int workers_text(const struct wsctl_worker *w, size_t nw)
{
    static const char *const head[] = {"SLOT",    "PID",      "STATE",    "RESTARTS",
                                       "UPTIME",  "CONNS",    "RING",     "MSGS_IN",
                                       "MSGS_OUT", "BYTES_IN", "BYTES_OUT", "LOOP_MS"};
    struct wsctl_table t;
    char buf[64];
    wsctl_table_init(&t, 12, head, 0xfbbu);
    for (size_t i = 0; i < nw; i++) {
        bool live = w[i].pid > 0;
        wsctl_table_cell(&t, "%u", w[i].slot);
        wsctl_table_cell(&t, "%d", w[i].pid);
        wsctl_table_cell(&t, "%s", wsctl_seg_worker_state_name(w[i].state));
        wsctl_table_cell(&t, "%u", w[i].restarts);
        wsctl_table_cell(&t, "%s", live ? wsctl_fmt_duration(buf, sizeof(buf),
                                                            (clock_wall_ms() -
                                                             w[i].started_wall_ms) / 1000)
                                        : "-");
        wsctl_table_cell(&t, "%u", w[i].connections);
        wsctl_table_cell(&t, "%s", wsctl_inspect_ring_fill(buf, sizeof(buf), &w[i]));
        wsctl_table_cell(&t, "%llu", (unsigned long long)w[i].stats.msgs_in);
        wsctl_table_cell(&t, "%llu", (unsigned long long)w[i].stats.msgs_out);
        wsctl_table_cell(&t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), (double)w[i].stats.bytes_in));
        wsctl_table_cell(&t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), (double)w[i].stats.bytes_out));
        if (live && w[i].loop_mono_ms > 0)
            wsctl_table_cell(&t, "%lld", (long long)(clock_mono_ms() - w[i].loop_mono_ms));
        else
            wsctl_table_cell(&t, "-");
    }
    int rc = wsctl_table_print(&t, stdout);
    wsctl_table_fini(&t);
    return rc;
}

int wsctl_inspect_workers(struct wsctl_opts *o, int argc, char **argv)
{
    int rc = wsctl_cli_plain_args(o, argc, argv);
    struct wsctl_seg s;
    if (rc >= 0 || (rc = wsctl_seg_open(&s, o)) != 0)
        return rc;
    struct wsctl_worker w[SHM_SEG_WORKERS];
    size_t nw = wsctl_seg_workers(&s, w);
    wsctl_seg_close(&s);
    if (!o->json)
        return workers_text(w, nw) == 0 ? 0 : wsctl_cli_error(o, "out of memory");
    struct wsctl_json j;
    wsctl_json_init(&j);
    wsctl_json_object(&j, NULL);
    wsctl_json_array(&j, "workers");
    for (size_t i = 0; i < nw; i++) {
        wsctl_json_object(&j, NULL);
        wsctl_inspect_worker_json(&j, &w[i]);
        wsctl_json_object_end(&j);
    }
    wsctl_json_array_end(&j);
    wsctl_json_object_end(&j);
    return inspect_print_json(o, &j);
}

/* ---- conns ---- */

static int conns_args(struct wsctl_opts *o, int argc, char **argv, struct conns_filter *f)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},       {"help", no_argument, NULL, 'h'},
        {"user", required_argument, NULL, 'u'}, {"group", required_argument, NULL, 'g'},
        {"worker", required_argument, NULL, 'w'}, {NULL, 0, NULL, 0}};
    uint64_t v;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:hu:g:w:", opts, NULL)) != -1) {
        switch (c) {
        case 'J': o->json = true; break;
        case 'h': wsctl_cli_usage(true); return WSCTL_EXIT_OK;
        case 'u': f->user = optarg; break;
        case 'g': f->group = optarg; break;
        case 'w':
            if (wsctl_cli_parse_u64(optarg, SHM_SEG_WORKERS - 1, &v) < 0)
                return wsctl_cli_usage_error("conns: --worker needs a slot 0-%d",
                                             SHM_SEG_WORKERS - 1);
            f->worker = (int64_t)v;
            break;
        default: return wsctl_cli_bad_option(argv[0], c, argv);
        }
    }
    if (optind != argc)
        return wsctl_cli_usage_error("conns takes no arguments besides its options");
    return -1;
}

/* True when c passes the filter; group is the --group entry (NULL: no members). */
static bool conns_match(const struct wsctl_conn *c, const struct conns_filter *f,
                        const struct wsctl_name *group)
{
    if (f->worker >= 0 && c->info.owner != (uint64_t)f->worker)
        return false;
    if (f->user != NULL && strcmp(c->user, f->user) != 0)
        return false;
    if (f->group != NULL &&
        (group == NULL || c->info.owner >= NAMES_WORKERS || group->counts[c->info.owner] == 0))
        return false;
    return true;
}

static void conns_group_json(struct wsctl_json *j, const char *name, const struct wsctl_name *g)
{
    char key[16];
    wsctl_json_object(j, "group");
    wsctl_json_str(j, "name", name);
    wsctl_json_u64(j, "members", g ? g->total : 0);
    wsctl_json_object(j, "workers");
    for (uint32_t w = 0; g && w < NAMES_WORKERS; w++) {
        if (g->counts[w] == 0)
            continue;
        snprintf(key, sizeof(key), "%u", w);
        wsctl_json_u64(j, key, g->counts[w]);
    }
    wsctl_json_object_end(j);
    wsctl_json_str(j, "note", "the segment records group members per worker only: "
                              "connections lists every connection of those workers");
    wsctl_json_object_end(j);
}

static int conns_json(const struct wsctl_opts *o, const struct wsctl_conn *v, size_t n,
                      const struct conns_filter *f, const struct wsctl_name *g)
{
    struct wsctl_json j;
    size_t count = 0;
    wsctl_json_init(&j);
    wsctl_json_object(&j, NULL);
    if (f->group != NULL)
        conns_group_json(&j, f->group, g);
    wsctl_json_array(&j, "connections");
    for (size_t i = 0; i < n; i++) {
        if (!conns_match(&v[i], f, g))
            continue;
        count++;
        wsctl_json_object(&j, NULL);
        wsctl_inspect_conn_json(&j, &v[i]);
        wsctl_json_object_end(&j);
    }
    wsctl_json_array_end(&j);
    wsctl_json_u64(&j, "count", count);
    wsctl_json_object_end(&j);
    return inspect_print_json(o, &j);
}

static void conns_group_text(const char *name, const struct wsctl_name *g)
{
    if (g == NULL) {
        printf("group %s has no members\n", name);
        return;
    }
    printf("group %s: %u members; per worker:", name, g->total);
    for (uint32_t w = 0; w < NAMES_WORKERS; w++) {
        if (g->counts[w] != 0)
            printf(" %u:%u", w, g->counts[w]);
    }
    printf("\n(the segment records group members per worker only; below: every connection "
           "of those workers)\n\n");
}

static void conns_row(struct wsctl_table *t, const struct wsctl_conn *c)
{
    const struct conn_table_info *i = &c->info;
    char buf[64];
    wsctl_table_cell(t, "%llu", (unsigned long long)i->id);
    wsctl_table_cell(t, "%u", i->owner);
    wsctl_table_cell(t, "%s", c->user[0] ? c->user : "-");
    wsctl_table_cell(t, "%s", conn_table_addr_format(&i->remote, buf, sizeof(buf)));
    wsctl_table_cell(t, "%s", wsctl_fmt_duration(buf, sizeof(buf),
                                                 (clock_wall_ms() - i->connect_wall_ms) / 1000));
    wsctl_table_cell(t, "%.1fs", (double)(clock_mono_ms() - i->last_seen_ms) / 1000.0);
    if (i->rtt_us > 0)
        wsctl_table_cell(t, "%.1fms", i->rtt_us / 1000.0);
    else
        wsctl_table_cell(t, "-");
    wsctl_table_cell(t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), (double)i->bytes_in));
    wsctl_table_cell(t, "%s", wsctl_fmt_bytes(buf, sizeof(buf), (double)i->bytes_out));
    wsctl_table_cell(t, "%s", wsctl_seg_conn_state_name(i->state));
}

static int conns_text(const struct wsctl_opts *o, const struct wsctl_conn *v, size_t n,
                      const struct conns_filter *f, const struct wsctl_name *g)
{
    static const char *const head[] = {"ID",   "WORKER", "USER", "REMOTE", "AGE",
                                       "SEEN", "RTT",    "IN",   "OUT",    "STATE"};
    struct wsctl_table t;
    if (f->group != NULL)
        conns_group_text(f->group, g);
    if (f->group != NULL && g == NULL)
        return WSCTL_EXIT_OK;
    wsctl_table_init(&t, 10, head, 0x1f3u);
    for (size_t i = 0; i < n; i++) {
        if (conns_match(&v[i], f, g))
            conns_row(&t, &v[i]);
    }
    int rc = wsctl_table_print(&t, stdout);
    wsctl_table_fini(&t);
    return rc == 0 ? WSCTL_EXIT_OK : wsctl_cli_error(o, "out of memory");
}

int wsctl_inspect_conns(struct wsctl_opts *o, int argc, char **argv)
{
    struct conns_filter f = {.worker = -1};
    int rc = conns_args(o, argc, argv, &f);
    struct wsctl_seg s;
    if (rc >= 0 || (rc = wsctl_seg_open(&s, o)) != 0)
        return rc;
    struct wsctl_conn *v = NULL;
    struct wsctl_name *groups = NULL;
    size_t n = 0, ng = 0;
    if (wsctl_seg_conns(&s, &v, &n) < 0 ||
        (f.group != NULL && wsctl_seg_names(&s, false, &groups, &ng) < 0)) {
        rc = wsctl_cli_error(o, "out of memory");
    } else {
        const struct wsctl_name *g = f.group ? wsctl_seg_find_name(groups, ng, f.group) : NULL;
        rc = o->json ? conns_json(o, v, n, &f, g) : conns_text(o, v, n, &f, g);
    }
    free(v);
    free(groups);
    wsctl_seg_close(&s);
    return rc;
}

/* ---- users and groups ---- */

/* "0,2,5": the slots in mask. */
static const char *names_slots(char *out, size_t cap, uint64_t mask)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t w = 0; w < NAMES_WORKERS && len < cap; w++) {
        if (mask & (UINT64_C(1) << w))
            len += (size_t)snprintf(out + len, cap - len, "%s%u", len ? "," : "", w);
    }
    return out;
}

/* "0:3 2:1": members per worker. */
static const char *names_counts(char *out, size_t cap, const struct wsctl_name *e)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t w = 0; w < NAMES_WORKERS && len < cap; w++) {
        if (e->counts[w] != 0)
            len += (size_t)snprintf(out + len, cap - len, "%s%u:%u", len ? " " : "", w,
                                    e->counts[w]);
    }
    return out;
}

static void names_entry_json(struct wsctl_json *j, bool users, const struct wsctl_name *e)
{
    char key[16];
    wsctl_json_object(j, NULL);
    wsctl_json_str(j, users ? "user" : "group", e->name);
    wsctl_json_u64(j, users ? "connections" : "members", e->total);
    if (users) {
        wsctl_json_array(j, "workers");
        for (uint32_t w = 0; w < NAMES_WORKERS; w++) {
            if (e->counts[w] != 0)
                wsctl_json_u64(j, NULL, w);
        }
        wsctl_json_array_end(j);
    } else {
        wsctl_json_object(j, "workers");
        for (uint32_t w = 0; w < NAMES_WORKERS; w++) {
            snprintf(key, sizeof(key), "%u", w);
            if (e->counts[w] != 0)
                wsctl_json_u64(j, key, e->counts[w]);
        }
        wsctl_json_object_end(j);
    }
    wsctl_json_object_end(j);
}

static int names_print(const struct wsctl_opts *o, bool users, const struct wsctl_name *v,
                       size_t n)
{
    if (o->json) {
        struct wsctl_json j;
        wsctl_json_init(&j);
        wsctl_json_object(&j, NULL);
        wsctl_json_array(&j, users ? "users" : "groups");
        for (size_t i = 0; i < n; i++)
            names_entry_json(&j, users, &v[i]);
        wsctl_json_array_end(&j);
        wsctl_json_u64(&j, "count", n);
        wsctl_json_object_end(&j);
        return inspect_print_json(o, &j);
    }
    static const char *const uhead[] = {"USER", "CONNS", "WORKERS"};
    static const char *const ghead[] = {"GROUP", "MEMBERS", "WORKERS (slot:members)"};
    struct wsctl_table t;
    char buf[512];
    wsctl_table_init(&t, 3, users ? uhead : ghead, 0x2u);
    for (size_t i = 0; i < n; i++) {
        wsctl_table_cell(&t, "%s", v[i].name);
        wsctl_table_cell(&t, "%u", v[i].total);
        wsctl_table_cell(&t, "%s", users ? names_slots(buf, sizeof(buf), v[i].worker_mask)
                                         : names_counts(buf, sizeof(buf), &v[i]));
    }
    int rc = wsctl_table_print(&t, stdout);
    wsctl_table_fini(&t);
    return rc == 0 ? WSCTL_EXIT_OK : wsctl_cli_error(o, "out of memory");
}

static int names_command(struct wsctl_opts *o, int argc, char **argv, bool users)
{
    int rc = wsctl_cli_plain_args(o, argc, argv);
    struct wsctl_seg s;
    if (rc >= 0 || (rc = wsctl_seg_open(&s, o)) != 0)
        return rc;
    struct wsctl_name *v = NULL;
    size_t n = 0;
    if (wsctl_seg_names(&s, users, &v, &n) < 0)
        rc = wsctl_cli_error(o, "out of memory");
    else
        rc = names_print(o, users, v, n);
    free(v);
    wsctl_seg_close(&s);
    return rc;
}

int wsctl_inspect_users(struct wsctl_opts *o, int argc, char **argv)
{
    return names_command(o, argc, argv, true);
}

int wsctl_inspect_groups(struct wsctl_opts *o, int argc, char **argv)
{
    return names_command(o, argc, argv, false);
}
