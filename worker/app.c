/* app.c - the messaging endpoint: authentication, envelopes and the ops of PROTOCOL.md. */
#include "worker/app.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"
#include "proto/http.h"
#include "shm/conn_table.h"
#include "shm/names.h"
#include "shm/seg.h"
#include "worker/conn.h"
#include "worker/route.h"
#include "worker/table.h"
#include "core/audit.h"
#include "worker/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define APP_AUTH_CLOSE 4001
#define APP_FORBIDDEN_CLOSE 4003
#define APP_RATE_CLOSE 4008

static struct app_conn *app_of(struct conn *c)
{
    return c->app;
}

/* The encoding of replies: the request's while one is handled, else the subprotocol's. */
enum envelope_encoding app_enc(const struct conn *c)
{
    return c->app ? c->app->reply_enc : (c->msgpack ? ENVELOPE_MSGPACK : ENVELOPE_JSON);
}

/* Sends an encoded envelope as a frame of the type that matches enc. */
void app_send_enc(struct worker *w, struct conn *c, enum envelope_encoding enc,
                  const struct buf *b)
{
    conn_send_frame(w, c, enc == ENVELOPE_MSGPACK ? WS_OP_BINARY : WS_OP_TEXT, b->data, b->len);
    table_conn_count_msg_out(w, c);
}

static void app_send(struct worker *w, struct conn *c, const struct buf *b)
{
    app_send_enc(w, c, app_enc(c), b);
}

void app_error(struct worker *w, struct conn *c, const struct envelope_id *id, const char *code,
               const char *message)
{
    struct buf *b = &w->app_out;
    b->len = 0;
    if (envelope_encode_error(b, app_enc(c), id, code, message) == 0)
        app_send(w, c, b);
}

static void app_reply_ok(struct worker *w, struct conn *c, const struct envelope_id *id)
{
    struct buf *b = &w->app_out;
    b->len = 0;
    if (envelope_encode_reply(b, app_enc(c), id) == 0)
        app_send(w, c, b);
}

static size_t app_field(const struct envelope_str *s, char *out, size_t cap);

/* Welcomed connections of this worker: who a broadcast reaches. */
static void app_count_audience(struct worker *w, int delta)
{
    atomic_fetch_add_explicit(&shm_seg_worker(w->seg, (uint32_t)w->id)->app_connections,
                              (uint32_t)delta, memory_order_relaxed);
}

/* ---- authentication ---- */

static void app_random_hex(char *out, size_t bytes)
{
    uint8_t raw[32];
    if (getrandom(raw, bytes, 0) != (ssize_t)bytes) {
        uint64_t x = (uint64_t)clock_mono_us() * 0x9E3779B97F4A7C15ull;
        for (size_t i = 0; i < bytes; i++, x = x * 6364136223846793005ull + 1)
            raw[i] = (uint8_t)(x >> 56);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * bytes] = '\0';
}

static enum jwt_status app_verify(struct worker *w, const char *token, size_t len,
                                  struct jwt_claims *claims, uint8_t *buf)
{
    const struct config *cfg = w->cfg;
    struct jwt_keys keys = {
        .hs256_secret = cfg->jwt_hs256_secret,
        .hs256_secret_len = cfg->jwt_hs256_secret_len,
        .ed25519_public_key =
            cfg->has_jwt_ed25519_public_key ? cfg->jwt_ed25519_public_key : NULL,
    };
    struct jwt_policy pol = {
        .now = clock_wall_ms() / 1000,
        .leeway = cfg->jwt_leeway,
        .require_exp = cfg->jwt_require_exp,
    };
    return jwt_verify(token, len, &keys, &pol, claims, buf, JWT_PAYLOAD_BUF);
}

/* Keeps a verified token's claims on the connection. Returns 0 or WSD_ENOMEM. */
static int app_take_claims(struct app_conn *ac, const struct jwt_claims *claims,
                           const uint8_t *buf)
{
    uint8_t *copy = malloc(claims->used ? claims->used : 1);
    if (copy == NULL)
        return WSD_ENOMEM;
    memcpy(copy, buf, claims->used);
    free(ac->claims_buf);
    ac->claims_buf = copy;
    ac->claims = *claims;
    ac->admin = claims->admin;
    ac->exp_s = claims->has_exp ? claims->exp : 0;
    ac->expired_notified = false;
    ac->grace_deadline_ms = 0;
    return 0;
}

static void app_welcome(struct worker *w, struct conn *c, const struct envelope_id *id)
{
    struct app_conn *ac = app_of(c);
    struct route_position personal = {0};
    if (!ac->anonymous)
        route_personal_position(w, ac->user, ac->user_len, &personal);
    struct envelope_welcome wl = {
        .conn = c->id,
        .user = ac->user,
        .user_len = ac->user_len,
        .session = ac->session,
        .session_len = strlen(ac->session),
        .heartbeat = (uint32_t)w->cfg->heartbeat,
        .personal_offset = personal.offset,
        .personal_epoch = personal.epoch,
        .personal_epoch_len = strlen(personal.epoch),
    };
    struct buf *b = &w->app_out;
    b->len = 0;
    if (envelope_encode_welcome(b, app_enc(c), id, &wl) == 0)
        app_send(w, c, b);
}

/*
 * Logs c in as user (first login, or anonymous -> user). env is the auth request (NULL
 * for a token from the handshake): its session and since drive the resume.
 */
static int app_login(struct worker *w, struct conn *c, const struct jwt_claims *claims,
                     const uint8_t *buf, const struct envelope *env)
{
    const struct envelope_id *id = env ? &env->id : NULL;
    struct app_conn *ac = app_of(c);
    if (app_take_claims(ac, claims, buf) < 0)
        return WSD_ENOMEM;
    memcpy(ac->user, buf + claims->sub.off, claims->sub.len);
    ac->user[claims->sub.len] = '\0';
    ac->user_len = (uint8_t)claims->sub.len;
    ac->anonymous = false;
    table_conn_add_flags(w, c, CONN_TABLE_F_AUTHENTICATED);
    if (!ac->authed)
        app_count_audience(w, 1);
    ac->authed = true;
    ac->auth_deadline_ms = 0;
    app_random_hex(ac->session, 16); /* replaced by the resumed one, if any */
    int rc = route_user_attach(w, c);
    if (rc < 0) {
        app_error(w, c, id, "unavailable", "user table full");
        return rc;
    }
    if (env && env->session.raw)
        app_field(&env->session, ac->resume, sizeof(ac->resume));
    if (audit_begin("login")) {
        audit_u64("conn", c->id);
        audit_strn("user", ac->user, ac->user_len);
        audit_bool("resume", ac->resume[0] != '\0');
        audit_end();
    }
    route_login(w, c, ac->resume[0] ? ac->resume : NULL, env ? &env->since : NULL, id);
    return 0;
}

static void app_anonymous(struct worker *w, struct conn *c)
{
    struct app_conn *ac = app_of(c);
    app_count_audience(w, 1);
    ac->authed = true;
    ac->anonymous = true;
    ac->auth_deadline_ms = 0;
    app_random_hex(ac->session, 16);
    app_welcome(w, c, NULL);
}

static void app_audit_auth_failed(struct conn *c, const char *why)
{
    if (audit_begin("auth_failed")) {
        audit_u64("conn", c->id);
        audit_str("reason", why);
        audit_bool("authenticated", app_of(c)->authed && !app_of(c)->anonymous);
        audit_end();
    }
}

static void app_unauthorized_close(struct worker *w, struct conn *c,
                                   const struct envelope_id *id, const char *why)
{
    app_error(w, c, id, "unauthorized", why);
    conn_ws_close(w, c, APP_AUTH_CLOSE, "unauthorized");
}

/* The auth op (env), and a token from the handshake (env NULL). */
static void app_auth(struct worker *w, struct conn *c, const char *token, size_t len,
                     const struct envelope *env)
{
    const struct envelope_id *id = env ? &env->id : NULL;
    struct app_conn *ac = app_of(c);
    static uint8_t buf[JWT_PAYLOAD_BUF];
    struct jwt_claims claims;
    enum jwt_status st = app_verify(w, token, len, &claims, buf);
    bool refresh = ac->authed && !ac->anonymous;
    if (st != JWT_OK) {
        const char *why = jwt_status_name(st);
        app_audit_auth_failed(c, why);
        if (refresh || (ac->authed && ac->anonymous))
            app_error(w, c, id, "unauthorized", why); /* nothing changes */
        else
            app_unauthorized_close(w, c, id, why);
        return;
    }
    if (!refresh) {
        if (app_login(w, c, &claims, buf, env) < 0)
            conn_ws_close(w, c, WS_CLOSE_INTERNAL, "login failed");
        return;
    }
    if (claims.sub.len != ac->user_len || memcmp(buf + claims.sub.off, ac->user, ac->user_len)) {
        app_error(w, c, id, "forbidden", "a refresh token must be for the same user");
        return;
    }
    if (app_take_claims(ac, &claims, buf) < 0) {
        app_error(w, c, id, "internal", "out of memory");
        return;
    }
    struct envelope_writer wr;
    struct buf *b = &w->app_out;
    b->len = 0;
    envelope_writer_init(&wr, b, app_enc(c));
    envelope_w_reply_begin(&wr, id, claims.has_exp ? 1 : 0);
    if (claims.has_exp) {
        envelope_w_key(&wr, "exp");
        envelope_w_int(&wr, claims.exp);
    }
    envelope_w_map_end(&wr);
    if (envelope_writer_finish(&wr) == 0)
        app_send(w, c, b);
}

/* Token from the handshake: Authorization: Bearer T, or ?token=T. */
static int app_handshake_token(const struct http_request *req, char *out, size_t cap)
{
    const struct http_header *h = http_find_header(req, "Authorization");
    if (h && h->value.len > 7 && strncasecmp(h->value.p, "Bearer ", 7) == 0) {
        size_t len = h->value.len - 7;
        if (len >= cap)
            return WSD_ETOOBIG;
        memcpy(out, h->value.p + 7, len);
        out[len] = '\0';
        return (int)len;
    }
    return http_query_param(req, "token", out, cap);
}

void app_on_open(struct worker *w, struct conn *c, const struct http_request *req)
{
    struct app_conn *ac = calloc(1, sizeof(*ac));
    if (ac == NULL) {
        conn_ws_close(w, c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    ac->user_pos = UINT32_MAX;
    ac->reply_enc = c->msgpack ? ENVELOPE_MSGPACK : ENVELOPE_JSON;
    c->app = ac;
    static char token[JWT_MAX_TOKEN_LEN + 1];
    int len = app_handshake_token(req, token, sizeof(token));
    char resume[ENVELOPE_MAX_SESSION_LEN + 1];
    if (http_query_param(req, "session", resume, sizeof(resume)) > 0)
        memcpy(ac->resume, resume, sizeof(resume));
    if (len > 0) {
        app_auth(w, c, token, (size_t)len, NULL);
    } else if (len == WSD_ETOOBIG) {
        app_audit_auth_failed(c, "token too long");
        app_unauthorized_close(w, c, NULL, "token too long");
    } else if (w->cfg->anonymous) {
        app_anonymous(w, c);
    } else {
        ac->auth_deadline_ms = w->now_ms + (int64_t)w->cfg->auth_timeout * 1000;
    }
}

void app_on_close(struct worker *w, struct conn *c)
{
    struct app_conn *ac = app_of(c);
    if (ac == NULL)
        return;
    if (ac->authed)
        app_count_audience(w, -1);
    route_session_close(w, c);
    route_replay_cancel(c);
    route_leave_all(w, c);
    route_user_detach(w, c);
    free(ac->claims_buf);
    free(ac->groups);
    free(ac);
    c->app = NULL;
}

void app_tick(struct worker *w, struct conn *c, int64_t now_ms)
{
    struct app_conn *ac = app_of(c);
    if (ac == NULL || c->close_sent)
        return;
    if (ac->auth_deadline_ms && now_ms >= ac->auth_deadline_ms) {
        app_audit_auth_failed(c, "no auth within auth_timeout");
        app_unauthorized_close(w, c, NULL, "no auth within auth_timeout");
        return;
    }
    if (ac->exp_s == 0 || ac->anonymous)
        return;
    if (!ac->expired_notified &&
        clock_wall_ms() / 1000 > ac->exp_s + (int64_t)w->cfg->jwt_leeway) {
        ac->expired_notified = true;
        ac->grace_deadline_ms = now_ms + (int64_t)w->cfg->auth_grace * 1000;
        app_error(w, c, NULL, "token_expired", "send a fresh token with auth");
    } else if (ac->expired_notified && now_ms >= ac->grace_deadline_ms) {
        conn_ws_close(w, c, APP_AUTH_CLOSE, "token expired");
    }
}

/* ---- ops ---- */

static bool app_allowed(struct worker *w, struct app_conn *ac, enum jwt_list list,
                        const uint8_t *name, size_t len);

bool app_may_join(struct worker *w, struct conn *c, const char *group, size_t len)
{
    return app_allowed(w, c->app, JWT_LIST_JOIN, (const uint8_t *)group, len);
}

/* True when the connection may use name for list (join/pub/send). */
static bool app_allowed(struct worker *w, struct app_conn *ac, enum jwt_list list,
                        const uint8_t *name, size_t len)
{
    if (ac->anonymous) {
        if (list != JWT_LIST_JOIN)
            return false;
        for (size_t i = 0; i < w->cfg->num_public_groups; i++) {
            const char *p = w->cfg->public_groups[i];
            if (jwt_pattern_match(p, strlen(p), (const char *)name, len))
                return true;
        }
        return false;
    }
    return jwt_claims_allow(&ac->claims, ac->claims_buf, list, (const char *)name, len);
}

/* Copies a string field (validated by the parser) into out, NUL-terminated. */
static size_t app_field(const struct envelope_str *s, char *out, size_t cap)
{
    size_t len = 0;
    if (envelope_str_copy(s, out, cap - 1, &len) < 0)
        len = 0;
    out[len] = '\0';
    return len;
}

static void app_op_join(struct worker *w, struct conn *c, const struct envelope *env)
{
    char group[NAMES_NAME_MAX + 1];
    size_t len = app_field(&env->group, group, sizeof(group));
    if (!app_allowed(w, app_of(c), JWT_LIST_JOIN, (const uint8_t *)group, len)) {
        app_error(w, c, &env->id, "forbidden", "no join permission for this group");
        return;
    }
    route_join(w, c, group, len, env);
}

static void app_op_leave(struct worker *w, struct conn *c, const struct envelope *env)
{
    char group[NAMES_NAME_MAX + 1];
    size_t len = app_field(&env->group, group, sizeof(group));
    if (route_leave(w, c, group, len) < 0)
        app_error(w, c, &env->id, "not_member", "not a member of this group");
    else
        app_reply_ok(w, c, &env->id);
}

static void app_op_publish(struct worker *w, struct conn *c, const struct envelope *env)
{
    char group[NAMES_NAME_MAX + 1];
    size_t len = app_field(&env->group, group, sizeof(group));
    if (!app_allowed(w, app_of(c), JWT_LIST_PUB, (const uint8_t *)group, len)) {
        app_error(w, c, &env->id, "forbidden", "no publish permission for this group");
        return;
    }
    route_publish(w, c, group, len, env);
}

static void app_op_send(struct worker *w, struct conn *c, const struct envelope *env)
{
    struct app_conn *ac = app_of(c);
    char user[NAMES_NAME_MAX + 1];
    size_t len = app_field(&env->user, user, sizeof(user));
    if (len == 0) {
        app_error(w, c, &env->id, "bad_field", "user must not be empty");
        return;
    }
    if (ac->anonymous || !app_allowed(w, ac, JWT_LIST_SEND, (const uint8_t *)user, len)) {
        app_error(w, c, &env->id, "forbidden", "no send permission for this user");
        return;
    }
    route_send(w, c, user, len, env);
}

static void app_op_broadcast(struct worker *w, struct conn *c, const struct envelope *env)
{
    if (!app_of(c)->admin) {
        app_error(w, c, &env->id, "forbidden", "broadcast needs the admin claim");
        return;
    }
    route_broadcast(w, c, env);
}

static void app_op_presence(struct worker *w, struct conn *c, const struct envelope *env)
{
    char group[NAMES_NAME_MAX + 1];
    size_t len = app_field(&env->group, group, sizeof(group));
    if (!app_allowed(w, app_of(c), JWT_LIST_JOIN, (const uint8_t *)group, len)) {
        app_error(w, c, &env->id, "forbidden", "no join permission for this group");
        return;
    }
    route_presence(w, c, group, len, &env->id);
}

static void app_op_ack(struct worker *w, struct conn *c, const struct envelope *env)
{
    if (app_of(c)->anonymous) {
        app_error(w, c, &env->id, "forbidden", "anonymous connections have no personal channel");
        return;
    }
    route_ack(w, c, env->offset, &env->id);
}

static void app_dispatch(struct worker *w, struct conn *c, const struct envelope *env)
{
    struct app_conn *ac = app_of(c);
    if (env->op == ENVELOPE_OP_AUTH) {
        char token[JWT_MAX_TOKEN_LEN + 1];
        size_t len = app_field(&env->token, token, sizeof(token));
        app_auth(w, c, token, len, env);
        return;
    }
    if (env->op == ENVELOPE_OP_PING) {
        struct buf *b = &w->app_out;
        b->len = 0;
        if (envelope_encode_pong(b, app_enc(c), &env->id) == 0)
            app_send(w, c, b);
        return;
    }
    if (!ac->authed) {
        app_error(w, c, &env->id, "unauthorized", "authenticate first with the auth op");
        return;
    }
    switch (env->op) {
    case ENVELOPE_OP_JOIN: app_op_join(w, c, env); break;
    case ENVELOPE_OP_LEAVE: app_op_leave(w, c, env); break;
    case ENVELOPE_OP_PUBLISH: app_op_publish(w, c, env); break;
    case ENVELOPE_OP_SEND: app_op_send(w, c, env); break;
    case ENVELOPE_OP_BROADCAST: app_op_broadcast(w, c, env); break;
    case ENVELOPE_OP_ACK: app_op_ack(w, c, env); break;
    case ENVELOPE_OP_PRESENCE: app_op_presence(w, c, env); break;
    default: app_error(w, c, &env->id, "unknown_op", "unknown op"); break;
    }
}

/*
 * rate_limit: a token bucket of rate_burst messages refilled at rate_limit per second.
 * A message without a token is refused with rate_limited; a client that goes on sending
 * a whole burst's worth of refused messages is closed with 4008. Returns true when the
 * message may be handled.
 */
static bool app_rate_ok(struct worker *w, struct conn *c, struct app_conn *ac)
{
    const struct config *cfg = w->cfg;
    if (cfg->rate_limit == 0)
        return true;
    double burst = cfg->rate_burst ? cfg->rate_burst : 2.0 * cfg->rate_limit;
    if (ac->rate_refill_ms == 0) {
        ac->rate_tokens = burst;
    } else {
        double add = (double)(w->now_ms - ac->rate_refill_ms) * cfg->rate_limit / 1000.0;
        ac->rate_tokens = ac->rate_tokens + add > burst ? burst : ac->rate_tokens + add;
    }
    ac->rate_refill_ms = w->now_ms;
    if (ac->rate_tokens >= 1.0) {
        ac->rate_tokens -= 1.0;
        ac->rate_refused = 0;
        return true;
    }
    SHM_SEG_STAT_ADD(shm_seg_worker(w->seg, (uint32_t)w->id), rate_limited, 1);
    if (++ac->rate_refused > burst) {
        log_msg(LOG_NOTICE, "conn=%llx user=%s closed: over rate_limit %u/s",
                (unsigned long long)c->id, ac->user, cfg->rate_limit);
        conn_ws_close(w, c, APP_RATE_CLOSE, "rate limited");
    }
    return false;
}

void app_on_message(struct worker *w, struct conn *c, uint8_t opcode, const uint8_t *p,
                    size_t len)
{
    if (c->close_sent || app_of(c) == NULL)
        return;
    struct app_conn *ac = app_of(c);
    struct envelope env;
    enum envelope_encoding enc = opcode == WS_OP_BINARY ? ENVELOPE_MSGPACK : ENVELOPE_JSON;
    envelope_parse(&env, enc, p, len, w->cfg->max_data_size);
    ac->reply_enc = enc; /* replies use the frame type of the request */
    if (!app_rate_ok(w, c, ac)) {
        if (!c->close_sent)
            app_error(w, c, env.id.kind != ENVELOPE_ID_NONE ? &env.id : NULL, "rate_limited",
                      "over rate_limit: slow down");
    } else if (env.error != ENVELOPE_OK)
        app_error(w, c, env.id.kind != ENVELOPE_ID_NONE ? &env.id : NULL,
                  envelope_error_code(env.error), env.message);
    else
        app_dispatch(w, c, &env);
    if (c->app)
        c->app->reply_enc = c->msgpack ? ENVELOPE_MSGPACK : ENVELOPE_JSON;
}

int app_init(struct worker *w, const int *ring_efds)
{
    buf_init(&w->app_out);
    /* a worker that replaces a crashed one starts with no audience of its own */
    atomic_store_explicit(&shm_seg_worker(w->seg, (uint32_t)w->id)->app_connections, 0,
                          memory_order_relaxed);
    return route_init(w, ring_efds);
}

void app_fini(struct worker *w)
{
    route_fini(w);
    buf_fini(&w->app_out);
}

void app_on_ring(struct worker *w)
{
    route_on_ring(w);
}

void app_flush(struct worker *w)
{
    route_flush(w);
}
