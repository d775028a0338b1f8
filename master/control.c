/* control.c - the master's control socket: operator actions for wsctl. */
#include "master/control.h"
#include "core/audit.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/wsd.h"
#include "master/master.h"
#include "master/workers.h"
#include "proto/json.h"
#include "shm/conn_table.h"
#include "shm/delivery.h"
#include "shm/names.h"
#include "shm/ring.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* Members of a request, as bits of control_req.fields. */
#define F_CMD 0x01u
#define F_CONN 0x02u
#define F_USER 0x04u
#define F_GROUP 0x08u
#define F_ALL 0x10u
#define F_CODE 0x20u
#define F_DATA 0x40u

#define CONTROL_ERR_LEN 640

struct control_req {
    unsigned fields;
    char cmd[16];
    uint64_t conn;
    uint32_t code;
    char user[NAMES_NAME_MAX + 1];
    size_t user_len;
    char group[NAMES_NAME_MAX + 1];
    size_t group_len;
    const uint8_t *data; /* the raw JSON value, in the request line */
    size_t data_len;
};

/* Who asked, for the audit lines. */
struct control_peer {
    unsigned uid;
    int pid;
};

/* The command being answered: its outcome is written to the audit log once, by the
 * first reply (control_outcome). */
static struct {
    const struct control_req *req;
    const struct control_peer *peer;
} answering;

/* A reply being built: {"ok":true,...}; err is sticky. */
struct control_reply {
    struct buf b;
    int err;
};

static int control_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return WSD_ETOOBIG;
    strcpy(sa->sun_path, path);
    return 0;
}

/* True when a live process accepts connections on path. */
static bool control_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return false;
    bool live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return live;
}

int control_open(struct master *m, char *err, size_t cap)
{
    const char *path = m->cfg->control_socket;
    struct sockaddr_un sa;
    if (path == NULL || path[0] == '\0')
        return 0;
    if (control_addr(path, &sa) < 0) {
        snprintf(err, cap, "control socket path too long: %s", path);
        return WSD_EIO;
    }
    if (control_is_live(&sa)) {
        snprintf(err, cap, "another wsd is running with control socket %s", path);
        return WSD_EIO;
    }
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, cap, "socket(AF_UNIX) failed: %s", strerror(errno));
        return WSD_EIO;
    }
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc == -1 || listen(fd, 16) == -1) {
        snprintf(err, cap, "cannot create control socket %s: %s", path, strerror(errno));
        close(fd);
        return WSD_EIO;
    }
    chmod(path, 0600);
    m->control_fd = fd;
    return 0;
}

void control_close(struct master *m)
{
    if (m->control_fd < 0)
        return;
    close(m->control_fd);
    m->control_fd = -1;
    unlink(m->cfg->control_socket);
}

bool control_code_is_valid(uint32_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* ---- replies ---- */

static void control_send(int fd, const void *p, size_t len)
{
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    (void)n; /* a client that went away gets nothing */
}

static void control_send_str(int fd, const char *s)
{
    control_send(fd, s, strlen(s));
}

static void reply_put(struct control_reply *r, const char *s)
{
    if (r->err == 0)
        r->err = buf_append(&r->b, s, strlen(s));
}

static void reply_begin(struct control_reply *r)
{
    buf_init(&r->b);
    r->err = 0;
    reply_put(r, "{\"ok\":true");
}

static void reply_key(struct control_reply *r, const char *key)
{
    reply_put(r, ",\"");
    reply_put(r, key);
    reply_put(r, "\":");
}

static void reply_u64(struct control_reply *r, const char *key, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    reply_key(r, key);
    reply_put(r, num);
}

static void reply_str(struct control_reply *r, const char *key, const char *s, size_t len)
{
    reply_key(r, key);
    if (r->err == 0)
        r->err = json_write_string(&r->b, s, len);
}

/* Appends the slots whose bit is set in mask as a JSON array. */
static void reply_slots(struct control_reply *r, const char *key, uint64_t mask)
{
    reply_key(r, key);
    reply_put(r, "[");
    const char *sep = "";
    for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++) {
        if ((mask & (UINT64_C(1) << i)) == 0)
            continue;
        char num[16];
        snprintf(num, sizeof(num), "%s%u", sep, i);
        reply_put(r, num);
        sep = ",";
    }
    reply_put(r, "]");
}

/* The audit line of the command being answered: who, what, and how it went. */
static void control_outcome(bool ok, const char *error)
{
    const struct control_req *q = answering.req;
    if (q == NULL)
        return;
    answering.req = NULL;
    if (!audit_begin("operator"))
        return;
    audit_str("action", q->cmd);
    audit_u64("uid", answering.peer->uid);
    audit_i64("pid", answering.peer->pid);
    if (q->fields & F_CONN)
        audit_u64("conn", q->conn);
    if (q->fields & F_USER)
        audit_strn("user", q->user, q->user_len);
    if (q->fields & F_GROUP)
        audit_strn("group", q->group, q->group_len);
    if (q->fields & F_ALL)
        audit_bool("all", true);
    if (q->fields & F_CODE)
        audit_u64("code", q->code);
    if (q->fields & F_DATA)
        audit_u64("bytes", q->data_len);
    audit_bool("ok", ok);
    if (!ok)
        audit_str("error", error);
    audit_end();
}

static void reply_finish(int fd, struct control_reply *r)
{
    control_outcome(r->err == 0, "out of memory");
    reply_put(r, "}\n");
    if (r->err == 0)
        control_send(fd, r->b.data, r->b.len);
    else
        control_send_str(fd, "{\"ok\":false,\"error\":\"out of memory\"}\n");
    buf_fini(&r->b);
}

static void control_fail(int fd, const char *fmt, ...) WSD_PRINTF(2, 3);

/* Replies {"ok":false,"error":"..."} with the formatted reason. */
static void control_fail(int fd, const char *fmt, ...)
{
    char msg[CONTROL_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    control_outcome(false, msg);
    static const char head[] = "{\"ok\":false,\"error\":";
    struct buf b;
    buf_init(&b);
    int rc = buf_append(&b, head, strlen(head));
    if (rc == 0 && json_write_string(&b, msg, strlen(msg)) < 0) {
        b.len = strlen(head); /* a reason cut inside a UTF-8 sequence: keep it ASCII */
        rc = buf_append(&b, "\"invalid request\"", strlen("\"invalid request\""));
    }
    if (rc == 0)
        rc = buf_append(&b, "}\n", 2);
    if (rc == 0)
        control_send(fd, b.data, b.len);
    buf_fini(&b);
}

/* ---- request parsing ---- */

static bool key_is(const struct json_value *k, const char *lit)
{
    return json_str_equal_lit(k->p + 1, k->len - 2, (k->flags & JSON_F_ESCAPED) != 0, lit,
                              strlen(lit));
}

/* Decodes a name member (user id, group): a string of 1..NAMES_NAME_MAX bytes, no NUL. */
static int control_name(const struct json_value *v, const char *what, char *out,
                        size_t *out_len, char *err, size_t cap)
{
    long n = v->type == JSON_STRING ? json_string_decode(v, (uint8_t *)out, NAMES_NAME_MAX)
                                    : WSD_EINVAL;
    if (n == WSD_ETOOBIG || (n >= 0 && v->str_len > NAMES_NAME_MAX)) {
        snprintf(err, cap, "%s longer than %d bytes", what, NAMES_NAME_MAX);
        return WSD_EINVAL;
    }
    if (n <= 0 || memchr(out, '\0', (size_t)n) != NULL) {
        snprintf(err, cap, "%s must be a non-empty string without NUL", what);
        return WSD_EINVAL;
    }
    out[n] = '\0';
    *out_len = (size_t)n;
    return 0;
}

static int control_cmd_member(struct control_req *r, const struct json_value *v, char *err,
                              size_t cap)
{
    long n = v->type == JSON_STRING
                 ? json_string_decode(v, (uint8_t *)r->cmd, sizeof(r->cmd) - 1)
                 : WSD_EINVAL;
    if (n < 0) {
        snprintf(err, cap, "unknown command");
        return WSD_EINVAL;
    }
    r->cmd[n] = '\0';
    return 0;
}

static int control_number(const struct json_value *v, const char *what, uint64_t *out,
                          char *err, size_t cap)
{
    if (v->type != JSON_NUMBER || json_number_u64(v, out) < 0) {
        snprintf(err, cap, "%s must be a non-negative integer", what);
        return WSD_EINVAL;
    }
    return 0;
}

/* One member of the request object. */
static int control_member(struct control_req *r, const struct json_value *k,
                          const struct json_value *v, char *err, size_t cap)
{
    static const struct {
        const char *name;
        unsigned bit;
    } keys[] = {{"cmd", F_CMD},     {"conn", F_CONN}, {"user", F_USER}, {"group", F_GROUP},
                {"all", F_ALL},     {"code", F_CODE}, {"data", F_DATA}};
    unsigned bit = 0;
    for (size_t i = 0; i < WSD_ARRAY_LEN(keys) && bit == 0; i++)
        bit = key_is(k, keys[i].name) ? keys[i].bit : 0;
    if (bit == 0 || (r->fields & bit)) {
        snprintf(err, cap, "%s", bit ? "a field is given twice" : "unknown field in the request");
        return WSD_EINVAL;
    }
    r->fields |= bit;
    uint64_t num = 0;
    switch (bit) {
    case F_CMD: return control_cmd_member(r, v, err, cap);
    case F_CONN: return control_number(v, "conn", &r->conn, err, cap);
    case F_USER: return control_name(v, "user", r->user, &r->user_len, err, cap);
    case F_GROUP: return control_name(v, "group", r->group, &r->group_len, err, cap);
    case F_CODE:
        if (control_number(v, "code", &num, err, cap) < 0 || num > UINT16_MAX ||
            !control_code_is_valid((uint32_t)num)) {
            snprintf(err, cap, "code must be 1000-1003, 1007-1014 or 3000-4999");
            return WSD_EINVAL;
        }
        r->code = (uint32_t)num;
        return 0;
    case F_ALL:
        if (v->type == JSON_TRUE)
            return 0;
        snprintf(err, cap, "all must be true");
        return WSD_EINVAL;
    default:
        r->data = v->p;
        r->data_len = v->len;
        return 0;
    }
}

/* The bare-word form: "reload" or "stop" alone on the line. */
static int control_parse_word(char *line, struct control_req *r, char *err, size_t cap)
{
    char *save = NULL;
    char *word = strtok_r(line, " \t\r\n", &save);
    if (word == NULL) {
        snprintf(err, cap, "empty request");
        return WSD_EINVAL;
    }
    if (strtok_r(NULL, " \t\r\n", &save) != NULL) {
        snprintf(err, cap, "arguments need the JSON request form");
        return WSD_EINVAL;
    }
    snprintf(r->cmd, sizeof(r->cmd), "%.15s", word);
    r->fields = F_CMD;
    return 0;
}

static int control_parse(char *line, size_t len, struct control_req *r, char *err, size_t cap)
{
    memset(r, 0, sizeof(*r));
    const uint8_t *p = (const uint8_t *)line;
    size_t start = json_skip_ws(p, len, 0);
    if (start == len || p[start] != '{')
        return control_parse_word(line, r, err, cap);
    struct json_value obj, k, v;
    if (json_validate(p, len, &obj) < 0 || obj.type != JSON_OBJECT) {
        snprintf(err, cap, "the request is not a JSON object");
        return WSD_EINVAL;
    }
    struct json_iter it;
    json_iter_init(&it, p, len, &obj, 1);
    int rc;
    while ((rc = json_iter_next(&it, &k, &v)) == 1) {
        if (control_member(r, &k, &v, err, cap) < 0)
            return WSD_EINVAL;
    }
    if (rc < 0 || !(r->fields & F_CMD)) {
        snprintf(err, cap, rc < 0 ? "the request is not a JSON object" : "cmd is missing");
        return WSD_EINVAL;
    }
    return 0;
}

/* ---- actions ---- */

static bool control_only(int fd, const struct control_req *r, unsigned allowed)
{
    if ((r->fields & ~allowed) == 0)
        return true;
    control_fail(fd, "%s does not take that argument", r->cmd);
    return false;
}

static bool control_running(struct master *m, int fd)
{
    if (m->stopping == MASTER_RUNNING)
        return true;
    control_fail(fd, "wsd is shutting down");
    return false;
}

static void control_wake(struct master *m, uint32_t slot)
{
    uint64_t one = 1;
    ssize_t n = write(m->workers[slot].efd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is already huge, the worker is awake anyway */
}

/* Pushes one record (header, channel, mid, data) into worker slot's ring and wakes it. */
static int control_push(struct master *m, uint32_t slot, const struct delivery_hdr *h,
                        const char *ch, const char *mid, const void *data)
{
    struct iovec iov[4] = {
        {.iov_base = (void *)h, .iov_len = sizeof(*h)},
        {.iov_base = (void *)ch, .iov_len = h->ch_len},
        {.iov_base = (void *)mid, .iov_len = h->mid_len},
        {.iov_base = (void *)data, .iov_len = h->data_len},
    };
    int rc = ring_push(shm_seg_ring(&m->seg, slot), h->type, RING_PRODUCER_MASTER, iov, 4);
    if (rc == 0)
        control_wake(m, slot);
    return rc;
}

static void control_reload(struct master *m, int fd, const struct control_peer *peer)
{
    static struct config fresh;
    char err[CONFIG_ERR_LEN];
    config_init(&fresh);
    int rc = m->cfg_path ? config_load(&fresh, m->cfg_path, err)
                         : config_parse(&fresh, "(defaults)", config_default_text, err);
    if (rc == 0)
        rc = config_validate(&fresh, err);
    config_fini(&fresh);
    if (rc < 0) {
        log_msg(LOG_NOTICE, "operator: reload refused uid=%u pid=%d: %s", peer->uid, peer->pid,
                err);
        control_fail(fd, "reload refused, the running configuration stays: %s", err);
        return;
    }
    log_msg(LOG_NOTICE, "operator: reload uid=%u pid=%d", peer->uid, peer->pid);
    _Atomic uint64_t *gen = &m->seg.hdr->config_generation;
    uint64_t before = atomic_load_explicit(gen, memory_order_acquire);
    master_reload(m);
    uint64_t after = atomic_load_explicit(gen, memory_order_acquire);
    if (after == before) { /* refused late (a listener, shutting down): the log says why */
        control_fail(fd, "reload refused, the running configuration stays: see the log");
        return;
    }
    struct control_reply r;
    reply_begin(&r);
    reply_u64(&r, "config_generation", after);
    reply_finish(fd, &r);
}

static void control_stop(struct master *m, int fd, const struct control_peer *peer)
{
    (void)m;
    log_msg(LOG_NOTICE, "operator: stop uid=%u pid=%d", peer->uid, peer->pid);
    control_outcome(true, NULL);
    control_send_str(fd, "{\"ok\":true}\n");
    kill(getpid(), SIGTERM);
}

static void control_kick_conn(struct master *m, int fd, const struct control_req *req,
                              const struct control_peer *peer)
{
    uint32_t code = (req->fields & F_CODE) ? req->code : CONTROL_KICK_CODE;
    struct conn_table_info info;
    int rc = WSD_EAGAIN;
    for (int i = 0; i < 16 && rc == WSD_EAGAIN; i++)
        rc = conn_table_snapshot(&m->seg, conn_table_id_index(req->conn), &info);
    if (rc < 0 || info.id != req->conn) {
        control_fail(fd, "no such connection: %llu", (unsigned long long)req->conn);
        return;
    }
    if (info.state != CONN_TABLE_CONNECTED) {
        control_fail(fd, "connection %llu is not an open WebSocket connection",
                     (unsigned long long)req->conn);
        return;
    }
    if (conn_table_request_close(&m->seg, req->conn, (uint16_t)code) < 0) {
        control_fail(fd, "no such connection: %llu", (unsigned long long)req->conn);
        return;
    }
    log_msg(LOG_NOTICE, "operator: kick conn=%llu worker=%u code=%u uid=%u pid=%d",
            (unsigned long long)req->conn, info.owner, code, peer->uid, peer->pid);
    struct control_reply r;
    reply_begin(&r);
    reply_u64(&r, "conn", req->conn);
    reply_u64(&r, "worker", info.owner);
    reply_u64(&r, "code", code);
    reply_finish(fd, &r);
}

static void control_kick_user(struct master *m, int fd, const struct control_req *req,
                              const struct control_peer *peer)
{
    uint32_t code = (req->fields & F_CODE) ? req->code : CONTROL_KICK_CODE;
    struct names_info info;
    if (names_lookup(m->seg.users, req->user, req->user_len, &info) < 0 || info.total == 0) {
        control_fail(fd, "user %s has no connections", req->user);
        return;
    }
    struct delivery_hdr h = {
        .type = DELIVERY_KICK_USER,
        .ch_len = (uint16_t)req->user_len,
        .close_code = (uint16_t)code,
        .ts_ms = clock_wall_ms(),
    };
    uint64_t done = 0, full = 0;
    for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++) {
        if ((info.worker_mask & (UINT64_C(1) << i)) == 0 || m->workers[i].pid <= 0)
            continue;
        if (control_push(m, i, &h, req->user, "", "") == 0)
            done |= UINT64_C(1) << i;
        else
            full |= UINT64_C(1) << i;
    }
    log_msg(LOG_NOTICE,
            "operator: kick user=%s code=%u connections=%u workers=%#llx full=%#llx "
            "uid=%u pid=%d",
            req->user, code, info.total, (unsigned long long)done, (unsigned long long)full,
            peer->uid, peer->pid);
    if (full != 0) {
        control_fail(fd, "the rings of some workers of user %s are full (mask %#llx): retry",
                     req->user, (unsigned long long)full);
        return;
    }
    struct control_reply r;
    reply_begin(&r);
    reply_str(&r, "user", req->user, req->user_len);
    reply_u64(&r, "connections", info.total);
    reply_slots(&r, "workers", done);
    reply_u64(&r, "code", code);
    reply_finish(fd, &r);
}

static void control_kick(struct master *m, int fd, const struct control_req *req,
                         const struct control_peer *peer)
{
    if (!control_only(fd, req, F_CMD | F_CONN | F_USER | F_CODE) || !control_running(m, fd))
        return;
    if (((req->fields & F_CONN) != 0) == ((req->fields & F_USER) != 0)) {
        control_fail(fd, "kick needs either conn or user");
        return;
    }
    if (req->fields & F_CONN)
        control_kick_conn(m, fd, req, peer);
    else
        control_kick_user(m, fd, req, peer);
}

/* Puts h into the ring of the lowest running worker (a starting one when none runs). */
static int control_push_any(struct master *m, const struct delivery_hdr *h, const char *ch,
                            const char *mid, const void *data, uint32_t *slot)
{
    static const uint32_t states[] = {SHM_SEG_WORKER_RUNNING, SHM_SEG_WORKER_STARTING};
    int rc = WSD_ENOENT;
    for (size_t s = 0; s < WSD_ARRAY_LEN(states); s++) {
        for (uint32_t i = 0; i < SHM_SEG_WORKERS; i++) {
            uint32_t st = atomic_load_explicit(&shm_seg_worker(&m->seg, i)->state,
                                               memory_order_acquire);
            if (m->workers[i].pid <= 0 || st != states[s])
                continue;
            int r = control_push(m, i, h, ch, mid, data);
            if (r == 0) {
                *slot = i;
                return 0;
            }
            rc = r == WSD_ENOSPC || rc == WSD_ENOSPC ? WSD_ENOSPC : r;
        }
    }
    return rc;
}

static const char *control_push_error(int rc)
{
    switch (rc) {
    case WSD_ENOENT: return "no worker is running";
    case WSD_ENOSPC: return "every worker's ring is full: retry";
    case WSD_ETOOBIG: return "data too large for a ring record";
    default: return "cannot queue the message: the ring is broken";
    }
}

/* Connections under the target name now (group members or the user's devices). */
static uint32_t control_online(struct master *m, const struct control_req *req)
{
    struct names_info info = {0};
    if (req->fields & F_GROUP)
        names_lookup(m->seg.groups, req->group, req->group_len, &info);
    else
        names_lookup(m->seg.users, req->user, req->user_len, &info);
    return info.total;
}

static int control_send_check(struct master *m, int fd, const struct control_req *req)
{
    if (!control_only(fd, req, F_CMD | F_ALL | F_GROUP | F_USER | F_DATA) ||
        !control_running(m, fd))
        return WSD_EINVAL;
    unsigned kinds = req->fields & (F_ALL | F_GROUP | F_USER);
    if (kinds == 0 || (kinds & (kinds - 1)) != 0 || !(req->fields & F_DATA)) {
        control_fail(fd, "send needs data and one of all, group or user");
        return WSD_EINVAL;
    }
    if (req->data_len > m->cfg->max_data_size) {
        control_fail(fd, "data of %zu bytes is over max_data_size (%llu)", req->data_len,
                     (unsigned long long)m->cfg->max_data_size);
        return WSD_EINVAL;
    }
    return 0;
}

static void control_system_send(struct master *m, int fd, const struct control_req *req,
                                const struct control_peer *peer)
{
    if (control_send_check(m, fd, req) < 0)
        return;
    const char *kind = (req->fields & F_ALL) ? "all" : (req->fields & F_GROUP) ? "group" : "user";
    const char *target = (req->fields & F_GROUP)  ? req->group
                         : (req->fields & F_USER) ? req->user
                                                  : "";
    struct delivery_hdr h = {
        .type = DELIVERY_SYSTEM,
        .data_enc = 0,
        .flags = DELIVERY_F_SYS,
        .ch_len = (uint16_t)strlen(target),
        .mid_len = (uint16_t)strlen(kind),
        .data_len = (uint32_t)req->data_len,
        .ts_ms = clock_wall_ms(),
    };
    uint32_t slot = 0;
    int rc = control_push_any(m, &h, target, kind, req->data, &slot);
    log_msg(LOG_NOTICE, "operator: send %s=%s bytes=%zu worker=%d uid=%u pid=%d%s%s", kind,
            target, req->data_len, rc == 0 ? (int)slot : -1, peer->uid, peer->pid,
            rc == 0 ? "" : " failed: ", rc == 0 ? "" : wsd_strerror(rc));
    if (rc < 0) {
        control_fail(fd, "%s", control_push_error(rc));
        return;
    }
    struct control_reply r;
    reply_begin(&r);
    reply_u64(&r, "worker", slot);
    if (!(req->fields & F_ALL))
        reply_u64(&r, "online", control_online(m, req));
    reply_finish(fd, &r);
}

static void control_peer_of(int fd, struct control_peer *peer)
{
    struct ucred uc = {0};
    socklen_t len = sizeof(uc);
    peer->uid = (unsigned)-1;
    peer->pid = -1;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0) {
        peer->uid = uc.uid;
        peer->pid = uc.pid;
    }
}

static void control_handle(struct master *m, int fd, char *line, size_t len)
{
    struct control_req req;
    struct control_peer peer;
    char err[CONTROL_ERR_LEN];
    control_peer_of(fd, &peer);
    if (control_parse(line, len, &req, err, sizeof(err)) < 0) {
        control_fail(fd, "%s", err);
        return;
    }
    answering.req = &req;
    answering.peer = &peer;
    if (strcmp(req.cmd, "reload") == 0) {
        if (control_only(fd, &req, F_CMD))
            control_reload(m, fd, &peer);
    } else if (strcmp(req.cmd, "stop") == 0) {
        if (control_only(fd, &req, F_CMD))
            control_stop(m, fd, &peer);
    } else if (strcmp(req.cmd, "kick") == 0) {
        control_kick(m, fd, &req, &peer);
    } else if (strcmp(req.cmd, "send") == 0) {
        control_system_send(m, fd, &req, &peer);
    } else {
        control_fail(fd, "unknown command");
    }
    answering.req = NULL;
}

/*
 * Reads one line (up to and without its '\n') into buf[0..cap), NUL-terminated.
 * Returns its length; WSD_ETOOBIG when no newline came within cap - 1 bytes; WSD_EAGAIN
 * when the client was too slow; WSD_EIO on a socket error.
 */
static long control_read_line(int fd, char *buf, size_t cap)
{
    int64_t deadline = clock_mono_ms() + CONTROL_READ_MS;
    size_t len = 0;
    for (;;) {
        char *nl = memchr(buf, '\n', len);
        if (nl != NULL || len == cap - 1) {
            size_t n = nl ? (size_t)(nl - buf) : len;
            buf[n] = '\0';
            return nl ? (long)n : WSD_ETOOBIG;
        }
        int64_t left = deadline - clock_mono_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
            return WSD_EAGAIN;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
        if (n == -1 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n == -1)
            return WSD_EIO;
        if (n == 0) { /* end of stream: the line is what came */
            buf[len] = '\0';
            return (long)len;
        }
        len += (size_t)n;
    }
}

void control_on_readable(struct master *m)
{
    int fd = accept4(m->control_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd == -1)
        return;
    char *line = malloc(CONTROL_REQUEST_MAX);
    long len = line ? control_read_line(fd, line, CONTROL_REQUEST_MAX) : WSD_ENOMEM;
    if (len >= 0)
        control_handle(m, fd, line, (size_t)len);
    else if (len == WSD_ETOOBIG)
        control_fail(fd, "request longer than %u bytes", CONTROL_REQUEST_MAX);
    else if (len == WSD_EAGAIN)
        control_fail(fd, "request not received within %d ms", CONTROL_READ_MS);
    else if (len == WSD_ENOMEM)
        control_fail(fd, "out of memory");
    free(line);
    close(fd);
}
