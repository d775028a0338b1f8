/* store_redis.c - the Redis Streams backend: hiredis, blocking calls with short timeouts. */
#include "store/store_redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/clock.h"
#include "core/wsd.h"

#define RD_TIMEOUT_MS 1000
#define RD_RECONNECT_MS 500
#define RD_ARGS_MAX 20
#define RD_KEY_MAX (16 + STORE_DEDUP_KEY_MAX)
#define RD_READ_CHUNK 256
#define RD_NUM_MAX (1ll << 52) /* numbers given to Lua stay exact doubles */

/*
 * KEYS: meta, stream, dedup key, wsd:exp, wsd:store, the user's dedup keys (a sorted
 * set by time, kept while dedup_max is set).
 * ARGV: channel, ts_ms, dedup window (0 = off), max_messages, ttl_ms, epoch, packed,
 * dedup_max (0 = no cap), the dedup key ("" when it has no user part).
 * Returns {1, first offset} for a duplicate, {0, offset} otherwise.
 */
static const char rd_append_lua[] =
    "local meta, st, dd, ez, sk = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]\n"
    "local ch, ts, win = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local max, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "if redis.call('EXISTS', sk) == 0 then\n"
    "  return redis.error_reply('WSDNOSTORE the store key is missing')\n"
    "end\n"
    "if win > 0 then\n"
    "  local d = redis.call('GET', dd)\n"
    "  if d then\n"
    "    local sep = string.find(d, ':', 1, true)\n"
    "    if sep and ts - tonumber(string.sub(d, sep + 1)) < win then\n"
    "      return {1, string.sub(d, 1, sep - 1)}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local off = redis.call('HINCRBY', meta, 'last', 1)\n"
    "redis.call('HSETNX', meta, 'epoch', ARGV[6])\n"
    "redis.call('HSET', meta, 'max', ARGV[4], 'ttl', ARGV[5])\n"
    "if max > 0 and ttl > 0 then\n"
    "  redis.call('XADD', st, string.format('%d-0', off), 't', ARGV[2], 'v', ARGV[7])\n"
    "end\n"
    "if off > max then\n"
    "  redis.call('XTRIM', st, 'MINID', string.format('%d-0', off - max + 1))\n"
    "end\n"
    "local first = redis.call('XRANGE', st, '-', '+', 'COUNT', 1)\n"
    "if #first > 0 then\n"
    "  local want = tonumber(first[1][2][2]) + ttl + 1\n"
    "  local cur = redis.call('ZSCORE', ez, ch)\n"
    "  if not cur or want < tonumber(cur) then redis.call('ZADD', ez, want, ch) end\n"
    "end\n"
    "if win > 0 then\n"
    "  redis.call('SET', dd, string.format('%d:%s', off, ARGV[2]), 'PX', ARGV[3])\n"
    "  local du, dmax = KEYS[6], tonumber(ARGV[8])\n"
    "  if dmax > 0 and ARGV[9] ~= '' then\n"
    "    redis.call('ZREMRANGEBYSCORE', du, '-inf', ts - win)\n"
    "    redis.call('ZADD', du, ts, ARGV[9])\n"
    "    local n = redis.call('ZCARD', du)\n"
    "    if n > dmax then\n"
    "      local old = redis.call('ZPOPMIN', du, n - dmax)\n"
    "      for i = 1, #old, 2 do redis.call('DEL', 'wsd:dd:' .. old[i]) end\n"
    "    end\n"
    "    redis.call('PEXPIRE', du, ARGV[3])\n"
    "  end\n"
    "end\n"
    "return {0, string.format('%d', off)}\n";

/*
 * KEYS: meta, stream, wsd:exp. ARGV: channel, now_ms, budget.
 * Deletes up to budget expired messages from the front; re-files the channel.
 * Returns how many were deleted.
 */
static const char rd_expire_lua[] =
    "local meta, st, ez = KEYS[1], KEYS[2], KEYS[3]\n"
    "local ch, now, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local ttl = tonumber(redis.call('HGET', meta, 'ttl') or '0')\n"
    "local e = redis.call('XRANGE', st, '-', '+', 'COUNT', budget + 1)\n"
    "local removed, keep = 0, nil\n"
    "for i = 1, #e do\n"
    "  if i > budget or now - tonumber(e[i][2][2]) <= ttl then keep = e[i]; break end\n"
    "  removed = i\n"
    "end\n"
    "if keep then\n"
    "  if removed > 0 then redis.call('XTRIM', st, 'MINID', keep[1]) end\n"
    "  redis.call('ZADD', ez, tonumber(keep[2][2]) + ttl + 1, ch)\n"
    "else\n"
    "  if removed > 0 then redis.call('XTRIM', st, 'MAXLEN', 0) end\n"
    "  redis.call('ZREM', ez, ch)\n"
    "end\n"
    "return removed\n";

enum rd_script { RD_APPEND, RD_EXPIRE, RD_NUM_SCRIPTS };

static const char *const rd_scripts[RD_NUM_SCRIPTS] = {rd_append_lua, rd_expire_lua};

struct store_redis {
    struct store base;       /* first: struct store * converts to this */
    redisContext *c;         /* NULL while disconnected */
    char host[256];
    int port;
    int db;
    int64_t next_connect_ms; /* monotonic: no connection attempt before this */
    uint8_t key[STORE_KEY_LEN];
    char sha[RD_NUM_SCRIPTS][41];
    bool in_batch;
    char **queued;           /* formatted commands of the open batch */
    size_t *queued_len;      /* and their lengths */
    size_t num_queued, cap_queued;
    uint8_t *pack;           /* packing buffer for appends */
    size_t pack_cap;
    char err[512];           /* why the last connection attempt failed */
};

/* One command as argv. The strings are borrowed. */
struct rd_cmd {
    int argc;
    const char *argv[RD_ARGS_MAX];
    size_t len[RD_ARGS_MAX];
};

static const struct store_ops rd_ops;

static struct store_redis *rd_of(struct store *s)
{
    return (struct store_redis *)s;
}

static void rd_arg(struct rd_cmd *cmd, const void *p, size_t len)
{
    WSD_BUG_ON(cmd->argc >= RD_ARGS_MAX);
    cmd->argv[cmd->argc] = p;
    cmd->len[cmd->argc] = len;
    cmd->argc++;
}

static void rd_str(struct rd_cmd *cmd, const char *s)
{
    rd_arg(cmd, s, strlen(s));
}

/* prefix followed by name, NUL-terminated in buf (RD_KEY_MAX bytes). */
static const char *rd_key(char *buf, const char *prefix, const char *name)
{
    snprintf(buf, RD_KEY_MAX, "%s%s", prefix, name);
    return buf;
}

static int64_t rd_clamp(int64_t v)
{
    return v < 0 ? 0 : v > RD_NUM_MAX ? RD_NUM_MAX : v;
}

/* ---- connection ---- */

static void rd_drop(struct store_redis *r)
{
    if (r->c != NULL)
        redisFree(r->c);
    r->c = NULL;
}

/* Runs cmd on the connection; NULL (and the connection dropped) on an I/O error. */
static redisReply *rd_call(struct store_redis *r, struct rd_cmd *cmd)
{
    redisReply *reply = redisCommandArgv(r->c, cmd->argc, cmd->argv, cmd->len);

    if (reply == NULL)
        rd_drop(r);
    return reply;
}

static int rd_set_err(struct store_redis *r, const char *what, const char *why)
{
    snprintf(r->err, sizeof(r->err), "redis %s:%d: %s: %s", r->host, r->port, what, why);
    return WSD_EIO;
}

/* Reads the store's epoch key, making it first when the store has none. */
static int rd_load_key(struct store_redis *r)
{
    uint8_t fresh[STORE_KEY_LEN];
    struct rd_cmd cmd = {0};
    redisReply *reply;
    int rc = WSD_EIO;

    randombytes_buf(fresh, sizeof(fresh));
    rd_str(&cmd, "HSETNX");
    rd_str(&cmd, "wsd:store");
    rd_str(&cmd, "key");
    rd_arg(&cmd, fresh, sizeof(fresh));
    reply = rd_call(r, &cmd);
    if (reply == NULL)
        return WSD_EIO;
    freeReplyObject(reply);
    cmd.argc = 3;
    cmd.argv[0] = "HGET";
    cmd.len[0] = 4;
    reply = rd_call(r, &cmd);
    if (reply == NULL)
        return WSD_EIO;
    if (reply->type == REDIS_REPLY_STRING && reply->len == sizeof(r->key)) {
        memcpy(r->key, reply->str, sizeof(r->key));
        rc = 0;
    }
    freeReplyObject(reply);
    return rc;
}

static int rd_load_scripts(struct store_redis *r)
{
    struct rd_cmd cmd = {0};
    redisReply *reply;
    int rc = 0;

    rd_str(&cmd, "SCRIPT");
    rd_str(&cmd, "LOAD");
    rd_str(&cmd, "");
    for (int i = 0; i < RD_NUM_SCRIPTS && rc == 0; i++) {
        cmd.argv[2] = rd_scripts[i];
        cmd.len[2] = strlen(rd_scripts[i]);
        reply = rd_call(r, &cmd);
        if (reply == NULL)
            return rd_set_err(r, "SCRIPT LOAD", "connection lost");
        if (reply->type == REDIS_REPLY_STRING && reply->len == 40)
            memcpy(r->sha[i], reply->str, 41);
        else
            rc = rd_set_err(r, "SCRIPT LOAD", reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                              : "bad reply");
        freeReplyObject(reply);
    }
    return rc;
}

static int rd_select(struct store_redis *r)
{
    char db[16];
    struct rd_cmd cmd = {0};
    redisReply *reply;
    int rc = 0;

    if (r->db == 0)
        return 0;
    snprintf(db, sizeof(db), "%d", r->db);
    rd_str(&cmd, "SELECT");
    rd_str(&cmd, db);
    reply = rd_call(r, &cmd);
    if (reply == NULL)
        return rd_set_err(r, "SELECT", "connection lost");
    if (reply->type == REDIS_REPLY_ERROR)
        rc = rd_set_err(r, "SELECT", reply->str);
    freeReplyObject(reply);
    return rc;
}

static int rd_connect(struct store_redis *r)
{
    struct timeval tv = {.tv_sec = RD_TIMEOUT_MS / 1000,
                         .tv_usec = RD_TIMEOUT_MS % 1000 * 1000};
    int rc;

    r->next_connect_ms = clock_mono_ms() + RD_RECONNECT_MS;
    r->c = redisConnectWithTimeout(r->host, r->port, tv);
    if (r->c == NULL || r->c->err != 0) {
        rd_set_err(r, "connect", r->c != NULL ? r->c->errstr : "out of memory");
        rd_drop(r);
        return WSD_EIO;
    }
    if (redisSetTimeout(r->c, tv) != REDIS_OK || redisEnableKeepAlive(r->c) != REDIS_OK) {
        rd_drop(r);
        return rd_set_err(r, "setsockopt", strerror(errno));
    }
    rc = rd_select(r);
    if (rc == 0)
        rc = rd_load_scripts(r);
    if (rc == 0 && rd_load_key(r) < 0)
        rc = rd_set_err(r, "wsd:store", "cannot read the store key");
    if (rc < 0)
        rd_drop(r);
    return rc;
}

/*
 * True when the idle connection was closed by the server (a restart) or has bytes nobody
 * asked for: it must not carry the next command.
 */
static bool rd_is_stale(const redisContext *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};

    return poll(&p, 1, 0) > 0;
}

/* Connected, or reconnected now when the last attempt is RD_RECONNECT_MS old. */
static int rd_ensure(struct store_redis *r)
{
    if (r->c != NULL && !rd_is_stale(r->c))
        return 0;
    rd_drop(r);
    if (clock_mono_ms() < r->next_connect_ms)
        return WSD_EIO;
    return rd_connect(r);
}

/* Sends n commands in one round trip; replies[i] set (caller frees) or WSD_EIO. */
static int rd_pipeline(struct store_redis *r, struct rd_cmd *cmds, size_t n,
                       redisReply **replies)
{
    size_t i, got = 0;
    void *reply;

    for (i = 0; i < n; i++)
        replies[i] = NULL;
    if (rd_ensure(r) < 0)
        return WSD_EIO;
    for (i = 0; i < n; i++)
        if (redisAppendCommandArgv(r->c, cmds[i].argc, cmds[i].argv, cmds[i].len) != REDIS_OK)
            break;
    for (; i == n && got < n; got++) {
        if (redisGetReply(r->c, &reply) != REDIS_OK)
            break;
        replies[got] = reply;
    }
    if (got == n)
        return 0;
    for (i = 0; i < got; i++)
        freeReplyObject(replies[i]);
    rd_drop(r);
    return WSD_EIO;
}

/* One command, now. Returns 0 with *reply (caller frees), or WSD_EIO. */
static int rd_run(struct store_redis *r, struct rd_cmd *cmd, redisReply **reply)
{
    return rd_pipeline(r, cmd, 1, reply);
}

/* ---- batches ---- */

static void rd_clear_queue(struct store_redis *r)
{
    for (size_t i = 0; i < r->num_queued; i++)
        redisFreeCommand(r->queued[i]);
    r->num_queued = 0;
}

/* A write: queued in a batch, else run now. Returns 0, WSD_EIO, WSD_ENOMEM. */
static int rd_write(struct store_redis *r, struct rd_cmd *cmd)
{
    redisReply *reply;
    char *fmt, **grown;
    size_t *grown_len;
    int rc, len;

    if (!r->in_batch) {
        rc = rd_run(r, cmd, &reply);
        if (rc < 0)
            return rc;
        rc = reply->type == REDIS_REPLY_ERROR ? WSD_EIO : 0;
        freeReplyObject(reply);
        return rc;
    }
    if (r->num_queued == r->cap_queued) {
        size_t cap = r->cap_queued != 0 ? 2 * r->cap_queued : 16;
        grown = realloc(r->queued, cap * sizeof(*grown));
        if (grown == NULL)
            return WSD_ENOMEM;
        r->queued = grown;
        grown_len = realloc(r->queued_len, cap * sizeof(*grown_len));
        if (grown_len == NULL)
            return WSD_ENOMEM;
        r->queued_len = grown_len;
        r->cap_queued = cap;
    }
    len = redisFormatCommandArgv(&fmt, cmd->argc, cmd->argv, cmd->len);
    if (len < 0)
        return WSD_ENOMEM;
    r->queued[r->num_queued] = fmt;
    r->queued_len[r->num_queued++] = (size_t)len;
    return 0;
}

static int rd_batch_begin(struct store *s)
{
    struct store_redis *r = rd_of(s);

    if (r->in_batch)
        return WSD_EINVAL;
    if (rd_ensure(r) < 0)
        return WSD_EIO;
    r->in_batch = true;
    return 0;
}

/* Sends the queued commands as one pipeline and reads every reply. */
static int rd_flush_queue(struct store_redis *r)
{
    size_t i, got;
    void *reply;
    int rc = 0;

    if (rd_ensure(r) < 0)
        return WSD_EIO;
    for (i = 0; i < r->num_queued; i++)
        if (redisAppendFormattedCommand(r->c, r->queued[i], r->queued_len[i]) != REDIS_OK)
            break;
    for (got = 0; i == r->num_queued && got < r->num_queued; got++) {
        if (redisGetReply(r->c, &reply) != REDIS_OK)
            break;
        if (((redisReply *)reply)->type == REDIS_REPLY_ERROR)
            rc = WSD_EIO;
        freeReplyObject(reply);
    }
    if (got < r->num_queued) {
        rd_drop(r);
        rc = WSD_EIO;
    }
    return rc;
}

static int rd_batch_commit(struct store *s)
{
    struct store_redis *r = rd_of(s);
    int rc = 0;

    if (!r->in_batch)
        return 0;
    r->in_batch = false;
    if (r->num_queued > 0)
        rc = rd_flush_queue(r);
    rd_clear_queue(r);
    return rc;
}

static void rd_batch_abort(struct store *s)
{
    struct store_redis *r = rd_of(s);

    r->in_batch = false;
    rd_clear_queue(r);
}

/* ---- appends ---- */

static int rd_pack(struct store_redis *r, const struct store_msg *msg, size_t *len)
{
    uint8_t *grown;

    *len = store_pack_len(msg);
    if (*len > r->pack_cap) {
        grown = realloc(r->pack, *len);
        if (grown == NULL)
            return WSD_ENOMEM;
        r->pack = grown;
        r->pack_cap = *len;
    }
    store_pack(msg, r->pack);
    return 0;
}

/* Parses the append script's reply {duplicate, offset}. */
static int rd_append_result(const redisReply *reply, uint64_t *offset, bool *duplicate)
{
    const redisReply *flag, *off;
    char *end;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
        return WSD_EIO;
    flag = reply->element[0];
    off = reply->element[1];
    if (flag->type != REDIS_REPLY_INTEGER || off->type != REDIS_REPLY_STRING)
        return WSD_EIO;
    errno = 0;
    *offset = strtoull(off->str, &end, 10);
    if (errno != 0 || end == off->str || *end != '\0' || *offset == 0)
        return WSD_EIO;
    *duplicate = flag->integer == 1;
    return 0;
}

/* Runs a script by its digest, by its text when the server lost it. */
static int rd_eval(struct store_redis *r, enum rd_script which, struct rd_cmd *cmd,
                   redisReply **reply)
{
    int rc;

    cmd->argv[0] = "EVALSHA";
    cmd->len[0] = 7;
    cmd->argv[1] = r->sha[which];
    cmd->len[1] = 40;
    rc = rd_run(r, cmd, reply);
    if (rc < 0 || (*reply)->type != REDIS_REPLY_ERROR || strncmp((*reply)->str, "NOSCRIPT", 8))
        return rc;
    freeReplyObject(*reply);
    cmd->argv[0] = "EVAL";
    cmd->len[0] = 4;
    cmd->argv[1] = rd_scripts[which];
    cmd->len[1] = strlen(rd_scripts[which]);
    return rd_run(r, cmd, reply);
}

/* Keys and numbers of one append, kept alive while its command is used. */
struct rd_append_args {
    char meta[RD_KEY_MAX], stream[RD_KEY_MAX], dedup[RD_KEY_MAX], user[RD_KEY_MAX];
    char ts[24], win[24], max[24], ttl[24], dmax[24];
    char epoch[STORE_EPOCH_LEN + 1];
};

static void rd_append_cmd(struct store_redis *r, struct rd_append_args *a, struct rd_cmd *cmd,
                          const char *ch, const struct store_retention *ret,
                          const char *dedup_key, int64_t window_ms, const struct store_msg *msg,
                          size_t packed_len)
{
    bool dedup = dedup_key != NULL && window_ms > 0;

    snprintf(a->ts, sizeof(a->ts), "%" PRId64, msg->ts_ms);
    snprintf(a->win, sizeof(a->win), "%" PRId64, dedup ? rd_clamp(window_ms) : 0);
    snprintf(a->max, sizeof(a->max), "%" PRIu64,
             ret->max_messages > RD_NUM_MAX ? (uint64_t)RD_NUM_MAX : ret->max_messages);
    snprintf(a->ttl, sizeof(a->ttl), "%" PRId64, rd_clamp(ret->ttl_ms));
    store_epoch_derive(r->key, ch, a->epoch);
    size_t ulen = dedup ? store_dedup_key_user_len(dedup_key, strlen(dedup_key)) : 0;
    char upart[STORE_DEDUP_KEY_MAX + 1];
    snprintf(upart, sizeof(upart), "%.*s", (int)ulen, ulen ? dedup_key : "");
    snprintf(a->dmax, sizeof(a->dmax), "%" PRIu32, r->base.dedup_max);
    cmd->argc = 2; /* EVALSHA digest, set by rd_eval */
    rd_str(cmd, "6");
    rd_str(cmd, rd_key(a->meta, "wsd:meta:", ch));
    rd_str(cmd, rd_key(a->stream, "wsd:ch:", ch));
    rd_str(cmd, rd_key(a->dedup, "wsd:dd:", dedup ? dedup_key : ""));
    rd_str(cmd, "wsd:exp");
    rd_str(cmd, "wsd:store");
    rd_str(cmd, rd_key(a->user, "wsd:ddu:", upart));
    rd_str(cmd, ch);
    rd_str(cmd, a->ts);
    rd_str(cmd, a->win);
    rd_str(cmd, a->max);
    rd_str(cmd, a->ttl);
    rd_str(cmd, a->epoch);
    rd_arg(cmd, r->pack, packed_len);
    rd_str(cmd, a->dmax);
    rd_str(cmd, ulen ? dedup_key : "");
}

static int rd_append(struct store *s, const char *channel, const struct store_retention *ret,
                     const char *dedup_key, int64_t dedup_window_ms, struct store_msg *msg,
                     uint64_t *offset, bool *duplicate)
{
    struct store_redis *r = rd_of(s);
    struct rd_append_args a;
    struct rd_cmd cmd;
    redisReply *reply;
    size_t len;
    int rc = rd_pack(r, msg, &len);

    for (int tries = 0; rc == 0 && tries < 2; tries++) {
        rd_append_cmd(r, &a, &cmd, channel, ret, dedup_key, dedup_window_ms, msg, len);
        rc = rd_eval(r, RD_APPEND, &cmd, &reply);
        if (rc < 0)
            break;
        if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "WSDNOSTORE", 10) == 0) {
            freeReplyObject(reply);
            rc = rd_load_key(r); /* the server lost its data: new epochs from here on */
            if (rc == 0 && tries == 1)
                rc = WSD_EIO;
            continue;
        }
        rc = rd_append_result(reply, offset, duplicate);
        freeReplyObject(reply);
        break;
    }
    if (rc == 0)
        msg->offset = *offset;
    return rc;
}

static int rd_ack(struct store *s, const char *channel, uint64_t offset)
{
    struct store_redis *r = rd_of(s);
    char key[RD_KEY_MAX], id[32];
    struct rd_cmd cmd = {0};

    rd_str(&cmd, "XTRIM");
    rd_str(&cmd, rd_key(key, "wsd:ch:", channel));
    if (offset >= UINT64_MAX - 1) {
        rd_str(&cmd, "MAXLEN");
        rd_str(&cmd, "0");
    } else {
        snprintf(id, sizeof(id), "%" PRIu64 "-0", offset + 1);
        rd_str(&cmd, "MINID");
        rd_str(&cmd, id);
    }
    return rd_write(r, &cmd);
}

/* ---- reads ---- */

/* The offset of a stream id "<offset>-0", 0 when it is not one. */
static uint64_t rd_id_offset(const redisReply *id)
{
    char *end;
    uint64_t off;

    if (id->type != REDIS_REPLY_STRING)
        return 0;
    errno = 0;
    off = strtoull(id->str, &end, 10);
    return errno == 0 && end != id->str && strcmp(end, "-0") == 0 ? off : 0;
}

static int rd_channel_info_parse(struct store_redis *r, const char *channel,
                                 redisReply **rep, struct store_channel_info *out)
{
    const redisReply *last, *epoch;
    bool have_key = rep[2]->type == REDIS_REPLY_STRING && rep[2]->len == STORE_KEY_LEN;

    if (rep[0]->type != REDIS_REPLY_ARRAY || rep[0]->elements != 2 ||
        rep[1]->type != REDIS_REPLY_ARRAY)
        return WSD_EIO;
    last = rep[0]->element[0];
    epoch = rep[0]->element[1];
    out->last_offset = last->type == REDIS_REPLY_STRING ? strtoull(last->str, NULL, 10) : 0;
    out->first_offset = 0;
    if (rep[1]->elements > 0 && rep[1]->element[0]->type == REDIS_REPLY_ARRAY &&
        rep[1]->element[0]->elements == 2)
        out->first_offset = rd_id_offset(rep[1]->element[0]->element[0]);
    if (epoch->type == REDIS_REPLY_STRING && epoch->len == STORE_EPOCH_LEN) {
        memcpy(out->epoch, epoch->str, STORE_EPOCH_LEN);
        out->epoch[STORE_EPOCH_LEN] = '\0';
        return 0;
    }
    if (have_key)
        memcpy(r->key, rep[2]->str, STORE_KEY_LEN);
    else if (rd_load_key(r) < 0)
        return WSD_EIO;
    store_epoch_derive(r->key, channel, out->epoch);
    return 0;
}

static int rd_channel_info(struct store *s, const char *channel, struct store_channel_info *out)
{
    struct store_redis *r = rd_of(s);
    char meta[RD_KEY_MAX], stream[RD_KEY_MAX];
    struct rd_cmd cmds[3] = {{0}};
    redisReply *rep[3];
    int rc;

    rd_str(&cmds[0], "HMGET");
    rd_str(&cmds[0], rd_key(meta, "wsd:meta:", channel));
    rd_str(&cmds[0], "last");
    rd_str(&cmds[0], "epoch");
    rd_str(&cmds[1], "XRANGE");
    rd_str(&cmds[1], rd_key(stream, "wsd:ch:", channel));
    rd_str(&cmds[1], "-");
    rd_str(&cmds[1], "+");
    rd_str(&cmds[1], "COUNT");
    rd_str(&cmds[1], "1");
    rd_str(&cmds[2], "HGET");
    rd_str(&cmds[2], "wsd:store");
    rd_str(&cmds[2], "key");
    rc = rd_pipeline(r, cmds, 3, rep);
    if (rc < 0)
        return rc;
    rc = rd_channel_info_parse(r, channel, rep, out);
    for (int i = 0; i < 3; i++)
        freeReplyObject(rep[i]);
    return rc;
}

/* The packed message of a stream entry [id, [field, value, ...]], as msg. */
static int rd_entry_msg(const redisReply *e, struct store_msg *msg, uint64_t *off)
{
    const redisReply *f;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
        return WSD_EIO;
    *off = rd_id_offset(e->element[0]);
    f = e->element[1];
    if (*off == 0 || f->type != REDIS_REPLY_ARRAY)
        return WSD_EIO;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, "v") == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING)
            return store_unpack((const uint8_t *)f->element[i + 1]->str,
                                f->element[i + 1]->len, *off, msg) < 0
                       ? WSD_EIO
                       : 0;
    }
    return WSD_EIO;
}

/* Delivers one XRANGE reply. Sets *next past its last entry; *end when it was short. */
static int rd_read_chunk(const redisReply *reply, size_t want, int64_t ttl_ms, int64_t now_ms,
                         size_t *n, uint64_t *next, bool *end, store_msg_fn fn, void *ctx)
{
    struct store_msg msg;
    uint64_t off;
    int rc;

    if (reply->type != REDIS_REPLY_ARRAY)
        return WSD_EIO;
    *end = reply->elements < want;
    for (size_t i = 0; i < reply->elements; i++) {
        if (rd_entry_msg(reply->element[i], &msg, &off) < 0)
            return WSD_EIO;
        *next = off + 1;
        if (store_is_expired(msg.ts_ms, ttl_ms, now_ms))
            continue;
        (*n)++;
        rc = fn(ctx, &msg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int rd_read_ttl(struct store_redis *r, const char *channel, int64_t *ttl_ms)
{
    char meta[RD_KEY_MAX];
    struct rd_cmd cmd = {0};
    redisReply *reply;
    int rc;

    rd_str(&cmd, "HGET");
    rd_str(&cmd, rd_key(meta, "wsd:meta:", channel));
    rd_str(&cmd, "ttl");
    rc = rd_run(r, &cmd, &reply);
    if (rc < 0)
        return rc;
    if (reply->type == REDIS_REPLY_STRING)
        *ttl_ms = strtoll(reply->str, NULL, 10);
    else if (reply->type == REDIS_REPLY_NIL)
        rc = WSD_ENOENT;
    else
        rc = WSD_EIO;
    freeReplyObject(reply);
    return rc;
}

static int rd_read(struct store *s, const char *channel, uint64_t after, size_t max,
                   int64_t now_ms, store_msg_fn fn, void *ctx)
{
    struct store_redis *r = rd_of(s);
    char stream[RD_KEY_MAX], start[32], count[24];
    struct rd_cmd cmd = {0};
    redisReply *reply;
    uint64_t next = after + 1;
    int64_t ttl_ms;
    size_t n = 0, want;
    bool end = false;
    int rc = rd_read_ttl(r, channel, &ttl_ms);

    if (rc < 0 || after == UINT64_MAX)
        return rc == WSD_ENOENT ? 0 : rc;
    rd_str(&cmd, "XRANGE");
    rd_str(&cmd, rd_key(stream, "wsd:ch:", channel));
    rd_arg(&cmd, start, 0); /* lengths set per chunk */
    rd_str(&cmd, "+");
    rd_str(&cmd, "COUNT");
    rd_arg(&cmd, count, 0);
    while (rc == 0 && !end && n < max) {
        want = WSD_MIN(max - n, (size_t)RD_READ_CHUNK);
        cmd.len[2] = (size_t)snprintf(start, sizeof(start), "%" PRIu64 "-0", next);
        cmd.len[5] = (size_t)snprintf(count, sizeof(count), "%zu", want);
        rc = rd_run(r, &cmd, &reply);
        if (rc < 0)
            break;
        rc = rd_read_chunk(reply, want, ttl_ms, now_ms, &n, &next, &end, fn, ctx);
        freeReplyObject(reply);
    }
    return rc;
}

/* ---- sessions ---- */

static int rd_session_put(struct store *s, const char *session_id, const uint8_t *blob,
                          size_t len, int64_t expires_ms)
{
    struct store_redis *r = rd_of(s);
    char key[RD_KEY_MAX], at[24];
    struct rd_cmd cmd = {0};
    uint8_t *val = malloc(8 + len);
    int rc;

    if (val == NULL)
        return WSD_ENOMEM;
    for (int i = 0; i < 8; i++)
        val[i] = (uint8_t)((uint64_t)expires_ms >> (8 * i));
    if (len > 0)
        memcpy(val + 8, blob, len);
    snprintf(at, sizeof(at), "%" PRId64, expires_ms > 0 ? expires_ms : 1);
    rd_str(&cmd, "SET");
    rd_str(&cmd, rd_key(key, "wsd:sess:", session_id));
    rd_arg(&cmd, val, 8 + len);
    rd_str(&cmd, "PXAT");
    rd_str(&cmd, at);
    rc = rd_write(r, &cmd);
    free(val);
    return rc;
}

static int rd_session_get(struct store *s, const char *session_id, uint8_t *buf, size_t cap,
                          int64_t now_ms)
{
    struct store_redis *r = rd_of(s);
    char key[RD_KEY_MAX];
    struct rd_cmd cmd = {0};
    redisReply *reply;
    uint64_t exp = 0;
    size_t len;
    int rc;

    rd_str(&cmd, "GET");
    rd_str(&cmd, rd_key(key, "wsd:sess:", session_id));
    rc = rd_run(r, &cmd, &reply);
    if (rc < 0)
        return rc;
    if (reply->type == REDIS_REPLY_NIL)
        rc = WSD_ENOENT;
    else if (reply->type != REDIS_REPLY_STRING || reply->len < 8)
        rc = WSD_EIO;
    for (int i = 0; rc == 0 && i < 8; i++)
        exp |= (uint64_t)(uint8_t)reply->str[i] << (8 * i);
    len = rc == 0 ? reply->len - 8 : 0;
    if (rc == 0 && now_ms >= (int64_t)exp)
        rc = WSD_ENOENT;
    else if (rc == 0 && len > cap)
        rc = WSD_ETOOBIG;
    if (rc == 0 && len > 0)
        memcpy(buf, reply->str + 8, len);
    freeReplyObject(reply);
    return rc == 0 ? (int)len : rc;
}

static int rd_session_del(struct store *s, const char *session_id)
{
    struct store_redis *r = rd_of(s);
    char key[RD_KEY_MAX];
    struct rd_cmd cmd = {0};

    rd_str(&cmd, "DEL");
    rd_str(&cmd, rd_key(key, "wsd:sess:", session_id));
    return rd_write(r, &cmd);
}

/* ---- expiry ---- */

static int rd_expire_channel(struct store_redis *r, const char *channel, const char *now,
                             size_t budget, size_t *removed)
{
    char meta[RD_KEY_MAX], stream[RD_KEY_MAX], left[24];
    struct rd_cmd cmd = {.argc = 2};
    redisReply *reply;
    int rc;

    snprintf(left, sizeof(left), "%zu", budget);
    rd_str(&cmd, "3");
    rd_str(&cmd, rd_key(meta, "wsd:meta:", channel));
    rd_str(&cmd, rd_key(stream, "wsd:ch:", channel));
    rd_str(&cmd, "wsd:exp");
    rd_str(&cmd, channel);
    rd_str(&cmd, now);
    rd_str(&cmd, left);
    rc = rd_eval(r, RD_EXPIRE, &cmd, &reply);
    if (rc < 0)
        return rc;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0)
        *removed += (size_t)reply->integer;
    else
        rc = WSD_EIO;
    freeReplyObject(reply);
    return rc;
}

static int rd_expire(struct store *s, int64_t now_ms, size_t budget)
{
    struct store_redis *r = rd_of(s);
    char now[24], limit[24];
    struct rd_cmd cmd = {0};
    redisReply *due;
    size_t removed = 0;
    int rc;

    snprintf(now, sizeof(now), "%" PRId64, now_ms);
    snprintf(limit, sizeof(limit), "%zu", budget);
    rd_str(&cmd, "ZRANGEBYSCORE");
    rd_str(&cmd, "wsd:exp");
    rd_str(&cmd, "-inf");
    rd_str(&cmd, now);
    rd_str(&cmd, "LIMIT");
    rd_str(&cmd, "0");
    rd_str(&cmd, limit);
    rc = rd_run(r, &cmd, &due);
    if (rc < 0)
        return rc;
    if (due->type != REDIS_REPLY_ARRAY)
        rc = WSD_EIO;
    for (size_t i = 0; rc == 0 && i < due->elements && removed < budget; i++) {
        const redisReply *ch = due->element[i];
        if (ch->type == REDIS_REPLY_STRING && store_channel_len(ch->str) == ch->len)
            rc = rd_expire_channel(r, ch->str, now, budget - removed, &removed);
    }
    freeReplyObject(due);
    return rc < 0 ? rc : (int)removed;
}

/* ---- open and close ---- */

static bool rd_is_available(struct store *s)
{
    return rd_ensure(rd_of(s)) == 0;
}

static void rd_close(struct store *s)
{
    struct store_redis *r = rd_of(s);

    rd_batch_abort(s);
    rd_drop(r);
    free(r->queued);
    free(r->queued_len);
    free(r->pack);
    free(r);
}

/* Parses a decimal in [min, max] ending at end (or at a NUL when end is NULL). */
static bool rd_parse_num(const char *p, const char *end, long min, long max, int *out)
{
    char *stop;
    long v;

    if (*p < '0' || *p > '9')
        return false;
    errno = 0;
    v = strtol(p, &stop, 10);
    if (errno != 0 || v < min || v > max || (end != NULL ? stop != end : *stop != '\0'))
        return false;
    *out = (int)v;
    return true;
}

/* "HOST:PORT[/DB]" or "[V6]:PORT[/DB]" into r. */
static int rd_parse_addr(struct store_redis *r, const char *addr)
{
    const char *host = addr, *host_end, *colon, *slash = strchr(addr, '/');

    if (*addr == '[') {
        host = addr + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':')
            return WSD_EINVAL;
        colon = host_end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || (slash != NULL && colon > slash))
            return WSD_EINVAL;
        host_end = colon;
    }
    if (host_end == host || (size_t)(host_end - host) >= sizeof(r->host))
        return WSD_EINVAL;
    memcpy(r->host, host, (size_t)(host_end - host));
    r->host[host_end - host] = '\0';
    if (!rd_parse_num(colon + 1, slash, 1, 65535, &r->port))
        return WSD_EINVAL;
    if (slash != NULL && !rd_parse_num(slash + 1, NULL, 0, INT_MAX, &r->db))
        return WSD_EINVAL;
    return 0;
}

int store_redis_open(const char *addr, const struct store_options *opt, struct store **out,
                     char *err, size_t cap)
{
    struct store_redis *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (r == NULL)
        return WSD_ENOMEM;
    r->base.ops = &rd_ops;
    if (rd_parse_addr(r, addr) < 0) {
        snprintf(err, cap, "store redis://%s: expected redis://HOST:PORT[/DB]", addr);
        free(r);
        return WSD_EINVAL;
    }
    rc = rd_connect(r);
    if (rc < 0 && !opt->lazy_connect) {
        snprintf(err, cap, "%s", r->err);
        free(r);
        return rc;
    }
    *out = &r->base;
    return 0;
}

static const struct store_ops rd_ops = {
    .close = rd_close,
    .is_available = rd_is_available,
    .batch_begin = rd_batch_begin,
    .append = rd_append,
    .ack = rd_ack,
    .batch_commit = rd_batch_commit,
    .batch_abort = rd_batch_abort,
    .channel_info = rd_channel_info,
    .read = rd_read,
    .session_put = rd_session_put,
    .session_get = rd_session_get,
    .session_del = rd_session_del,
    .expire = rd_expire,
};
