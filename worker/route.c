/* route.c - local indexes, the store batch, the rings and the fan-out. */
#include "worker/route.h"
#include "core/audit.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/strmap.h"
#include "core/wsd.h"
#include "shm/conn_table.h"
#include "shm/delivery.h"
#include "shm/names.h"
#include "shm/ring.h"
#include "shm/seg.h"
#include "worker/app.h"
#include "worker/conn.h"
#include "worker/table.h"
#include "worker/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#define ROUTE_SLOW_CLOSE 4010
#define ROUTE_TAKEOVER_CLOSE 4011
#define ROUTE_PENDING_MAX 65536      /* records waiting for a full ring */
/*
 * Replays are paced by the socket: a step runs while less than ROUTE_REPLAY_LOW bytes
 * wait in the connection's output queue and queues about ROUTE_REPLAY_STEP bytes; the
 * loop gives all replays together at most ROUTE_REPLAY_ITERATION bytes per iteration.
 */
#define ROUTE_REPLAY_LOW (64 * 1024)
#define ROUTE_REPLAY_STEP (256 * 1024)
#define ROUTE_REPLAY_ITERATION (4 * 1024 * 1024)
#define ROUTE_REPLAY_READ 512        /* messages asked of the store per read */
#define ROUTE_PRESENCE_USERS 1000
#define ROUTE_PRESENCE_TIMEOUT_MS 500
#define ROUTE_SESSION_GROUPS_MAX 4096
#define ROUTE_REORDER_MS 200
#define ROUTE_EXPIRE_EVERY_MS 1000
#define ROUTE_EXPIRE_BUDGET 2000
#define ROUTE_SESSION_OPEN_TTL_MS (24LL * 3600 * 1000) /* while attached: a crash leaves it */

/* A local member of a group. */
struct lmember {
    struct conn *c;
    uint64_t last_off; /* last offset delivered; UINT64_MAX until positioned */
};

/*
 * Records of one channel that arrived ahead of a missing offset. With the LMDB store the
 * rings receive a channel in offset order and nothing is ever held; with Redis two
 * workers' appends can reach a ring in the other order, and the later one waits here
 * (at most ROUTE_REORDER_MS) for the earlier.
 */
struct held {
    uint64_t off;
    struct block *rec;
};

struct reorder {
    uint64_t next;       /* next offset to deliver; 0 until a member is positioned */
    struct held *items;  /* sorted by offset */
    uint32_t n, cap;
    int64_t deadline_ms; /* when held records go out despite the gap */
};

struct lgroup {
    uint8_t len;
    char name[NAMES_NAME_MAX + 1];
    struct lmember *members;
    uint32_t n, cap;
    struct reorder ro;
};

/* The local connections of one user. */
struct luser {
    struct conn **conns;
    uint64_t *last_off; /* per connection: last personal offset delivered */
    uint32_t n, cap;
    struct reorder ro;
};

/*
 * A channel still to replay on a connection (app_conn.replay, a FIFO): the personal
 * channel or a group, from the offset after `after`. While it waits and runs, the
 * membership is not positioned (last_off UINT64_MAX), so live records of the channel pass
 * it by; the replay reads them from the store instead, and the last step, inside a batch
 * like a join, positions the membership at the channel's latest offset.
 */
struct route_replay {
    struct route_replay *next;
    bool personal;
    char group[NAMES_NAME_MAX + 1]; /* "" for the personal channel */
    uint64_t after;                 /* the last offset written, or where to start */
    uint64_t keep;                  /* a place already reached before (re-join), or 0 */
};

enum route_op_type {
    ROUTE_OP_PUBLISH,
    ROUTE_OP_SEND,
    ROUTE_OP_ACK,
    ROUTE_OP_JOIN,
    ROUTE_OP_LOGIN,
    ROUTE_OP_SESSION,
    ROUTE_OP_SYSTEM,
    ROUTE_OP_REPLAY, /* the next step of c's replays */
};

/* One entry of auth's since map, copied out of the request. */
struct route_since {
    char ch[STORE_CHANNEL_MAX + 1]; /* group name, or "@" */
    uint64_t offset;
    char epoch[ENVELOPE_MAX_EPOCH_LEN + 1]; /* "" when not given */
};

/* A request waiting for the batch. Strings are NUL-terminated copies. */
struct route_op {
    enum route_op_type type;
    struct conn *c;
    uint64_t conn_id;
    uint8_t reply_enc;
    uint8_t data_enc;
    bool has_since;
    struct envelope_id id;
    char target[NAMES_NAME_MAX + 1]; /* group or user */
    char mid[STORE_MID_MAX + 1];
    char since_epoch[ENVELOPE_MAX_EPOCH_LEN + 1];
    uint64_t offset;    /* ack: offset; join: since */
    bool done;          /* publish/send/ack: applied in the batch, reply after commit */
    bool dup;
    uint64_t res_offset;
    int64_t res_delivered; /* send: connections reached; -1 for publish */
    struct route_since *since; /* login: auth's since map (heap, freed after the batch) */
    size_t num_since;
    size_t data_off;    /* into route.data */
    size_t data_len;
};

struct route_pending {
    uint32_t target;
    struct block *rec; /* type in the first two bytes of the delivery header */
};

struct presence_query {
    uint64_t seq;
    struct conn *c;
    uint64_t conn_id;
    uint8_t enc;
    struct envelope_id id;
    char group[NAMES_NAME_MAX + 1];
    uint64_t waiting;   /* workers that have not answered */
    struct strmap users;
    int64_t deadline_ms;
};

struct route {
    struct store *store;
    int efds[CONFIG_MAX_WORKERS];
    struct strmap groups; /* name -> struct lgroup */
    struct strmap users;  /* user id -> struct luser */
    struct route_op *ops;
    size_t num_ops, cap_ops;
    struct buf data;      /* data bytes of the queued ops */
    uint64_t wake;        /* workers that got records this iteration */
    struct route_pending *pending;
    size_t num_pending, cap_pending;
    struct presence_query *presence;
    size_t num_presence, cap_presence;
    uint64_t presence_seq;
    char mid_prefix[17];
    uint64_t mid_counter;
    struct buf frame[2];  /* per encoding: the fan-out frame being built */
    struct buf session;   /* a session record being written */
    int64_t next_expire_ms;
    uint32_t held;        /* records held by reorder buffers (a hint for route_flush) */
    struct conn **replaying; /* with replays, or their last bytes still queued; a
                                connection leaves before it is freed */
    size_t num_replaying, cap_replaying;
    uint64_t replay_budget; /* replay bytes this loop iteration may still queue */
};

static struct route rt;
static uint8_t route_ring_tag = EV_RING; /* epoll user pointer of this worker's eventfd */

/* ---- helpers ---- */

static enum envelope_encoding conn_enc(const struct conn *c)
{
    return c->msgpack ? ENVELOPE_MSGPACK : ENVELOPE_JSON;
}

static const char *route_user_of(const struct conn *c)
{
    return c->app ? c->app->user : "";
}

static bool route_conn_gone(const struct conn *c, uint64_t id)
{
    return c->phase == CONN_DEAD || c->id != id || c->app == NULL;
}

static void route_channel_name(char *out, const char *user)
{
    snprintf(out, STORE_CHANNEL_MAX + 1, "@%s", user);
}

static void route_retention_for_group(const struct config *cfg, const char *group,
                                      struct store_retention *ret)
{
    int64_t size = cfg->history_size, ttl = cfg->history_ttl;
    for (size_t i = 0; i < cfg->num_group_rules; i++) {
        const struct config_group_rule *r = &cfg->group_rules[i];
        if (jwt_pattern_match(r->pattern, strlen(r->pattern), group, strlen(group))) {
            if (r->history_size >= 0)
                size = r->history_size;
            if (r->history_ttl >= 0)
                ttl = r->history_ttl;
            break;
        }
    }
    ret->max_messages = (uint64_t)size;
    /* history_ttl 0 means no age limit (wsd.conf(5)) */
    ret->ttl_ms = ttl > 0 ? ttl * 1000 : INT64_MAX / 4;
}

/* Sends an encoded envelope (in enc) to c if it is still there. */
static void route_reply(struct worker *w, struct conn *c, uint64_t id, enum envelope_encoding enc,
                        const struct buf *b)
{
    if (!route_conn_gone(c, id))
        app_send_enc(w, c, enc, b);
}

static void route_error(struct worker *w, const struct route_op *op, const char *code,
                        const char *message)
{
    struct buf *b = &w->app_out;
    b->len = 0;
    if (envelope_encode_error(b, op->reply_enc, &op->id, code, message) == 0)
        route_reply(w, op->c, op->conn_id, op->reply_enc, b);
}

/*
 * Room for one more item in an array of n used of *cap items of size bytes, doubling it
 * (first items at the start): the array, moved or not, or NULL on no memory (the old
 * one stays).
 */
static void *route_grow(void *items, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return items;
    size_t more = *cap ? *cap * 2 : first;
    void *p = realloc(items, more * size);
    if (p != NULL)
        *cap = more;
    return p;
}

/* ---- rings ---- */

/* Keeps a record for a full ring; it is pushed again at the end of each iteration. */
static int route_pending_add(uint32_t target, const struct iovec *iov, int n)
{
    if (rt.num_pending >= ROUTE_PENDING_MAX)
        return WSD_ENOSPC;
    struct route_pending *p = route_grow(rt.pending, rt.num_pending, &rt.cap_pending,
                                         sizeof(*p), 64);
    if (p == NULL)
        return WSD_ENOMEM;
    rt.pending = p;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    struct block *blk = block_new(total);
    if (blk == NULL)
        return WSD_ENOMEM;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        memcpy(blk->data + pos, iov[i].iov_base, iov[i].iov_len);
        pos += iov[i].iov_len;
    }
    rt.pending[rt.num_pending++] = (struct route_pending){target, blk};
    return 0;
}

static bool route_has_pending(uint32_t target)
{
    for (size_t i = 0; i < rt.num_pending; i++) {
        if (rt.pending[i].target == target)
            return true;
    }
    return false;
}

/* Pushes one record to worker target; behind records already waiting for that ring. */
static int route_push_one(struct worker *w, uint32_t target, const struct iovec *iov, int n)
{
    const struct delivery_hdr *h = iov[0].iov_base;
    int rc = WSD_ENOSPC;
    if (rt.num_pending == 0 || !route_has_pending(target))
        rc = ring_push(shm_seg_ring(w->seg, target), h->type, (uint8_t)w->id, iov, n);
    if (rc == 0) {
        rt.wake |= UINT64_C(1) << target;
        return 0;
    }
    if (rc != WSD_ENOSPC)
        return rc;
    SHM_SEG_STAT_ADD(shm_seg_worker(w->seg, (uint32_t)w->id), ring_full_retries, 1);
    return route_pending_add(target, iov, n);
}

/* Pushes one delivery record to every worker in mask. */
static void route_push(struct worker *w, uint64_t mask, struct delivery_hdr *h, const char *ch,
                       const char *mid, const char *from, const uint8_t *data)
{
    struct iovec iov[5] = {
        {h, sizeof(*h)},
        {(void *)ch, h->ch_len},
        {(void *)mid, h->mid_len},
        {(void *)from, h->from_len},
        {(void *)data, h->data_len},
    };
    for (uint32_t t = 0; t < SHM_SEG_WORKERS; t++) {
        if (!(mask & (UINT64_C(1) << t)))
            continue;
        int rc = route_push_one(w, t, iov, 5);
        if (rc < 0)
            log_msg(LOG_ERR, "ring push to worker %u failed: %s", t, wsd_strerror(rc));
    }
}

/* Retries records that found their ring full, in order. */
static void route_retry_pending(struct worker *w)
{
    size_t kept = 0;
    uint64_t blocked = 0;
    for (size_t i = 0; i < rt.num_pending; i++) {
        struct route_pending *p = &rt.pending[i];
        uint64_t bit = UINT64_C(1) << p->target;
        int rc = WSD_ENOSPC;
        if (!(blocked & bit)) {
            const struct delivery_hdr *h = (const void *)p->rec->data;
            struct iovec iov = {p->rec->data, p->rec->len};
            rc = ring_push(shm_seg_ring(w->seg, p->target), h->type, (uint8_t)w->id, &iov, 1);
        }
        if (rc == 0) {
            rt.wake |= bit;
            block_unref(p->rec);
        } else {
            blocked |= bit;
            rt.pending[kept++] = *p;
        }
    }
    rt.num_pending = kept;
}

static void route_wake(struct worker *w)
{
    (void)w;
    uint64_t one = 1;
    for (uint32_t t = 0; rt.wake && t < SHM_SEG_WORKERS; t++) {
        if (!(rt.wake & (UINT64_C(1) << t)))
            continue;
        rt.wake &= ~(UINT64_C(1) << t);
        if (write(rt.efds[t], &one, sizeof(one)) == -1 && errno != EAGAIN)
            log_msg(LOG_ERR, "eventfd write for worker %u failed: %s", t, strerror(errno));
    }
}

static uint64_t route_running_workers(struct worker *w)
{
    uint64_t mask = 0;
    for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++) {
        uint32_t st = atomic_load_explicit(&shm_seg_worker(w->seg, i)->state,
                                           memory_order_relaxed);
        if (st == SHM_SEG_WORKER_RUNNING || st == SHM_SEG_WORKER_STARTING)
            mask |= UINT64_C(1) << i;
    }
    return mask | (UINT64_C(1) << w->id);
}

/* ---- fan-out ---- */

/* Builds the msg frame for encoding enc into rt.frame[enc] once per delivery. */
static struct block *route_frame(const struct envelope_msg *m, enum envelope_encoding enc,
                                 enum envelope_encoding src, const uint8_t *data, size_t len)
{
    struct buf *b = &rt.frame[enc];
    b->len = 0;
    if (envelope_encode_msg(b, enc, m, src, data, len) < 0)
        return NULL;
    uint8_t hdr[14];
    size_t hlen = ws_frame_header(hdr, enc == ENVELOPE_MSGPACK ? WS_OP_BINARY : WS_OP_TEXT,
                                  true, false, b->len, NULL);
    struct block *blk = block_new(hlen + b->len);
    if (blk == NULL)
        return NULL;
    memcpy(blk->data, hdr, hlen);
    memcpy(blk->data + hlen, b->data, b->len);
    return blk;
}

struct fanout {
    struct envelope_msg m;
    enum envelope_encoding src;
    const uint8_t *data;
    size_t len;
    struct block *blk[2];
    bool failed[2];
    uint32_t delivered;
};

/*
 * The live output queued on c: its output queue less what replays may still have in it.
 * A replay step starts only below ROUTE_REPLAY_LOW queued bytes and records what it
 * queued, so the queue holds at most that much more replay than replay_bytes.
 */
static uint64_t route_live_bytes(const struct conn *c)
{
    uint64_t replay = c->app->replay_bytes ? c->app->replay_bytes + ROUTE_REPLAY_LOW : 0;
    return c->out.bytes > replay ? c->out.bytes - replay : 0;
}

/* Queues the message on c (live traffic: past output_queue_limit the peer is slow). */
static void fanout_to(struct worker *w, struct fanout *f, struct conn *c, bool live)
{
    if (c->phase != CONN_WS || c->close_sent || c->app == NULL || !c->app->authed) {
        /* the target is going away: it recovers the message on resume */
        SHM_SEG_STAT_ADD(shm_seg_worker(w->seg, (uint32_t)w->id), delivery_failures, 1);
        return;
    }
    enum envelope_encoding enc = conn_enc(c);
    if (f->blk[enc] == NULL && !f->failed[enc]) {
        f->blk[enc] = route_frame(&f->m, enc, f->src, f->data, f->len);
        f->failed[enc] = f->blk[enc] == NULL;
    }
    if (f->blk[enc] == NULL)
        return;
    if (conn_send_block(w, c, f->blk[enc]) < 0)
        return;
    f->delivered++;
    table_conn_count_msg_out(w, c);
    SHM_SEG_STAT_ADD(shm_seg_worker(w->seg, (uint32_t)w->id), deliveries, 1);
    if (live && route_live_bytes(c) > w->cfg->output_queue_limit) {
        log_msg(LOG_NOTICE, "conn=%llx user=%s slow consumer: %llu bytes queued",
                (unsigned long long)c->id, route_user_of(c),
                (unsigned long long)c->out.bytes);
        conn_ws_close(w, c, ROUTE_SLOW_CLOSE, "slow consumer");
    }
}

static void fanout_done(struct fanout *f)
{
    for (int i = 0; i < 2; i++) {
        if (f->blk[i])
            block_unref(f->blk[i]);
    }
}

static void fanout_init(struct fanout *f, const struct delivery_view *v, const char *ch,
                        size_t ch_len)
{
    memset(f, 0, sizeof(*f));
    const struct delivery_hdr *h = v->hdr;
    f->m = (struct envelope_msg){
        .ch = ch,
        .ch_len = ch_len,
        .has_off = h->type != DELIVERY_BROADCAST,
        .off = h->offset,
        .mid = v->mid,
        .mid_len = h->mid_len,
        .from = v->from,
        .from_len = h->from_len,
        .ts_ms = (uint64_t)h->ts_ms,
        .sys = (h->flags & DELIVERY_F_SYS) != 0,
    };
    f->src = h->data_enc ? ENVELOPE_MSGPACK : ENVELOPE_JSON;
    f->data = v->data;
    f->len = h->data_len;
}

static void route_deliver_group_now(struct worker *w, const struct delivery_view *v)
{
    struct lgroup *g = strmap_get(&rt.groups, v->ch, v->hdr->ch_len);
    if (g == NULL)
        return;
    struct fanout f;
    fanout_init(&f, v, v->ch, v->hdr->ch_len);
    for (uint32_t i = 0; i < g->n; i++) {
        struct lmember *m = &g->members[i];
        if (m->last_off == UINT64_MAX || v->hdr->offset <= m->last_off)
            continue; /* not positioned yet, or already delivered by a replay */
        m->last_off = v->hdr->offset;
        if (m->c->id != v->hdr->exclude)
            fanout_to(w, &f, m->c, true);
    }
    fanout_done(&f);
}

static void route_deliver_user_now(struct worker *w, const struct delivery_view *v)
{
    struct luser *u = strmap_get(&rt.users, v->ch, v->hdr->ch_len);
    if (u == NULL)
        return;
    struct fanout f;
    fanout_init(&f, v, "@", 1);
    for (uint32_t i = 0; i < u->n; i++) {
        if (u->last_off[i] == UINT64_MAX || v->hdr->offset <= u->last_off[i])
            continue;
        u->last_off[i] = v->hdr->offset;
        fanout_to(w, &f, u->conns[i], true);
    }
    fanout_done(&f);
}

static void route_deliver_broadcast(struct worker *w, const struct delivery_view *v)
{
    struct fanout f;
    fanout_init(&f, v, "*", 1);
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (c->route == CONN_ROUTE_APP && c->phase == CONN_WS && c->app && c->app->authed &&
            c->id != v->hdr->exclude)
            fanout_to(w, &f, c, true);
    }
    fanout_done(&f);
}

typedef void (*route_deliver_fn)(struct worker *w, const struct delivery_view *v);

static void reorder_fini(struct reorder *ro)
{
    for (uint32_t i = 0; i < ro->n; i++)
        block_unref(ro->items[i].rec);
    free(ro->items);
    memset(ro, 0, sizeof(*ro));
}

/* A member was positioned at offset pos: the channel continues at pos + 1. */
static void reorder_position(struct reorder *ro, uint64_t pos)
{
    if (ro->next == 0 || ro->next <= pos)
        ro->next = pos + 1;
}

static void reorder_deliver_held(struct worker *w, struct reorder *ro, route_deliver_fn fn,
                                 bool all)
{
    if (ro->n == 0)
        return;
    uint32_t i = 0;
    for (; i < ro->n && (all || ro->items[i].off <= ro->next); i++) {
        struct delivery_view v;
        struct block *rec = ro->items[i].rec;
        if (ro->items[i].off >= ro->next)
            ro->next = ro->items[i].off + 1;
        if (delivery_view(rec->data, rec->len, &v) == 0)
            fn(w, &v);
        block_unref(rec);
    }
    memmove(ro->items, ro->items + i, (ro->n - i) * sizeof(*ro->items));
    ro->n -= i;
    ro->deadline_ms = ro->n ? ro->deadline_ms : 0;
}

/* Holds a copy of a record that arrived ahead of a gap. Returns 0 or WSD_ENOMEM. */
static int reorder_hold(struct worker *w, struct reorder *ro, const struct delivery_view *v,
                        size_t len)
{
    if (ro->n == ro->cap) {
        uint32_t cap = ro->cap ? ro->cap * 2 : 8;
        struct held *items = realloc(ro->items, cap * sizeof(*items));
        if (items == NULL)
            return WSD_ENOMEM;
        ro->items = items;
        ro->cap = cap;
    }
    struct block *rec = block_new(len);
    if (rec == NULL)
        return WSD_ENOMEM;
    memcpy(rec->data, v->hdr, len);
    uint32_t i = ro->n;
    while (i > 0 && ro->items[i - 1].off > v->hdr->offset)
        i--;
    memmove(ro->items + i + 1, ro->items + i, (ro->n - i) * sizeof(*ro->items));
    ro->items[i] = (struct held){v->hdr->offset, rec};
    ro->n++;
    if (ro->deadline_ms == 0)
        ro->deadline_ms = w->now_ms + ROUTE_REORDER_MS;
    rt.held++;
    return 0;
}

/* Delivers v in channel order: at once when it is the next offset, else after the gap. */
static void reorder_deliver(struct worker *w, struct reorder *ro, const struct delivery_view *v,
                            size_t len, route_deliver_fn fn)
{
    uint64_t off = v->hdr->offset;
    if (ro->next == 0 || off <= ro->next) {
        fn(w, v);
        if (ro->next != 0 && off == ro->next) {
            ro->next = off + 1;
            reorder_deliver_held(w, ro, fn, false);
        }
        return;
    }
    if (reorder_hold(w, ro, v, len) < 0)
        fn(w, v); /* no memory to wait: deliver with the gap */
}

static void route_kick_user(struct worker *w, const struct delivery_view *v)
{
    struct luser *u = strmap_get(&rt.users, v->ch, v->hdr->ch_len);
    for (uint32_t i = 0; u && i < u->n; i++)
        conn_ws_close(w, u->conns[i], v->hdr->close_code, "closed by the operator");
}

/* A newer connection resumed this session: the older one is closed with 4011. */
static void route_kick_session(struct worker *w, const struct delivery_view *v)
{
    for (struct conn *c = w->conns; c; c = c->next) {
        struct app_conn *ac = c->app;
        if (ac == NULL || c->id == v->hdr->exclude || c->close_sent ||
            strlen(ac->session) != v->hdr->ch_len ||
            memcmp(ac->session, v->ch, v->hdr->ch_len) != 0)
            continue;
        ac->taken_over = true;
        conn_ws_close(w, c, v->hdr->close_code, "session taken over");
    }
}

static void route_presence_answer(struct worker *w, const struct delivery_view *v);
static void route_presence_collect(struct worker *w, const struct delivery_view *v);
static void route_system_request(struct worker *w, const struct delivery_view *v);

static void route_dispatch(struct worker *w, const struct delivery_view *v)
{
    switch (v->hdr->type) {
    case DELIVERY_GROUP: {
        struct lgroup *g = strmap_get(&rt.groups, v->ch, v->hdr->ch_len);
        if (g)
            reorder_deliver(w, &g->ro, v, v->len, route_deliver_group_now);
        break;
    }
    case DELIVERY_USER: {
        struct luser *u = strmap_get(&rt.users, v->ch, v->hdr->ch_len);
        if (u)
            reorder_deliver(w, &u->ro, v, v->len, route_deliver_user_now);
        break;
    }
    case DELIVERY_BROADCAST: route_deliver_broadcast(w, v); break;
    case DELIVERY_KICK_USER: route_kick_user(w, v); break;
    case DELIVERY_PRESENCE_Q: route_presence_answer(w, v); break;
    case DELIVERY_PRESENCE_A: route_presence_collect(w, v); break;
    case DELIVERY_SYSTEM: route_system_request(w, v); break;
    case DELIVERY_KICK_SESSION: route_kick_session(w, v); break;
    default: break;
    }
}

void route_on_ring(struct worker *w)
{
    uint64_t n;
    while (read(rt.efds[w->id], &n, sizeof(n)) == (ssize_t)sizeof(n))
        ;
    struct ring *r = shm_seg_ring(w->seg, (uint32_t)w->id);
    struct ring_msg msg;
    while (ring_peek(r, &msg) == 0) {
        struct delivery_view v;
        if (delivery_view(msg.data, msg.len, &v) == 0) {
            v.producer = msg.producer;
            route_dispatch(w, &v);
        }
        else
            log_msg(LOG_ERR, "dropped a malformed ring record from producer %u", msg.producer);
        ring_pop(r);
    }
}

static struct route_op *route_op_new(struct conn *c, enum route_op_type type,
                                     const struct envelope_id *id);

/* ---- local indexes ---- */

int route_user_attach(struct worker *w, struct conn *c)
{
    struct app_conn *ac = c->app;
    struct names_info info;
    bool first;
    int rc = names_add(w->seg->users, ac->user, ac->user_len, (uint32_t)w->id, &info, &first);
    if (rc < 0)
        return rc;
    struct luser *u = strmap_get(&rt.users, ac->user, ac->user_len);
    if (u == NULL) {
        u = calloc(1, sizeof(*u));
        if (u == NULL || strmap_put(&rt.users, ac->user, ac->user_len, u) < 0) {
            free(u);
            goto out_remove;
        }
    }
    if (u->n == u->cap) {
        uint32_t cap = u->cap ? u->cap * 2 : 2;
        struct conn **cs = realloc(u->conns, cap * sizeof(*cs));
        if (cs)
            u->conns = cs;
        uint64_t *offs = cs ? realloc(u->last_off, cap * sizeof(*offs)) : NULL;
        if (offs == NULL)
            goto out_remove;
        u->last_off = offs;
        u->cap = cap;
    }
    ac->user_pos = u->n;
    u->conns[u->n] = c;
    u->last_off[u->n] = UINT64_MAX; /* positioned by the backlog read */
    u->n++;
    table_conn_set_user(w, c, info.index);
    return 0;

out_remove:
    names_remove(w->seg->users, ac->user, ac->user_len, (uint32_t)w->id, &first);
    return WSD_ENOMEM;
}

void route_user_detach(struct worker *w, struct conn *c)
{
    struct app_conn *ac = c->app;
    if (ac->user_pos == UINT32_MAX)
        return;
    struct luser *u = strmap_get(&rt.users, ac->user, ac->user_len);
    if (u != NULL) {
        uint32_t pos = ac->user_pos, last = u->n - 1;
        u->conns[pos] = u->conns[last];
        u->last_off[pos] = u->last_off[last];
        u->conns[pos]->app->user_pos = pos;
        u->n--;
        if (u->n == 0) {
            strmap_del(&rt.users, ac->user, ac->user_len);
            reorder_fini(&u->ro);
            free(u->conns);
            free(u->last_off);
            free(u);
        }
    }
    bool last_on_worker;
    names_remove(w->seg->users, ac->user, ac->user_len, (uint32_t)w->id, &last_on_worker);
    ac->user_pos = UINT32_MAX;
}

static struct app_membership *route_membership(struct conn *c, const char *group, size_t len)
{
    struct app_conn *ac = c->app;
    for (uint32_t i = 0; i < ac->num_groups; i++) {
        struct lgroup *g = ac->groups[i].group;
        if (g->len == len && memcmp(g->name, group, len) == 0)
            return &ac->groups[i];
    }
    return NULL;
}

/* Adds c to the local group (created on demand) and the shared table. */
static int route_member_add(struct worker *w, struct conn *c, const char *group, size_t len)
{
    struct app_conn *ac = c->app;
    struct lgroup *g = strmap_get(&rt.groups, group, len);
    int rc = WSD_ENOMEM;
    if (ac->num_groups == ac->cap_groups) {
        uint32_t cap = ac->cap_groups ? ac->cap_groups * 2 : 4;
        struct app_membership *ms = realloc(ac->groups, cap * sizeof(*ms));
        if (ms == NULL)
            return WSD_ENOMEM;
        ac->groups = ms;
        ac->cap_groups = cap;
    }
    bool created = g == NULL;
    if (created) {
        g = calloc(1, sizeof(*g));
        if (g == NULL)
            return WSD_ENOMEM;
        memcpy(g->name, group, len);
        g->len = (uint8_t)len;
    }
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 8;
        struct lmember *ms = realloc(g->members, cap * sizeof(*ms));
        if (ms == NULL)
            goto out_free;
        g->members = ms;
        g->cap = cap;
    }
    bool first;
    rc = names_add(w->seg->groups, group, len, (uint32_t)w->id, NULL, &first);
    if (rc < 0)
        goto out_free;
    if (created && strmap_put(&rt.groups, g->name, g->len, g) < 0) {
        names_remove(w->seg->groups, group, len, (uint32_t)w->id, &first);
        rc = WSD_ENOMEM;
        goto out_free;
    }
    g->members[g->n] = (struct lmember){c, UINT64_MAX};
    ac->groups[ac->num_groups++] = (struct app_membership){g, g->n};
    g->n++;
    return 0;

out_free:
    if (created) {
        free(g->members);
        free(g);
    }
    return rc;
}

static void route_replay_forget(struct app_conn *ac, const char *group, size_t len);

static void route_member_remove(struct worker *w, struct conn *c, struct app_membership *m)
{
    struct app_conn *ac = c->app;
    struct lgroup *g = m->group;
    route_replay_forget(ac, g->name, g->len);
    uint32_t pos = m->pos, last = g->n - 1;
    g->members[pos] = g->members[last];
    g->n--;
    if (pos != last) {
        /* the moved member's back pointer */
        struct app_conn *mac = g->members[pos].c->app;
        for (uint32_t i = 0; i < mac->num_groups; i++) {
            if (mac->groups[i].group == g)
                mac->groups[i].pos = pos;
        }
    }
    bool last_on_worker;
    names_remove(w->seg->groups, g->name, g->len, (uint32_t)w->id, &last_on_worker);
    if (g->n == 0) {
        strmap_del(&rt.groups, g->name, g->len);
        reorder_fini(&g->ro);
        free(g->members);
        free(g);
    }
    *m = ac->groups[--ac->num_groups];
}

int route_leave(struct worker *w, struct conn *c, const char *group, size_t len)
{
    struct app_membership *m = route_membership(c, group, len);
    if (m == NULL)
        return WSD_ENOENT;
    route_member_remove(w, c, m);
    route_op_new(c, ROUTE_OP_SESSION, NULL); /* best effort: the record follows at flush */
    return 0;
}

void route_leave_all(struct worker *w, struct conn *c)
{
    while (c->app->num_groups > 0)
        route_member_remove(w, c, &c->app->groups[c->app->num_groups - 1]);
}

/* ---- requests queued for the batch ---- */

static struct route_op *route_op_new(struct conn *c, enum route_op_type type,
                                     const struct envelope_id *id)
{
    struct route_op *ops = route_grow(rt.ops, rt.num_ops, &rt.cap_ops, sizeof(*ops), 64);
    if (ops == NULL)
        return NULL;
    rt.ops = ops;
    struct route_op *op = &rt.ops[rt.num_ops++];
    memset(op, 0, sizeof(*op));
    op->type = type;
    op->c = c;
    op->conn_id = c ? c->id : 0;
    op->reply_enc = c ? (uint8_t)app_enc(c) : ENVELOPE_JSON;
    if (id)
        op->id = *id;
    else
        op->id.kind = ENVELOPE_ID_NONE;
    return op;
}

static void route_copy(char *out, size_t cap, const char *s, size_t len)
{
    len = WSD_MIN(len, cap - 1);
    memcpy(out, s, len);
    out[len] = '\0';
}

/* Copies the envelope's mid (or makes one) and data into op. Returns 0 or WSD_ENOMEM. */
static int route_op_message(struct route_op *op, const struct envelope *env)
{
    size_t len = 0;
    if (env->mid.raw && envelope_str_copy(&env->mid, op->mid, STORE_MID_MAX, &len) == 0) {
        op->mid[len] = '\0';
    } else {
        snprintf(op->mid, sizeof(op->mid), "%s-%llx", rt.mid_prefix,
                 (unsigned long long)++rt.mid_counter);
    }
    op->data_enc = (uint8_t)env->data.enc;
    op->data_off = rt.data.len;
    op->data_len = env->data.len;
    return buf_append(&rt.data, env->data.p, env->data.len);
}

void route_publish(struct worker *w, struct conn *c, const char *group, size_t len,
                   const struct envelope *env)
{
    struct route_op *op = route_op_new(c, ROUTE_OP_PUBLISH, &env->id);
    if (op == NULL || route_op_message(op, env) < 0) {
        if (op)
            rt.num_ops--;
        app_error(w, c, &env->id, "internal", "out of memory");
        return;
    }
    route_copy(op->target, sizeof(op->target), group, len);
}

void route_send(struct worker *w, struct conn *c, const char *user, size_t len,
                const struct envelope *env)
{
    struct route_op *op = route_op_new(c, ROUTE_OP_SEND, &env->id);
    if (op == NULL || route_op_message(op, env) < 0) {
        if (op)
            rt.num_ops--;
        app_error(w, c, &env->id, "internal", "out of memory");
        return;
    }
    route_copy(op->target, sizeof(op->target), user, len);
}

void route_ack(struct worker *w, struct conn *c, uint64_t offset, const struct envelope_id *id)
{
    struct route_op *op = route_op_new(c, ROUTE_OP_ACK, id);
    if (op == NULL) {
        app_error(w, c, id, "internal", "out of memory");
        return;
    }
    op->offset = offset;
}

void route_join(struct worker *w, struct conn *c, const char *group, size_t len,
                const struct envelope *env)
{
    struct app_membership *m = route_membership(c, group, len);
    if (m == NULL) {
        int rc = route_member_add(w, c, group, len);
        if (rc < 0) {
            app_error(w, c, &env->id, rc == WSD_ENOSPC ? "unavailable" : "internal",
                      rc == WSD_ENOSPC ? "group table full" : "cannot join");
            return;
        }
    }
    struct route_op *op = route_op_new(c, ROUTE_OP_JOIN, &env->id);
    if (op == NULL) {
        app_error(w, c, &env->id, "internal", "out of memory");
        return;
    }
    route_copy(op->target, sizeof(op->target), group, len);
    if (env->since.type != ENVELOPE_T_NONE) {
        struct envelope_since since;
        if (envelope_since_read(&env->since, &since) == 0) {
            op->has_since = true;
            op->offset = since.offset;
            size_t elen = 0;
            if (since.epoch.raw &&
                envelope_str_copy(&since.epoch, op->since_epoch, ENVELOPE_MAX_EPOCH_LEN,
                                  &elen) == 0)
                op->since_epoch[elen] = '\0';
        }
    }
}

/* Copies auth's since map into op. Returns 0 or WSD_ENOMEM; a malformed map is ignored. */
static int route_copy_since(struct route_op *op, const struct envelope_value *since)
{
    if (since == NULL || since->type != ENVELOPE_T_OBJECT)
        return 0;
    struct envelope_since_iter it;
    struct envelope_str ch;
    struct envelope_since pos;
    envelope_since_iter_init(&it, since);
    while (envelope_since_iter_next(&it, &ch, &pos) > 0) {
        struct route_since *arr = realloc(op->since, (op->num_since + 1) * sizeof(*arr));
        if (arr == NULL)
            return WSD_ENOMEM;
        op->since = arr;
        struct route_since *e = &arr[op->num_since];
        size_t len = 0;
        if (envelope_str_copy(&ch, e->ch, sizeof(e->ch) - 1, &len) < 0)
            continue;
        e->ch[len] = '\0';
        e->offset = pos.offset;
        len = 0;
        if (pos.epoch.raw == NULL ||
            envelope_str_copy(&pos.epoch, e->epoch, sizeof(e->epoch) - 1, &len) < 0)
            len = 0;
        e->epoch[len] = '\0';
        op->num_since++;
    }
    return 0;
}

void route_login(struct worker *w, struct conn *c, const char *resume,
                 const struct envelope_value *since, const struct envelope_id *id)
{
    struct route_op *op = route_op_new(c, ROUTE_OP_LOGIN, id);
    if (op == NULL || route_copy_since(op, since) < 0) {
        if (op) {
            free(op->since);
            rt.num_ops--;
        }
        app_error(w, c, id, "internal", "out of memory");
        conn_ws_close(w, c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (resume)
        route_copy(op->target, sizeof(op->target), resume, strlen(resume));
}

void route_broadcast(struct worker *w, struct conn *c, const struct envelope *env)
{
    struct delivery_hdr h = {
        .type = DELIVERY_BROADCAST,
        .data_enc = (uint8_t)env->data.enc,
        .data_len = env->data.len,
        .ts_ms = clock_wall_ms(),
        .exclude = c->id,
    };
    char mid[STORE_MID_MAX + 1];
    size_t mid_len = 0;
    if (!env->mid.raw || envelope_str_copy(&env->mid, mid, STORE_MID_MAX, &mid_len) < 0)
        mid_len = (size_t)snprintf(mid, sizeof(mid), "%s-%llx", rt.mid_prefix,
                                   (unsigned long long)++rt.mid_counter);
    h.mid_len = (uint16_t)mid_len;
    h.from_len = c->app->user_len;
    route_push(w, route_running_workers(w), &h, "", mid, c->app->user, env->data.p);
    uint32_t audience = 0;
    for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++)
        audience += atomic_load_explicit(&shm_seg_worker(w->seg, i)->app_connections,
                                         memory_order_relaxed);
    struct envelope_writer wr;
    struct buf *b = &w->app_out;
    b->len = 0;
    envelope_writer_init(&wr, b, app_enc(c));
    envelope_w_reply_begin(&wr, &env->id, 1);
    envelope_w_key(&wr, "delivered");
    envelope_w_uint(&wr, audience > 0 ? audience - 1 : 0);
    envelope_w_map_end(&wr);
    if (envelope_writer_finish(&wr) == 0)
        app_send_enc(w, c, app_enc(c), b);
}

/* ---- the batch ---- */

static int route_session_save(struct worker *w, struct conn *c, int64_t ttl_ms);

struct replay_ctx {
    struct worker *w;
    struct conn *c;
    const char *ch;  /* the msg "ch": group name or "@" */
    uint64_t upto;   /* the position read in the batch: later ones come live */
    uint64_t last;
    uint32_t count;
    uint64_t bytes;  /* queued so far */
    uint64_t budget; /* stop once this much is queued */
    bool full;       /* stopped at the budget: more may follow */
    bool past;       /* reached a message after upto */
};

static int route_replay_one(void *arg, const struct store_msg *msg)
{
    struct replay_ctx *x = arg;
    if (msg->offset > x->upto) {
        x->past = true;
        return 1; /* appended after the position was read (Redis): it comes live */
    }
    struct envelope_msg m = {
        .ch = x->ch,
        .ch_len = strlen(x->ch),
        .has_off = true,
        .off = msg->offset,
        .mid = msg->mid,
        .mid_len = strlen(msg->mid),
        .from = msg->from,
        .from_len = strlen(msg->from),
        .ts_ms = (uint64_t)msg->ts_ms,
        .sys = (msg->flags & STORE_MSG_SYS) != 0,
    };
    struct buf *b = &x->w->app_out;
    b->len = 0;
    enum envelope_encoding enc = conn_enc(x->c);
    if (envelope_encode_msg(b, enc, &m, msg->encoding ? ENVELOPE_MSGPACK : ENVELOPE_JSON,
                            msg->data, msg->data_len) == 0)
        app_send_enc(x->w, x->c, enc, b);
    x->last = msg->offset;
    x->count++;
    x->bytes += b->len;
    if (x->bytes >= x->budget) {
        x->full = true;
        return 1;
    }
    return x->c->phase == CONN_DEAD ? 1 : 0;
}

static int route_first_one(void *arg, const struct store_msg *msg)
{
    *(uint64_t *)arg = msg->offset;
    return 1;
}

/*
 * True when history still holds every message of channel after `after` up to latest:
 * the first message a replay would bring (expired ones are skipped) is after + 1.
 */
static bool route_gap_covered(const char *channel, uint64_t after, uint64_t latest)
{
    if (after > latest)
        return false;
    if (after == latest)
        return true;
    uint64_t first = 0;
    store_read(rt.store, channel, after, 1, clock_wall_ms(), route_first_one, &first);
    return first == after + 1;
}

/* ---- paced replays ---- */

/* Puts c on the list route_replay_schedule() goes through. Returns 0 or WSD_ENOMEM. */
static int route_replaying_add(struct conn *c)
{
    for (size_t i = 0; i < rt.num_replaying; i++) {
        if (rt.replaying[i] == c)
            return 0;
    }
    struct conn **r = route_grow(rt.replaying, rt.num_replaying, &rt.cap_replaying, sizeof(*r), 16);
    if (r == NULL)
        return WSD_ENOMEM;
    rt.replaying = r;
    rt.replaying[rt.num_replaying++] = c;
    return 0;
}

static struct route_replay *route_replay_find(struct app_conn *ac, bool personal,
                                              const char *group)
{
    for (struct route_replay *r = ac->replay; r; r = r->next) {
        if (r->personal == personal && (personal || strcmp(r->group, group) == 0))
            return r;
    }
    return NULL;
}

/*
 * Adds a replay of the personal channel or of group to c, from after on (one already
 * waiting for the same channel starts again from there, keeping its turn). Returns 0 or
 * WSD_ENOMEM.
 */
static int route_replay_add(struct conn *c, bool personal, const char *group, uint64_t after,
                            uint64_t keep)
{
    struct app_conn *ac = c->app;
    struct route_replay *r = route_replay_find(ac, personal, group);
    if (r != NULL) {
        r->after = after;
        r->keep = WSD_MAX(r->keep, keep);
        return 0;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || route_replaying_add(c) < 0) {
        free(r);
        return WSD_ENOMEM;
    }
    r->personal = personal;
    if (!personal)
        route_copy(r->group, sizeof(r->group), group, strlen(group));
    r->after = after;
    r->keep = keep;
    struct route_replay **tail = &ac->replay;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
    return 0;
}

static void route_replay_pop(struct app_conn *ac)
{
    struct route_replay *r = ac->replay;
    ac->replay = r->next;
    free(r);
}

/* Drops the replay of group from c (it left the group). */
static void route_replay_forget(struct app_conn *ac, const char *group, size_t len)
{
    for (struct route_replay **p = &ac->replay; *p; p = &(*p)->next) {
        struct route_replay *r = *p;
        if (!r->personal && strlen(r->group) == len && memcmp(r->group, group, len) == 0) {
            *p = r->next;
            free(r);
            return;
        }
    }
}

/* Where replay r writes: its channel, the msg "ch", the membership's last offset and the
 * channel's reorder state. Returns the last-offset slot, NULL when r has no membership. */
static uint64_t *route_replay_target(struct conn *c, const struct route_replay *r,
                                     char *channel, const char **ch, struct reorder **ro)
{
    struct app_conn *ac = c->app;
    if (r->personal) {
        struct luser *u = ac->user_pos == UINT32_MAX
                              ? NULL
                              : strmap_get(&rt.users, ac->user, ac->user_len);
        if (u == NULL)
            return NULL;
        route_channel_name(channel, ac->user);
        *ch = "@";
        *ro = &u->ro;
        return &u->last_off[ac->user_pos];
    }
    struct app_membership *m = route_membership(c, r->group, strlen(r->group));
    if (m == NULL)
        return NULL;
    route_copy(channel, STORE_CHANNEL_MAX + 1, r->group, strlen(r->group));
    *ch = m->group->name;
    *ro = &m->group->ro;
    return &m->group->members[m->pos].last_off;
}

/*
 * Runs c's replays inside the batch while its output queue is short: reads each channel
 * from where it stopped and queues what the step's budget allows. A channel read to its
 * latest offset (the position read now, in this batch) is positioned there, and live
 * records take over from the next one; then the next channel's replay starts.
 */
static void route_replay_run(struct worker *w, struct conn *c)
{
    struct app_conn *ac = c->app;
    uint64_t queued = 0;
    bool stalled = false;
    conn_cork(w, c); /* small messages leave together */
    while (ac->replay && c->phase == CONN_WS && !c->close_sent &&
           c->out.bytes < ROUTE_REPLAY_LOW && queued < ROUTE_REPLAY_STEP &&
           rt.replay_budget > 0) {
        struct route_replay *r = ac->replay;
        char channel[STORE_CHANNEL_MAX + 1];
        const char *ch;
        struct reorder *ro;
        uint64_t *last_off = route_replay_target(c, r, channel, &ch, &ro);
        if (last_off == NULL) {
            route_replay_pop(ac);
            continue;
        }
        struct store_channel_info info;
        if (store_channel_info(rt.store, channel, &info) < 0) {
            stalled = true; /* store unavailable: a later batch tries again */
            break;
        }
        uint64_t budget = WSD_MIN(ROUTE_REPLAY_STEP - queued, rt.replay_budget);
        struct replay_ctx x = {w, c, ch, info.last_offset, r->after, 0, 0, budget, false, false};
        int rc = 0;
        if (r->after < info.last_offset)
            rc = store_read(rt.store, channel, r->after, ROUTE_REPLAY_READ, clock_wall_ms(),
                            route_replay_one, &x);
        r->after = x.last;
        queued += x.bytes;
        rt.replay_budget -= WSD_MIN(rt.replay_budget, x.bytes);
        if (rc < 0) {
            stalled = true; /* the read failed part way: go on from x.last later */
            break;
        }
        if (x.full || (x.count == ROUTE_REPLAY_READ && !x.past && x.last < info.last_offset))
            continue; /* more to read: while the queue and the budgets allow */
        /* Read to the latest offset: live records carry on after it. */
        uint64_t pos = WSD_MAX(WSD_MAX(info.last_offset, r->after), r->keep);
        *last_off = pos;
        reorder_position(ro, pos);
        route_replay_pop(ac);
    }
    conn_uncork(w);
    if (queued > 0)
        ac->replay_bytes = queued;
    /* The socket took the step and wants more: nothing else would wake the loop for it. */
    if (ac->replay && !stalled && c->phase == CONN_WS && c->out.bytes < ROUTE_REPLAY_LOW)
        w->again = true;
}

/*
 * Before the batch: a REPLAY op for every connection whose replays can go on (its queue
 * is short). A connection leaves the list once it has no replay and its queue has drained.
 */
static void route_replay_schedule(void)
{
    rt.replay_budget = ROUTE_REPLAY_ITERATION;
    for (size_t i = 0; i < rt.num_replaying;) {
        struct conn *c = rt.replaying[i]; /* allocated: route_replay_cancel() takes it off */
        bool gone = c->phase == CONN_DEAD || c->close_sent;
        if (gone || (c->app->replay == NULL && c->out.bytes == 0)) {
            c->app->replay_bytes = 0;
            rt.replaying[i] = rt.replaying[--rt.num_replaying];
            continue;
        }
        if (c->app->replay && c->out.bytes < ROUTE_REPLAY_LOW)
            route_op_new(c, ROUTE_OP_REPLAY, NULL);
        i++;
    }
}

/* c's replays are over: the connection is going away (its memory goes back to the
 * worker's pool, so the list must not keep it). */
void route_replay_cancel(struct conn *c)
{
    while (c->app->replay)
        route_replay_pop(c->app);
    for (size_t i = 0; i < rt.num_replaying; i++) {
        if (rt.replaying[i] == c) {
            rt.replaying[i] = rt.replaying[--rt.num_replaying];
            break;
        }
    }
}

/* The place a membership waiting for its replay has reached, for the session record. */
static uint64_t route_replay_place(struct app_conn *ac, const char *group)
{
    struct route_replay *r = route_replay_find(ac, false, group);
    return r ? WSD_MAX(r->after, r->keep) : 0;
}

/*
 * Starts replaying a channel to c after `after` (a group when group is not NULL, else
 * the personal channel), inside the batch; the first step runs at once. keep: a place
 * the membership had already reached. On no memory the connection closes with 1011 (its
 * session resumes), since the channel would otherwise have a gap.
 */
static void route_replay_start(struct worker *w, struct conn *c, const char *group,
                               uint64_t after, uint64_t keep)
{
    if (route_replay_add(c, group == NULL, group ? group : "", after, keep) < 0) {
        log_msg(LOG_WARN, "conn=%llx out of memory starting a replay",
                (unsigned long long)c->id);
        conn_ws_close(w, c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (c->app->replay != NULL && c->app->replay->next == NULL)
        route_replay_run(w, c);
}

static void route_join_reply(struct worker *w, struct route_op *op,
                             const struct store_channel_info *info, bool recovered)
{
    struct envelope_writer wr;
    struct buf *b = &w->app_out;
    b->len = 0;
    envelope_writer_init(&wr, b, op->reply_enc);
    envelope_w_reply_begin(&wr, &op->id, op->has_since ? 4 : 3);
    envelope_w_key(&wr, "group");
    envelope_w_cstr(&wr, op->target);
    envelope_w_key(&wr, "offset");
    envelope_w_uint(&wr, info->last_offset);
    envelope_w_key(&wr, "epoch");
    envelope_w_cstr(&wr, info->epoch);
    if (op->has_since) {
        envelope_w_key(&wr, "recovered");
        envelope_w_bool(&wr, recovered);
    }
    envelope_w_map_end(&wr);
    if (envelope_writer_finish(&wr) == 0)
        route_reply(w, op->c, op->conn_id, op->reply_enc, b);
}

static void route_run_join(struct worker *w, struct route_op *op)
{
    struct conn *c = op->c;
    struct app_membership *m = route_membership(c, op->target, strlen(op->target));
    struct store_channel_info info;
    if (store_channel_info(rt.store, op->target, &info) < 0) {
        if (m)
            route_member_remove(w, c, m); /* not route_leave: no new op during the batch */
        route_error(w, op, "unavailable", "store unavailable");
        return;
    }
    if (m == NULL) {
        op->has_since = false; /* left again within the same iteration: answer only */
        route_join_reply(w, op, &info, false);
        return;
    }
    struct lmember *lm = &m->group->members[m->pos];
    bool epoch_ok = op->since_epoch[0] == '\0' || strcmp(op->since_epoch, info.epoch) == 0;
    bool recovered = epoch_ok && route_gap_covered(op->target, op->offset, info.last_offset);
    route_join_reply(w, op, &info, recovered);
    struct route_replay *waiting = route_replay_find(c->app, false, op->target);
    if (op->has_since && epoch_ok && op->offset < info.last_offset) {
        uint64_t keep = lm->last_off != UINT64_MAX ? lm->last_off : 0;
        lm->last_off = UINT64_MAX; /* live records pass by until the replay has caught up */
        route_replay_start(w, c, op->target, op->offset, keep);
    } else if (waiting != NULL) {
        if (op->has_since && epoch_ok)
            waiting->after = op->offset; /* a replay under way positions the membership */
    } else {
        uint64_t pos = info.last_offset;
        if (lm->last_off != UINT64_MAX && lm->last_off > pos)
            pos = lm->last_off; /* joined before: keep its place */
        lm->last_off = pos;
        reorder_position(&m->group->ro, pos);
    }
    route_session_save(w, c, ROUTE_SESSION_OPEN_TTL_MS);
}

/* ---- sessions ---- */

/*
 * A session record: the user, then each group with the last offset written to the
 * connection: [u8 user_len][user][u16 n] n x {[u8 len][name][u64 offset]}.
 */
static int route_session_save(struct worker *w, struct conn *c, int64_t ttl_ms)
{
    struct app_conn *ac = c->app;
    if (ac == NULL || ac->anonymous || !ac->authed || ac->session[0] == '\0' ||
        w->cfg->session_ttl == 0 || ac->taken_over)
        return 0;
    struct buf *b = &rt.session;
    b->len = 0;
    uint8_t ulen = ac->user_len;
    uint16_t n = (uint16_t)WSD_MIN(ac->num_groups, (uint32_t)ROUTE_SESSION_GROUPS_MAX);
    int rc = buf_append(b, &ulen, 1);
    rc = rc ? rc : buf_append(b, ac->user, ulen);
    rc = rc ? rc : buf_append(b, &n, sizeof(n));
    for (uint16_t i = 0; rc == 0 && i < n; i++) {
        struct lgroup *g = ac->groups[i].group;
        uint64_t off = g->members[ac->groups[i].pos].last_off;
        if (off == UINT64_MAX)
            off = route_replay_place(ac, g->name); /* replaying, or 0 */
        rc = buf_append(b, &g->len, 1);
        rc = rc ? rc : buf_append(b, g->name, g->len);
        rc = rc ? rc : buf_append(b, &off, sizeof(off));
    }
    if (rc == 0)
        rc = store_session_put(rt.store, ac->session, b->data, b->len, clock_wall_ms() + ttl_ms);
    if (rc < 0)
        log_msg(LOG_WARN, "conn=%llx session %s not saved: %s", (unsigned long long)c->id,
                ac->session, wsd_strerror(rc));
    return rc;
}

/* Saves c's session as it is when the connection ends. */
void route_session_close(struct worker *w, struct conn *c)
{
    route_session_save(w, c, (int64_t)w->cfg->session_ttl * 1000);
}

struct session_group {
    char name[NAMES_NAME_MAX + 1];
    uint64_t offset;
};

/* Parses a session record of user. Returns the number of groups, or -1. */
static int route_session_parse(const uint8_t *p, size_t len, const struct app_conn *ac,
                               struct session_group *out, size_t cap)
{
    size_t pos = 0;
    if (len < 1 || p[0] != ac->user_len || len < 1u + p[0] + 2 ||
        memcmp(p + 1, ac->user, ac->user_len) != 0)
        return -1;
    pos = 1u + p[0];
    uint16_t n;
    memcpy(&n, p + pos, 2);
    pos += 2;
    size_t k = 0;
    for (uint16_t i = 0; i < n && k < cap; i++) {
        if (pos >= len || p[pos] == 0 || pos + 1 + p[pos] + 8 > len)
            return -1;
        uint8_t glen = p[pos];
        memcpy(out[k].name, p + pos + 1, glen);
        out[k].name[glen] = '\0';
        memcpy(&out[k].offset, p + pos + 1 + glen, 8);
        pos += 1u + glen + 8;
        k++;
    }
    return (int)k;
}

static const struct route_since *route_since_for(const struct route_op *op, const char *ch)
{
    for (size_t i = 0; i < op->num_since; i++) {
        if (strcmp(op->since[i].ch, ch) == 0)
            return &op->since[i];
    }
    return NULL;
}

/* The groups of a resumed session with their channel positions, for the welcome. */
struct resume_group {
    struct lgroup *group;
    uint32_t member_pos_unused;
    uint64_t from;     /* replay after this offset */
    bool replay;
    struct store_channel_info info;
};

/* Restores the session's groups on c; fills rg. Returns how many. */
static size_t route_restore_groups(struct worker *w, struct route_op *op,
                                   const struct session_group *sg, int n,
                                   struct resume_group *rg, bool *recovered)
{
    struct conn *c = op->c;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(sg[i].name);
        if (!app_may_join(w, c, sg[i].name, len))
            continue; /* the new token no longer allows it */
        if (route_membership(c, sg[i].name, len) == NULL &&
            route_member_add(w, c, sg[i].name, len) < 0)
            continue;
        struct resume_group *r = &rg[k];
        memset(r, 0, sizeof(*r));
        r->group = route_membership(c, sg[i].name, len)->group;
        if (store_channel_info(rt.store, sg[i].name, &r->info) < 0) {
            *recovered = false;
            continue;
        }
        const struct route_since *s = route_since_for(op, sg[i].name);
        bool epoch_ok = s == NULL || s->epoch[0] == '\0' || strcmp(s->epoch, r->info.epoch) == 0;
        r->from = s ? s->offset : sg[i].offset;
        r->replay = epoch_ok && r->from < r->info.last_offset;
        bool covered = epoch_ok && route_gap_covered(sg[i].name, r->from, r->info.last_offset);
        *recovered = *recovered && covered;
        k++;
    }
    return k;
}

static void route_send_welcome(struct worker *w, struct route_op *op, bool resumed,
                               bool recovered, const struct resume_group *rg, size_t n,
                               const struct store_channel_info *personal)
{
    struct conn *c = op->c;
    struct app_conn *ac = c->app;
    struct envelope_group_pos pos[ROUTE_SESSION_GROUPS_MAX];
    for (size_t i = 0; i < n; i++) {
        pos[i] = (struct envelope_group_pos){
            .name = rg[i].group->name,
            .name_len = rg[i].group->len,
            .offset = rg[i].info.last_offset,
            .epoch = rg[i].info.epoch,
            .epoch_len = strlen(rg[i].info.epoch),
        };
    }
    struct envelope_welcome wl = {
        .conn = c->id,
        .user = ac->user,
        .user_len = ac->user_len,
        .session = ac->session,
        .session_len = strlen(ac->session),
        .heartbeat = (uint32_t)w->cfg->heartbeat,
        .resumed = resumed,
        .personal_offset = personal->last_offset,
        .personal_epoch = personal->epoch,
        .personal_epoch_len = strlen(personal->epoch),
        .recovered = recovered,
        .groups = pos,
        .num_groups = n,
    };
    struct buf *b = &w->app_out;
    b->len = 0;
    if (envelope_encode_welcome(b, op->reply_enc, &op->id, &wl) == 0)
        app_send_enc(w, c, op->reply_enc, b);
}

/* Closes the other connections attached to session (taken over by a newer one). */
static void route_take_over(struct worker *w, struct conn *c)
{
    struct delivery_hdr h = {
        .type = DELIVERY_KICK_SESSION,
        .ch_len = (uint16_t)strlen(c->app->session),
        .close_code = ROUTE_TAKEOVER_CLOSE,
        .exclude = c->id,
    };
    route_push(w, route_running_workers(w), &h, c->app->session, "", "", (const uint8_t *)"");
}

/*
 * A login: resume the session when asked and possible, welcome, then the unacknowledged
 * personal messages, then each restored group's missed messages; live traffic after.
 */
static void route_run_login(struct worker *w, struct route_op *op)
{
    struct conn *c = op->c;
    struct app_conn *ac = c->app;
    static struct session_group sg[ROUTE_SESSION_GROUPS_MAX];
    static struct resume_group rg[ROUTE_SESSION_GROUPS_MAX];
    static uint8_t blob[STORE_SESSION_BLOB_MAX];
    int n = -1;
    if (op->target[0] && w->cfg->session_ttl > 0) {
        int len = store_session_get(rt.store, op->target, blob, sizeof(blob), clock_wall_ms());
        if (len >= 0)
            n = route_session_parse(blob, (size_t)len, ac, sg, ROUTE_SESSION_GROUPS_MAX);
    }
    bool resumed = n >= 0, recovered = true;
    if (resumed) {
        route_copy(ac->session, sizeof(ac->session), op->target, strlen(op->target));
        route_take_over(w, c);
    }
    size_t k = resumed ? route_restore_groups(w, op, sg, n, rg, &recovered) : 0;
    char channel[STORE_CHANNEL_MAX + 1];
    route_channel_name(channel, ac->user);
    struct store_channel_info personal;
    if (store_channel_info(rt.store, channel, &personal) < 0)
        memset(&personal, 0, sizeof(personal));
    route_send_welcome(w, op, resumed, recovered, rg, k, &personal);
    /* since["@"] acknowledges the personal channel when its epoch matches */
    const struct route_since *ps = route_since_for(op, "@");
    uint64_t after = 0;
    if (ps && (ps->epoch[0] == '\0' || strcmp(ps->epoch, personal.epoch) == 0)) {
        after = ps->offset;
        store_ack(rt.store, channel, ps->offset);
    }
    /* The personal channel was left unpositioned when the user was attached. */
    struct luser *u = strmap_get(&rt.users, ac->user, ac->user_len);
    if (u && ac->user_pos != UINT32_MAX) {
        if (after < personal.last_offset) {
            route_replay_start(w, c, NULL, after, 0);
        } else {
            u->last_off[ac->user_pos] = personal.last_offset;
            reorder_position(&u->ro, personal.last_offset);
        }
    }
    for (size_t i = 0; i < k && c->phase != CONN_DEAD; i++) {
        struct app_membership *m = route_membership(c, rg[i].group->name, rg[i].group->len);
        if (m == NULL)
            continue;
        struct lmember *lm = &m->group->members[m->pos];
        if (rg[i].replay) {
            uint64_t keep = lm->last_off != UINT64_MAX ? lm->last_off : 0;
            lm->last_off = UINT64_MAX;
            route_replay_start(w, c, rg[i].group->name, rg[i].from, keep);
        } else if (route_replay_find(ac, false, rg[i].group->name) == NULL) {
            lm->last_off = rg[i].info.last_offset;
            reorder_position(&m->group->ro, rg[i].info.last_offset);
        }
    }
    route_session_save(w, c, ROUTE_SESSION_OPEN_TTL_MS);
}

static void route_reply_offsets(struct worker *w, struct route_op *op, uint64_t offset,
                                bool dup, int64_t delivered)
{
    struct envelope_writer wr;
    struct buf *b = &w->app_out;
    b->len = 0;
    envelope_writer_init(&wr, b, op->reply_enc);
    envelope_w_reply_begin(&wr, &op->id, delivered >= 0 ? 4 : 2);
    envelope_w_key(&wr, "offset");
    envelope_w_uint(&wr, offset);
    envelope_w_key(&wr, "duplicate");
    envelope_w_bool(&wr, dup);
    if (delivered >= 0) {
        envelope_w_key(&wr, "delivered");
        envelope_w_uint(&wr, (uint64_t)delivered);
        envelope_w_key(&wr, "stored");
        envelope_w_bool(&wr, w->cfg->offline_ttl > 0);
    }
    envelope_w_map_end(&wr);
    if (envelope_writer_finish(&wr) == 0)
        route_reply(w, op->c, op->conn_id, op->reply_enc, b);
}

/* Appends op's message to channel and pushes it to the workers in the mask. */
static int route_append(struct worker *w, struct route_op *op, const char *channel,
                        const struct store_retention *ret, bool sys, uint64_t *offset,
                        bool *dup)
{
    const char *from = op->c ? route_user_of(op->c) : "";
    char dedup[STORE_DEDUP_KEY_MAX + 1];
    if (store_dedup_key(dedup, sizeof(dedup), from, op->mid) < 0)
        dedup[0] = '\0';
    struct store_msg msg = {
        .ts_ms = clock_wall_ms(),
        .mid = op->mid,
        .from = from,
        .encoding = op->data_enc,
        .flags = sys ? STORE_MSG_SYS : 0,
        .data = (const uint8_t *)rt.data.data + op->data_off,
        .data_len = op->data_len,
    };
    store_set_dedup_max(rt.store, w->cfg->dedup_max); /* as the last reload left it */
    int rc = store_append(rt.store, channel, ret, dedup[0] ? dedup : NULL,
                          (int64_t)w->cfg->dedup_window * 1000,
                          &msg, offset, dup);
    if (rc < 0)
        return rc;
    if (*dup) {
        SHM_SEG_STAT_ADD(shm_seg_worker(w->seg, (uint32_t)w->id), dedup_hits, 1);
        return 0;
    }
    bool personal = channel[0] == '@';
    struct names_info info = {0};
    if (names_lookup(personal ? w->seg->users : w->seg->groups, op->target, strlen(op->target),
                     &info) < 0) {
        /* nobody online: stored only; a direct message to an absent user is a failure */
        if (personal) {
            SHM_SEG_STAT_ADD(shm_seg_worker(w->seg, (uint32_t)w->id), delivery_failures, 1);
            log_msg(LOG_DEBUG, "send to user=%s: not connected, stored at offset %llu",
                    op->target, (unsigned long long)*offset);
        }
        return 0;
    }
    struct delivery_hdr h = {
        .type = personal ? DELIVERY_USER : DELIVERY_GROUP,
        .data_enc = op->data_enc,
        .flags = sys ? DELIVERY_F_SYS : 0,
        .ch_len = (uint16_t)strlen(op->target),
        .mid_len = (uint16_t)strlen(op->mid),
        .from_len = (uint16_t)strlen(from),
        .data_len = (uint32_t)op->data_len,
        .offset = *offset,
        .ts_ms = msg.ts_ms,
        .exclude = personal ? 0 : op->conn_id,
    };
    route_push(w, info.worker_mask, &h, op->target, op->mid, from, msg.data);
    op->offset = info.total; /* connections reached, for send's reply */
    return 0;
}

static void route_run_publish(struct worker *w, struct route_op *op)
{
    struct store_retention ret;
    route_retention_for_group(w->cfg, op->target, &ret);
    uint64_t offset = 0;
    bool dup = false;
    if (route_append(w, op, op->target, &ret, op->type == ROUTE_OP_SYSTEM, &offset, &dup) < 0) {
        route_error(w, op, "unavailable", "store unavailable: not accepted");
        return;
    }
    op->done = true;
    op->dup = dup;
    op->res_offset = offset;
    op->res_delivered = -1;
}

static void route_run_send(struct worker *w, struct route_op *op)
{
    char channel[STORE_CHANNEL_MAX + 1];
    route_channel_name(channel, op->target);
    struct store_retention ret = {
        .max_messages = w->cfg->offline_ttl > 0 ? w->cfg->offline_max : 0,
        .ttl_ms = (int64_t)w->cfg->offline_ttl * 1000,
    };
    uint64_t offset = 0;
    bool dup = false;
    op->offset = 0;
    if (route_append(w, op, channel, &ret, op->type == ROUTE_OP_SYSTEM, &offset, &dup) < 0) {
        route_error(w, op, "unavailable", "store unavailable: not accepted");
        return;
    }
    op->done = true;
    op->dup = dup;
    op->res_offset = offset;
    op->res_delivered = dup ? 0 : (int64_t)op->offset;
}

/* A send, or a system message to a user: it goes to a personal channel. */
static bool route_op_personal(const struct route_op *op)
{
    return op->type == ROUTE_OP_SEND || (op->type == ROUTE_OP_SYSTEM && op->since_epoch[0] == 'u');
}

/* The audit line of a publish, send or system message the batch has made durable. */
static void route_audit_append(const struct route_op *op)
{
    if (!op->done || (op->type != ROUTE_OP_PUBLISH && op->type != ROUTE_OP_SEND &&
                      op->type != ROUTE_OP_SYSTEM))
        return;
    bool personal = route_op_personal(op);
    if (!audit_begin(op->type == ROUTE_OP_SYSTEM ? "system" : personal ? "send" : "publish"))
        return;
    char channel[STORE_CHANNEL_MAX + 1];
    if (personal)
        route_channel_name(channel, op->target);
    else
        route_copy(channel, sizeof(channel), op->target, strlen(op->target));
    if (op->c)
        audit_u64("conn", op->conn_id);
    audit_str("user", op->c ? route_user_of(op->c) : "");
    audit_str("channel", channel);
    audit_u64("offset", op->res_offset);
    audit_str("mid", op->mid);
    audit_u64("bytes", op->data_len);
    audit_bool("duplicate", op->dup);
    audit_end();
}

static void route_run_ack(struct worker *w, struct route_op *op)
{
    char channel[STORE_CHANNEL_MAX + 1];
    route_channel_name(channel, route_user_of(op->c));
    if (store_ack(rt.store, channel, op->offset) < 0) {
        route_error(w, op, "unavailable", "store unavailable");
        return;
    }
    op->done = true;
}

/* After the commit: the replies of the requests the batch applied. */
static void route_answer(struct worker *w, struct route_op *op)
{
    if (!op->done || op->c == NULL)
        return;
    if (op->type == ROUTE_OP_PUBLISH || op->type == ROUTE_OP_SEND) {
        route_reply_offsets(w, op, op->res_offset, op->dup, op->res_delivered);
    } else if (op->type == ROUTE_OP_ACK) {
        struct buf *b = &w->app_out;
        b->len = 0;
        if (envelope_encode_reply(b, op->reply_enc, &op->id) == 0)
            route_reply(w, op->c, op->conn_id, op->reply_enc, b);
    }
}

static void route_run(struct worker *w, struct route_op *op)
{
    if (op->c && route_conn_gone(op->c, op->conn_id) && op->type != ROUTE_OP_PUBLISH &&
        op->type != ROUTE_OP_SEND)
        return;
    switch (op->type) {
    case ROUTE_OP_PUBLISH: route_run_publish(w, op); break;
    case ROUTE_OP_SEND: route_run_send(w, op); break;
    case ROUTE_OP_ACK: route_run_ack(w, op); break;
    case ROUTE_OP_JOIN: route_run_join(w, op); break;
    case ROUTE_OP_LOGIN: route_run_login(w, op); break;
    case ROUTE_OP_SESSION: route_session_save(w, op->c, ROUTE_SESSION_OPEN_TTL_MS); break;
    case ROUTE_OP_REPLAY: route_replay_run(w, op->c); break;
    case ROUTE_OP_SYSTEM:
        if (route_op_personal(op))
            route_run_send(w, op);
        else
            route_run_publish(w, op);
        break;
    }
}

/* Answers unavailable to every request of the batch (only_done: those it had applied). */
static void route_fail_all(struct worker *w, const char *why, bool only_done)
{
    for (size_t i = 0; i < rt.num_ops; i++) {
        struct route_op *op = &rt.ops[i];
        bool asked = op->type != ROUTE_OP_LOGIN && op->type != ROUTE_OP_JOIN &&
                     op->type != ROUTE_OP_SYSTEM && op->type != ROUTE_OP_SESSION &&
                     op->type != ROUTE_OP_REPLAY;
        if (op->c && asked && !route_conn_gone(op->c, op->conn_id) &&
            (op->done || !only_done))
            route_error(w, op, "unavailable", why);
    }
}

static void route_presence_expire(struct worker *w);

struct held_scan {
    struct worker *w;
    route_deliver_fn fn;
    bool groups;
    uint32_t left;
};

static void route_held_one(void *ctx, const char *key, size_t len, void *value)
{
    (void)key, (void)len;
    struct held_scan *hs = ctx;
    struct reorder *ro = hs->groups ? &((struct lgroup *)value)->ro : &((struct luser *)value)->ro;
    if (ro->n && hs->w->now_ms >= ro->deadline_ms) {
        log_msg(LOG_WARN, "channel gap before offset %llu not filled in %d ms: delivering on",
                (unsigned long long)ro->items[0].off, ROUTE_REORDER_MS);
        reorder_deliver_held(hs->w, ro, hs->fn, true);
    }
    hs->left += ro->n;
}

/* Sends out records held past their deadline (a gap nobody filled). */
static void route_release_held(struct worker *w)
{
    struct held_scan hs = {w, route_deliver_group_now, true, 0};
    /* deliveries may end connections but never change the maps during the scan: leaving
       groups waits for the end of the iteration */
    strmap_foreach(&rt.groups, route_held_one, &hs);
    hs.fn = route_deliver_user_now;
    hs.groups = false;
    strmap_foreach(&rt.users, route_held_one, &hs);
    rt.held = hs.left;
}

void route_flush(struct worker *w)
{
    route_replay_schedule();
    if (rt.num_ops > 0) {
        if (store_batch_begin(rt.store) < 0) {
            route_fail_all(w, "store unavailable: not accepted", false);
        } else {
            for (size_t i = 0; i < rt.num_ops; i++)
                route_run(w, &rt.ops[i]);
            if (store_batch_commit(rt.store) < 0) {
                log_msg(LOG_ERR, "store commit failed: %zu requests answered unavailable",
                        rt.num_ops);
                route_fail_all(w, "store commit failed", true);
            } else {
                for (size_t i = 0; i < rt.num_ops; i++) {
                    route_audit_append(&rt.ops[i]); /* only what the commit made durable */
                    route_answer(w, &rt.ops[i]);
                }
            }
        }
        for (size_t i = 0; i < rt.num_ops; i++)
            free(rt.ops[i].since);
        rt.num_ops = 0;
        rt.data.len = 0;
    }
    if (rt.num_pending)
        route_retry_pending(w);
    if (rt.num_presence)
        route_presence_expire(w);
    if (rt.held)
        route_release_held(w);
    route_wake(w);
    /* Worker 0 expires old messages, dedup entries and sessions about once a second. */
    if (w->id == 0 && w->now_ms >= rt.next_expire_ms) {
        rt.next_expire_ms = w->now_ms + ROUTE_EXPIRE_EVERY_MS;
        if (store_expire(rt.store, clock_wall_ms(), ROUTE_EXPIRE_BUDGET) < 0)
            log_msg(LOG_DEBUG, "store expiry skipped: store unavailable");
    }
}

/* ---- presence ---- */

struct presence_local {
    struct strmap *users;
    uint32_t conns;
};

/* Adds the distinct users of the local members of group to users; returns connections. */
static uint32_t route_presence_local(const char *group, size_t len, struct strmap *users)
{
    struct lgroup *g = strmap_get(&rt.groups, group, len);
    uint32_t conns = 0;
    for (uint32_t i = 0; g && i < g->n; i++) {
        struct conn *c = g->members[i].c;
        if (c->phase == CONN_DEAD || c->app == NULL)
            continue;
        conns++;
        if (users->count < ROUTE_PRESENCE_USERS && c->app->user_len &&
            strmap_get(users, c->app->user, c->app->user_len) == NULL)
            strmap_put(users, c->app->user, c->app->user_len, (void *)1);
    }
    return conns;
}

static void route_presence_key(void *ctx, const char *key, size_t len, void *value)
{
    (void)value;
    envelope_w_str(ctx, key, len);
}

static void route_presence_reply(struct worker *w, struct presence_query *q, uint32_t count)
{
    if (!route_conn_gone(q->c, q->conn_id)) {
        struct envelope_writer wr;
        struct buf *b = &w->app_out;
        b->len = 0;
        envelope_writer_init(&wr, b, q->enc);
        envelope_w_reply_begin(&wr, &q->id, 4);
        envelope_w_key(&wr, "group");
        envelope_w_cstr(&wr, q->group);
        envelope_w_key(&wr, "count");
        envelope_w_uint(&wr, count);
        envelope_w_key(&wr, "user_count");
        envelope_w_uint(&wr, q->users.count);
        envelope_w_key(&wr, "users");
        envelope_w_array(&wr, (uint32_t)q->users.count);
        strmap_foreach(&q->users, route_presence_key, &wr);
        envelope_w_array_end(&wr);
        envelope_w_map_end(&wr);
        if (envelope_writer_finish(&wr) == 0)
            app_send_enc(w, q->c, q->enc, b);
    }
    strmap_fini(&q->users);
}

void route_presence(struct worker *w, struct conn *c, const char *group, size_t len,
                    const struct envelope_id *id)
{
    struct names_info info = {0};
    names_lookup(w->seg->groups, group, len, &info);
    uint64_t others = info.worker_mask & ~(UINT64_C(1) << w->id);
    struct presence_query *p = route_grow(rt.presence, rt.num_presence, &rt.cap_presence,
                                          sizeof(*p), 8);
    if (p == NULL) {
        app_error(w, c, id, "internal", "out of memory");
        return;
    }
    rt.presence = p;
    struct presence_query *q = &rt.presence[rt.num_presence];
    memset(q, 0, sizeof(*q));
    q->seq = ++rt.presence_seq;
    q->c = c;
    q->conn_id = c->id;
    q->enc = (uint8_t)app_enc(c);
    q->id = *id;
    route_copy(q->group, sizeof(q->group), group, len);
    strmap_init(&q->users);
    route_presence_local(group, len, &q->users);
    q->waiting = others;
    q->deadline_ms = w->now_ms + ROUTE_PRESENCE_TIMEOUT_MS;
    if (others == 0) {
        route_presence_reply(w, q, info.total);
        return;
    }
    rt.num_presence++;
    struct delivery_hdr h = {
        .type = DELIVERY_PRESENCE_Q,
        .ch_len = (uint16_t)len,
        .close_code = (uint16_t)w->id,
        .offset = q->seq,
        .exclude = c->id,
    };
    route_push(w, others, &h, group, "", "", (const uint8_t *)"");
}

/* Another worker asks which users of a group are here. */
static void route_presence_answer(struct worker *w, const struct delivery_view *v)
{
    struct strmap users;
    strmap_init(&users);
    uint32_t conns = route_presence_local(v->ch, v->hdr->ch_len, &users);
    struct buf list;
    buf_init(&list);
    for (size_t i = 0; i < users.cap; i++) {
        const struct strmap_slot *s = &users.slots[i];
        if (s->hash && (buf_append(&list, s->key, s->key_len) < 0 ||
                        buf_append(&list, "", 1) < 0))
            break;
    }
    struct delivery_hdr h = {
        .type = DELIVERY_PRESENCE_A,
        .ch_len = v->hdr->ch_len,
        .close_code = (uint16_t)WSD_MIN(conns, 65535u),
        .data_len = (uint32_t)list.len,
        .offset = v->hdr->offset,
        .exclude = v->hdr->exclude,
    };
    route_push(w, UINT64_C(1) << v->hdr->close_code, &h, v->ch, "", "",
               list.data ? list.data : (const uint8_t *)"");
    buf_fini(&list);
    strmap_fini(&users);
}

static void route_presence_remove(size_t i)
{
    rt.presence[i] = rt.presence[--rt.num_presence];
}

/* An answer to one of our presence queries. */
static void route_presence_collect(struct worker *w, const struct delivery_view *v)
{
    for (size_t i = 0; i < rt.num_presence; i++) {
        struct presence_query *q = &rt.presence[i];
        if (q->seq != v->hdr->offset)
            continue;
        for (size_t pos = 0; pos < v->hdr->data_len;) {
            const char *u = (const char *)v->data + pos;
            size_t len = strnlen(u, v->hdr->data_len - pos);
            if (len && q->users.count < ROUTE_PRESENCE_USERS && !strmap_get(&q->users, u, len))
                strmap_put(&q->users, u, len, (void *)1);
            pos += len + 1;
        }
        q->waiting &= ~(UINT64_C(1) << v->producer);
        if (q->waiting == 0) {
            struct names_info info = {0};
            names_lookup(w->seg->groups, q->group, strlen(q->group), &info);
            route_presence_reply(w, q, info.total);
            route_presence_remove(i);
        }
        return;
    }
}

/* Answers queries whose workers did not all answer in time (one of them died). */
static void route_presence_expire(struct worker *w)
{
    for (size_t i = 0; i < rt.num_presence;) {
        struct presence_query *q = &rt.presence[i];
        if (w->now_ms < q->deadline_ms && !route_conn_gone(q->c, q->conn_id)) {
            i++;
            continue;
        }
        struct names_info info = {0};
        names_lookup(w->seg->groups, q->group, strlen(q->group), &info);
        route_presence_reply(w, q, info.total);
        route_presence_remove(i);
    }
}

/* ---- system messages from the operator ---- */

static void route_system_request(struct worker *w, const struct delivery_view *v)
{
    (void)w;
    const struct delivery_hdr *h = v->hdr;
    if (h->mid_len == 3 && memcmp(v->mid, "all", 3) == 0) {
        struct delivery_hdr b = {
            .type = DELIVERY_BROADCAST,
            .data_enc = h->data_enc,
            .flags = DELIVERY_F_SYS,
            .data_len = h->data_len,
            .ts_ms = clock_wall_ms(),
        };
        char mid[STORE_MID_MAX + 1];
        b.mid_len = (uint16_t)snprintf(mid, sizeof(mid), "%s-%llx", rt.mid_prefix,
                                       (unsigned long long)++rt.mid_counter);
        route_push(w, route_running_workers(w), &b, "", mid, "", v->data);
        return;
    }
    struct route_op *op = route_op_new(NULL, ROUTE_OP_SYSTEM, NULL);
    if (op == NULL)
        return;
    route_copy(op->target, sizeof(op->target), v->ch, h->ch_len);
    op->since_epoch[0] = v->mid[0]; /* 'g' group, 'u' user */
    snprintf(op->mid, sizeof(op->mid), "%s-%llx", rt.mid_prefix,
             (unsigned long long)++rt.mid_counter);
    op->data_enc = h->data_enc;
    op->data_off = rt.data.len;
    op->data_len = h->data_len;
    if (buf_append(&rt.data, v->data, h->data_len) < 0)
        rt.num_ops--;
}

/* ---- set-up ---- */

void route_personal_position(struct worker *w, const char *user, size_t len,
                             struct route_position *out)
{
    (void)w;
    char channel[STORE_CHANNEL_MAX + 1];
    snprintf(channel, sizeof(channel), "@%.*s", (int)len, user);
    struct store_channel_info info;
    memset(out, 0, sizeof(*out));
    if (store_channel_info(rt.store, channel, &info) == 0) {
        out->offset = info.last_offset;
        memcpy(out->epoch, info.epoch, sizeof(out->epoch));
    }
}

static enum store_sync route_sync(const char *s)
{
    if (s && strcmp(s, "always") == 0)
        return STORE_SYNC_ALWAYS;
    if (s && strcmp(s, "none") == 0)
        return STORE_SYNC_NONE;
    return STORE_SYNC_BATCH;
}

int route_init(struct worker *w, const int *ring_efds)
{
    memset(&rt, 0, sizeof(rt));
    strmap_init(&rt.groups);
    strmap_init(&rt.users);
    buf_init(&rt.data);
    buf_init(&rt.frame[0]);
    buf_init(&rt.frame[1]);
    buf_init(&rt.session);
    for (int i = 0; i < CONFIG_MAX_WORKERS; i++)
        rt.efds[i] = ring_efds[i];
    char hex[9];
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)clock_mono_us();
    snprintf(hex, sizeof(hex), "%08x", r);
    snprintf(rt.mid_prefix, sizeof(rt.mid_prefix), "%s%02x", hex, (unsigned)w->id);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &route_ring_tag};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, rt.efds[w->id], &ev) == -1) {
        log_msg(LOG_CRIT, "epoll_ctl(ADD, eventfd=%d) failed: %s", rt.efds[w->id],
                strerror(errno));
        return WSD_EIO;
    }
    struct store_options opt = {
        .uri = w->cfg->store,
        .sync = route_sync(w->cfg->store_sync),
        .lazy_connect = true, /* Redis down at start: requests answer unavailable */
    };
    char err[256];
    int rc = store_open(&opt, &rt.store, err, sizeof(err));
    if (rc < 0) {
        log_msg(LOG_CRIT, "cannot open the store %s: %s", w->cfg->store, err);
        return rc;
    }
    return 0;
}

static void route_free_group(void *ctx, const char *key, size_t len, void *value)
{
    (void)ctx, (void)key, (void)len;
    struct lgroup *g = value;
    reorder_fini(&g->ro);
    free(g->members);
    free(g);
}

static void route_free_user(void *ctx, const char *key, size_t len, void *value)
{
    (void)ctx, (void)key, (void)len;
    struct luser *u = value;
    reorder_fini(&u->ro);
    free(u->conns);
    free(u->last_off);
    free(u);
}

void route_fini(struct worker *w)
{
    (void)w;
    strmap_foreach(&rt.groups, route_free_group, NULL);
    strmap_foreach(&rt.users, route_free_user, NULL);
    strmap_fini(&rt.groups);
    strmap_fini(&rt.users);
    for (size_t i = 0; i < rt.num_pending; i++)
        block_unref(rt.pending[i].rec);
    for (size_t i = 0; i < rt.num_presence; i++)
        strmap_fini(&rt.presence[i].users);
    free(rt.pending);
    free(rt.presence);
    free(rt.ops);
    free(rt.replaying);
    buf_fini(&rt.data);
    buf_fini(&rt.frame[0]);
    buf_fini(&rt.frame[1]);
    buf_fini(&rt.session);
    store_close(rt.store);
    rt.store = NULL;
}
