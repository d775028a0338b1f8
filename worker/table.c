/* table.c - a worker's writes into the shared connection table and its worker slot. */
#include "worker/table.h"
#include "core/audit.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"
#include "shm/conn_table.h"
#include "shm/seg.h"
#include "worker/app.h"
#include "worker/conn.h"
#include "worker/heartbeat.h"
#include "worker/worker.h"

#include <netinet/in.h>
#include <string.h>

#define RELAXED memory_order_relaxed

/* Adds to a counter of a slot this worker owns: the only writer, so no locked add. */
static inline void table_add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, RELAXED) + n, RELAXED);
}

static struct shm_seg_worker *table_self(struct worker *w)
{
    return shm_seg_worker(w->seg, (uint32_t)w->id);
}

static struct conn_table_slot *table_slot(struct worker *w, struct conn *c)
{
    if (c->slot == UINT32_MAX)
        return NULL;
    return &w->seg->conns[c->slot];
}

int table_worker_start(struct worker *w)
{
    struct shm_seg_worker *sw = table_self(w);
    atomic_store_explicit(&sw->loop_mono_ms, w->now_ms, RELAXED);
    /* Only STARTING becomes RUNNING: a slot the master already marked RETIRING stays so
       (its SIGTERM is on the way). */
    uint32_t expected = SHM_SEG_WORKER_STARTING;
    atomic_compare_exchange_strong_explicit(&sw->state, &expected, SHM_SEG_WORKER_RUNNING,
                                            memory_order_acq_rel, memory_order_acquire);
    return 0;
}

void table_worker_stop(struct worker *w)
{
    (void)w;
}

/*
 * Acts on the master's close request for c. A heartbeat request (4000) is dropped when a
 * sign of life arrived after the master's scan; a silent peer gets no close handshake
 * wait: the connection lingers at once.
 */
static void table_close_on_request(struct worker *w, struct conn *c, struct conn_table_slot *s,
                                   uint16_t code)
{
    if (code != HEARTBEAT_CLOSE_CODE) {
        log_msg(LOG_INFO, "conn=%llx closed on request with %u", (unsigned long long)c->id,
                code);
        conn_ws_close(w, c, code, "closed by the operator");
        return;
    }
    int64_t seen = atomic_load_explicit(&s->last_seen_ms, RELAXED);
    if (!heartbeat_is_overdue(w->cfg, seen, w->now_ms))
        return;
    log_msg(LOG_INFO, "conn=%llx heartbeat timeout: silent for %lld ms, %u missed pings",
            (unsigned long long)c->id, (long long)(w->now_ms - seen), c->missed_pings);
    conn_ws_close(w, c, HEARTBEAT_CLOSE_CODE, "heartbeat timeout");
    conn_linger(w, c);
}

void table_worker_tick(struct worker *w)
{
    atomic_store_explicit(&table_self(w)->loop_mono_ms, w->now_ms, RELAXED);
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        struct conn_table_slot *s = table_slot(w, c);
        if (s == NULL || atomic_load_explicit(&s->close_request, RELAXED) == 0)
            continue;
        uint16_t code = conn_table_take_close_request(s);
        if (code && c->phase == CONN_WS)
            table_close_on_request(w, c, s, code);
    }
}

void table_peer_addr(const struct sockaddr_storage *ss, struct conn_table_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        a->family = AF_INET;
        a->port = ntohs(in->sin_port);
        memcpy(a->addr, &in->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        a->family = AF_INET6;
        a->port = ntohs(in6->sin6_port);
        memcpy(a->addr, &in6->sin6_addr, 16);
    }
}

int table_conn_acquire(struct worker *w, struct conn *c)
{
    struct conn_table_addr a;
    table_peer_addr(&c->ext->peer, &a);
    uint64_t id;
    int rc = conn_table_alloc(w->seg, (uint32_t)w->id, &a, w->cfg->max_connections_per_ip,
                              clock_wall_ms(), w->now_ms, &id);
    if (rc == WSD_ETOOBIG) /* a client's doing, and counted: no log line per refusal */
        return rc;
    if (rc < 0) {
        log_msg(LOG_WARN, "connection table: cannot take a slot: %s", wsd_strerror(rc));
        return rc;
    }
    c->id = id;
    c->slot = conn_table_id_index(id);
    return 0;
}

/* The close event of the audit log, from what the slot counted. */
static void table_audit_close(struct worker *w, struct conn *c, uint16_t code)
{
    const struct conn_table_slot *s = table_slot(w, c);
    if (!audit_begin("close"))
        return;
    audit_u64("conn", c->id);
    audit_str("user", c->app ? c->app->user : "");
    audit_u64("code", code);
    audit_i64("duration_ms", clock_wall_ms() - s->connect_wall_ms);
    audit_u64("msgs_in", atomic_load_explicit(&s->msgs_in, RELAXED));
    audit_u64("msgs_out", atomic_load_explicit(&s->msgs_out, RELAXED));
    audit_u64("bytes_in", atomic_load_explicit(&s->bytes_in, RELAXED));
    audit_u64("bytes_out", atomic_load_explicit(&s->bytes_out, RELAXED));
    audit_end();
}

void table_conn_release(struct worker *w, struct conn *c)
{
    if (c->slot == UINT32_MAX)
        return;
    uint16_t code = c->close_sent ? c->close_code : WS_CLOSE_ABNORMAL;
    table_audit_close(w, c, code);
    SHM_SEG_STAT_ADD(table_self(w), closes[shm_seg_close_bucket(code)], 1);
    conn_table_release(w->seg, c->id);
    c->slot = UINT32_MAX;
}

void table_conn_set_user(struct worker *w, struct conn *c, uint32_t user_index)
{
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        atomic_store_explicit(&s->user, user_index, RELAXED);
}

void table_conn_add_flags(struct worker *w, struct conn *c, uint32_t flags)
{
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        atomic_fetch_or_explicit(&s->flags, flags, RELAXED);
}

void table_conn_state(struct worker *w, struct conn *c, enum table_state state)
{
    struct conn_table_slot *s = table_slot(w, c);
    if (s == NULL)
        return;
    static const enum conn_table_state map[] = {
        [TABLE_STATE_CONNECTING] = CONN_TABLE_CONNECTING,
        [TABLE_STATE_CONNECTED] = CONN_TABLE_CONNECTED,
        [TABLE_STATE_CLOSING] = CONN_TABLE_CLOSING,
    };
    conn_table_set_state(s, map[state]);
}

void table_conn_seen(struct worker *w, struct conn *c, int64_t now_ms)
{
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        atomic_store_explicit(&s->last_seen_ms, now_ms, RELAXED);
}

void table_conn_ping(struct worker *w, struct conn *c, int64_t now_ms)
{
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        atomic_store_explicit(&s->last_ping_ms, now_ms, RELAXED);
}

void table_conn_rtt(struct worker *w, struct conn *c, uint32_t rtt_us)
{
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        atomic_store_explicit(&s->rtt_us, rtt_us, RELAXED);
}

void table_conn_missed(struct worker *w, struct conn *c, uint32_t missed)
{
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        atomic_store_explicit(&s->missed_pings, missed, RELAXED);
}

void table_conn_prefetch(struct worker *w, struct conn *c)
{
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        __builtin_prefetch(&s->last_seen_ms, 1);
}

void table_conn_count_in(struct worker *w, struct conn *c, uint64_t bytes)
{
    SHM_SEG_STAT_ADD(table_self(w), bytes_in, bytes);
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        table_add(&s->bytes_in, bytes);
}

void table_conn_count_out(struct worker *w, struct conn *c, uint64_t bytes)
{
    if (bytes == 0)
        return;
    SHM_SEG_STAT_ADD(table_self(w), bytes_out, bytes);
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        table_add(&s->bytes_out, bytes);
}

void table_conn_count_msg_in(struct worker *w, struct conn *c)
{
    SHM_SEG_STAT_ADD(table_self(w), msgs_in, 1);
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        table_add(&s->msgs_in, 1);
}

void table_conn_count_msg_out(struct worker *w, struct conn *c)
{
    SHM_SEG_STAT_ADD(table_self(w), msgs_out, 1);
    struct conn_table_slot *s = table_slot(w, c);
    if (s)
        table_add(&s->msgs_out, 1);
}
