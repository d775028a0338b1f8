/* wsctl_seg.c - read-only access to the shared segment for wsctl. */
#include "tools/wsctl_seg.h"
#include "shm/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RELAXED memory_order_relaxed
#define SEG_SNAPSHOT_TRIES 16

/* Explains why a segment that exists was refused: its first bytes tell. */
static int seg_layout_error(const struct wsctl_seg *s, const struct wsctl_opts *o)
{
    struct {
        uint64_t magic;
        uint32_t layout_version;
        uint32_t header_size;
    } h = {0};
    int fd = shm_open(s->name, O_RDONLY | O_CLOEXEC, 0);
    ssize_t n = fd == -1 ? -1 : pread(fd, &h, sizeof(h), 0);
    if (fd != -1)
        close(fd);
    if (n != (ssize_t)sizeof(h) || h.magic == 0)
        return wsctl_cli_error(o, "wsd is starting or its shared segment %s is incomplete",
                               s->name);
    if (h.magic != SHM_SEG_MAGIC)
        return wsctl_cli_error(o, "%s is not a wsd shared segment", s->name);
    if (h.layout_version != SHM_SEG_LAYOUT_VERSION)
        return wsctl_cli_error(o, "segment layout version %u not supported (this wsctl reads "
                                  "version %d)",
                               h.layout_version, SHM_SEG_LAYOUT_VERSION);
    return wsctl_cli_error(o, "the shared segment %s does not match the layout this wsctl "
                              "was built for: use the wsctl of the running wsd",
                           s->name);
}

int wsctl_seg_open(struct wsctl_seg *s, const struct wsctl_opts *o)
{
    memset(s, 0, sizeof(*s));
    shm_seg_name_for(o->socket, s->name);
    int rc = shm_seg_open_readonly(&s->seg, s->name);
    int saved = errno;
    if (rc == WSD_ENOENT)
        return wsctl_cli_error(o, "wsd is not running (no shared segment for %s)", o->socket);
    if (rc == WSD_EIO && (saved == EACCES || saved == EPERM))
        return wsctl_cli_error(o, "permission denied: cannot read the shared segment %s of %s "
                                  "(run wsctl as the user of wsd)",
                               s->name, o->socket);
    if (rc == WSD_EIO)
        return wsctl_cli_error(o, "cannot map the shared segment %s of %s: %s", s->name,
                               o->socket, strerror(saved));
    if (rc < 0)
        return seg_layout_error(s, o);
    if (!wsctl_seg_master_alive(s)) {
        int pid = s->seg.hdr->master_pid;
        wsctl_seg_close(s);
        return wsctl_cli_error(o, "wsd is not running (stale shared segment %s for %s: "
                                  "master pid %d is gone)",
                               s->name, o->socket, pid);
    }
    return 0;
}

void wsctl_seg_close(struct wsctl_seg *s)
{
    shm_seg_close(&s->seg);
}

bool wsctl_seg_master_alive(const struct wsctl_seg *s)
{
    pid_t pid = s->seg.hdr->master_pid;
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

const char *wsctl_seg_run_state_name(uint32_t state)
{
    static const char *const names[] = {"starting", "running", "draining", "stopping"};
    return state < WSD_ARRAY_LEN(names) ? names[state] : "unknown";
}

const char *wsctl_seg_worker_state_name(uint32_t state)
{
    static const char *const names[] = {"empty", "starting", "running", "retiring", "dead"};
    return state < WSD_ARRAY_LEN(names) ? names[state] : "unknown";
}

const char *wsctl_seg_conn_state_name(uint32_t state)
{
    static const char *const names[] = {"free", "connecting", "connected", "closing"};
    return state < WSD_ARRAY_LEN(names) ? names[state] : "unknown";
}

static void seg_stats(const struct shm_seg_worker *w, struct wsctl_stats *out)
{
    const struct shm_seg_worker_stats *st = &w->stats;
    out->msgs_in = atomic_load_explicit(&st->msgs_in, RELAXED);
    out->msgs_out = atomic_load_explicit(&st->msgs_out, RELAXED);
    out->bytes_in = atomic_load_explicit(&st->bytes_in, RELAXED);
    out->bytes_out = atomic_load_explicit(&st->bytes_out, RELAXED);
    out->deliveries = atomic_load_explicit(&st->deliveries, RELAXED);
    out->delivery_failures = atomic_load_explicit(&st->delivery_failures, RELAXED);
    out->dedup_hits = atomic_load_explicit(&st->dedup_hits, RELAXED);
    out->ring_full_retries = atomic_load_explicit(&st->ring_full_retries, RELAXED);
    out->handshakes_ok = atomic_load_explicit(&st->handshakes_ok, RELAXED);
    out->handshakes_failed = atomic_load_explicit(&st->handshakes_failed, RELAXED);
}

size_t wsctl_seg_workers(const struct wsctl_seg *s, struct wsctl_worker *out)
{
    size_t n = 0;
    for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++) {
        struct shm_seg_worker *w = shm_seg_worker(&s->seg, i);
        int32_t pid = atomic_load_explicit(&w->pid, RELAXED);
        uint32_t state = atomic_load_explicit(&w->state, memory_order_acquire);
        if (pid == 0 && state == SHM_SEG_WORKER_EMPTY)
            continue;
        struct wsctl_worker *o = &out[n++];
        const struct ring *r = shm_seg_ring(&s->seg, i);
        o->slot = i;
        o->pid = pid;
        o->state = state;
        o->restarts = atomic_load_explicit(&w->restarts, RELAXED);
        o->connections = atomic_load_explicit(&w->connections, RELAXED);
        o->started_wall_ms = atomic_load_explicit(&w->started_wall_ms, RELAXED);
        o->loop_mono_ms = atomic_load_explicit(&w->loop_mono_ms, RELAXED);
        o->ring_used = ring_used_bytes(r);
        o->ring_size = ring_size(r);
        seg_stats(w, &o->stats);
    }
    return n;
}

void wsctl_seg_totals(const struct wsctl_seg *s, struct wsctl_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++) {
        struct wsctl_stats w;
        seg_stats(shm_seg_worker(&s->seg, i), &w);
        out->msgs_in += w.msgs_in;
        out->msgs_out += w.msgs_out;
        out->bytes_in += w.bytes_in;
        out->bytes_out += w.bytes_out;
        out->deliveries += w.deliveries;
        out->delivery_failures += w.delivery_failures;
        out->dedup_hits += w.dedup_hits;
        out->ring_full_retries += w.ring_full_retries;
        out->handshakes_ok += w.handshakes_ok;
        out->handshakes_failed += w.handshakes_failed;
    }
}

/* The user id of user-index entry `index` into out; false when there is none. */
static bool seg_user_name(const struct wsctl_seg *s, uint32_t index, char *out)
{
    out[0] = '\0';
    if (index == CONN_TABLE_USER_NONE || index >= s->seg.hdr->users_cap)
        return false;
    const struct names_entry *e = &names_entries(s->seg.users)[index];
    uint32_t len = e->len;
    if (e->state != NAMES_USED || len == 0 || len > NAMES_NAME_MAX)
        return false;
    memcpy(out, e->name, len);
    out[len] = '\0';
    return true;
}

int wsctl_seg_conns(const struct wsctl_seg *s, struct wsctl_conn **out, size_t *n)
{
    uint32_t hw = conn_table_high_water(&s->seg);
    struct wsctl_conn *v = NULL;
    size_t len = 0, cap = 0;
    for (uint32_t i = 0; i < hw; i++) {
        struct conn_table_info info;
        int rc = WSD_EAGAIN;
        for (int k = 0; k < SEG_SNAPSHOT_TRIES && rc == WSD_EAGAIN; k++)
            rc = conn_table_snapshot(&s->seg, i, &info);
        if (rc < 0)
            continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 64;
            struct wsctl_conn *nv = realloc(v, cap * sizeof(*nv));
            if (nv == NULL) {
                free(v);
                return WSD_ENOMEM;
            }
            v = nv;
        }
        v[len].info = info;
        v[len].has_user = seg_user_name(s, info.user, v[len].user);
        len++;
    }
    *out = v;
    *n = len;
    return 0;
}

struct seg_collect {
    struct wsctl_name *v;
    size_t n;
    size_t cap;
    int err;
};

static void seg_collect_name(void *ctx, const struct names_entry *e)
{
    struct seg_collect *c = ctx;
    uint32_t total = atomic_load_explicit(&e->total, RELAXED);
    uint32_t len = e->len;
    if (c->err != 0 || total == 0 || len == 0 || len > NAMES_NAME_MAX)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct wsctl_name *nv = realloc(c->v, cap * sizeof(*nv));
        if (nv == NULL) {
            c->err = WSD_ENOMEM;
            return;
        }
        c->v = nv;
        c->cap = cap;
    }
    struct wsctl_name *o = &c->v[c->n++];
    memcpy(o->name, e->name, len);
    o->name[len] = '\0';
    o->total = total;
    o->worker_mask = atomic_load_explicit(&e->worker_mask, RELAXED);
    memcpy(o->counts, e->counts, sizeof(o->counts));
}

static int seg_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct wsctl_name *)a)->name, ((const struct wsctl_name *)b)->name);
}

int wsctl_seg_names(const struct wsctl_seg *s, bool users, struct wsctl_name **out,
                    size_t *n)
{
    struct seg_collect c = {0};
    names_foreach(users ? s->seg.users : s->seg.groups, seg_collect_name, &c);
    if (c.err != 0) {
        free(c.v);
        return c.err;
    }
    if (c.n > 1)
        qsort(c.v, c.n, sizeof(*c.v), seg_name_cmp);
    *out = c.v;
    *n = c.n;
    return 0;
}

const struct wsctl_name *wsctl_seg_find_name(const struct wsctl_name *v, size_t n,
                                             const char *name)
{
    struct wsctl_name key;
    if (v == NULL || strlen(name) > NAMES_NAME_MAX)
        return NULL;
    strcpy(key.name, name);
    return bsearch(&key, v, n, sizeof(*v), seg_name_cmp);
}
