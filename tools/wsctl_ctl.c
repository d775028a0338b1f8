/* wsctl_ctl.c - reload, stop, kick and send through the control socket. */
#include "tools/wsctl_ctl.h"
#include "core/clock.h"
#include "proto/json.h"
#include "shm/names.h"
#include "tools/wsctl_out.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_DEFAULT_CODE 4009

/* Arguments of send. */
struct send_args {
    const char *kind; /* "all", "group", "user" */
    const char *target;
    const char *data; /* --data JSON, or NULL: the TEXT words */
    int kinds;
};

/* ---- the socket ---- */

static int ctl_connect(const struct wsctl_opts *o, int *fd_out)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(o->socket) >= sizeof(sa.sun_path))
        return wsctl_cli_error(o, "cannot connect to %s: path too long", o->socket);
    strcpy(sa.sun_path, o->socket);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return wsctl_cli_error(o, "cannot connect to %s: %s", o->socket, strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        int e = errno;
        close(fd);
        return wsctl_cli_error(o, "cannot connect to %s: %s", o->socket, strerror(e));
    }
    *fd_out = fd;
    return 0;
}

static int ctl_write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t n = send(fd, c, len, MSG_NOSIGNAL);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return WSD_EIO;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until a newline, EOF or the deadline. Returns 0, WSD_EAGAIN (timeout), WSD_EIO. */
static int ctl_read_line(int fd, struct buf *reply)
{
    int64_t deadline = clock_mono_ms() + WSCTL_CTL_TIMEOUT_MS;
    char chunk[4096];
    while (memchr(reply->data ? reply->data : (const uint8_t *)"", '\n', reply->len) == NULL) {
        int64_t left = deadline - clock_mono_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc <= 0)
            return rc == 0 ? WSD_EAGAIN : WSD_EIO;
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? 0 : WSD_EIO;
        if (reply->len + (size_t)n > WSCTL_CTL_REPLY_MAX || buf_append(reply, chunk, (size_t)n) < 0)
            return WSD_EIO;
    }
    return 0;
}

int wsctl_ctl_request(const struct wsctl_opts *o, const void *req, size_t len, struct buf *reply)
{
    int fd = -1;
    int rc = ctl_connect(o, &fd);
    if (rc != 0)
        return rc;
    if (ctl_write_all(fd, req, len) < 0 || ctl_write_all(fd, "\n", 1) < 0) {
        rc = wsctl_cli_error(o, "cannot send to %s: %s", o->socket, strerror(errno));
        goto out_close;
    }
    rc = ctl_read_line(fd, reply);
    if (rc == WSD_EAGAIN)
        rc = wsctl_cli_error(o, "no reply from wsd on %s within %d s", o->socket,
                             WSCTL_CTL_TIMEOUT_MS / 1000);
    else if (rc < 0 || reply->len == 0)
        rc = wsctl_cli_error(o, "wsd on %s closed the control connection without a reply",
                             o->socket);
    uint8_t *nl = reply->len ? memchr(reply->data, '\n', reply->len) : NULL;
    if (nl != NULL)
        reply->len = (size_t)(nl - reply->data);
out_close:
    close(fd);
    return rc;
}

/* ---- replies ---- */

static bool ctl_member(const struct buf *r, const char *key, struct json_value *v)
{
    struct json_value obj, k;
    struct json_iter it;
    if (json_validate(r->data, r->len, &obj) < 0 || obj.type != JSON_OBJECT)
        return false;
    json_iter_init(&it, r->data, r->len, &obj, 1);
    while (json_iter_next(&it, &k, v) == 1) {
        if (json_str_equal_lit(k.p + 1, k.len - 2, (k.flags & JSON_F_ESCAPED) != 0, key,
                               strlen(key)))
            return true;
    }
    return false;
}

static uint64_t ctl_u64(const struct buf *r, const char *key)
{
    struct json_value v;
    uint64_t n = 0;
    if (ctl_member(r, key, &v) && v.type == JSON_NUMBER)
        json_number_u64(&v, &n);
    return n;
}

static const char *ctl_str(const struct buf *r, const char *key, char *out, size_t cap)
{
    struct json_value v;
    long n = -1;
    if (ctl_member(r, key, &v) && v.type == JSON_STRING)
        n = json_string_decode(&v, (uint8_t *)out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

/* "0,2": the elements of the reply's array member key. */
static const char *ctl_slots(const struct buf *r, const char *key, char *out, size_t cap)
{
    struct json_value arr, k, v;
    struct json_iter it;
    size_t len = 0;
    out[0] = '\0';
    if (!ctl_member(r, key, &arr) || arr.type != JSON_ARRAY)
        return out;
    json_iter_init(&it, r->data, r->len, &arr, 2);
    while (json_iter_next(&it, &k, &v) == 1 && len + 8 < cap) {
        uint64_t n = 0;
        json_number_u64(&v, &n);
        len += (size_t)snprintf(out + len, cap - len, "%s%llu", len ? "," : "",
                                (unsigned long long)n);
    }
    return out;
}

/*
 * Checks the reply: ok true returns 0 (and prints the reply with --json); ok false
 * reports its error and returns WSCTL_EXIT_ERROR, as does a malformed reply.
 */
static int ctl_check(const struct wsctl_opts *o, const struct buf *reply)
{
    struct json_value ok;
    if (!ctl_member(reply, "ok", &ok) || (ok.type != JSON_TRUE && ok.type != JSON_FALSE))
        return wsctl_cli_error(o, "malformed reply from wsd: %.*s",
                               (int)WSD_MIN(reply->len, (size_t)200), (const char *)reply->data);
    if (ok.type == JSON_FALSE) {
        char err[1024];
        ctl_str(reply, "error", err, sizeof(err));
        return wsctl_cli_error(o, "%s", err[0] ? err : "refused");
    }
    if (o->json)
        printf("%.*s\n", (int)reply->len, (const char *)reply->data);
    return 0;
}

/* Sends the request in j and checks the reply into reply. Returns an exit status. */
static int ctl_call(const struct wsctl_opts *o, struct wsctl_json *j, struct buf *reply)
{
    if (j->err != 0)
        return wsctl_cli_error(o, "out of memory");
    int rc = wsctl_ctl_request(o, j->b.data, j->b.len, reply);
    if (rc == 0)
        rc = ctl_check(o, reply);
    return rc;
}

/* Runs a command without arguments: {"cmd":NAME}. */
static int ctl_simple(struct wsctl_opts *o, int argc, char **argv, struct buf *reply)
{
    int rc = wsctl_cli_plain_args(o, argc, argv);
    if (rc >= 0)
        return rc;
    struct wsctl_json j;
    wsctl_json_init(&j);
    wsctl_json_object(&j, NULL);
    wsctl_json_str(&j, "cmd", argv[0]);
    wsctl_json_object_end(&j);
    rc = ctl_call(o, &j, reply);
    wsctl_json_fini(&j);
    return rc;
}

int wsctl_ctl_reload(struct wsctl_opts *o, int argc, char **argv)
{
    struct buf reply;
    buf_init(&reply);
    int rc = ctl_simple(o, argc, argv, &reply);
    if (rc == 0 && !o->json && reply.len > 0)
        printf("configuration reloaded (generation %llu)\n",
               (unsigned long long)ctl_u64(&reply, "config_generation"));
    buf_fini(&reply);
    return rc;
}

int wsctl_ctl_stop(struct wsctl_opts *o, int argc, char **argv)
{
    struct buf reply;
    buf_init(&reply);
    int rc = ctl_simple(o, argc, argv, &reply);
    if (rc == 0 && !o->json && reply.len > 0)
        printf("wsd is shutting down\n");
    buf_fini(&reply);
    return rc;
}

/* ---- kick ---- */

static void kick_print(const struct buf *reply, bool by_user)
{
    char user[NAMES_NAME_MAX + 1], slots[256];
    if (!by_user) {
        printf("connection %llu on worker %llu: closing with code %llu\n",
               (unsigned long long)ctl_u64(reply, "conn"),
               (unsigned long long)ctl_u64(reply, "worker"),
               (unsigned long long)ctl_u64(reply, "code"));
        return;
    }
    printf("user %s: closing %llu connection(s) on worker(s) %s with code %llu\n",
           ctl_str(reply, "user", user, sizeof(user)),
           (unsigned long long)ctl_u64(reply, "connections"),
           ctl_slots(reply, "workers", slots, sizeof(slots)),
           (unsigned long long)ctl_u64(reply, "code"));
}

static int kick_args(struct wsctl_opts *o, int argc, char **argv, const char **user,
                     uint16_t *code)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},       {"help", no_argument, NULL, 'h'},
        {"user", required_argument, NULL, 'u'}, {"code", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hu:", opts, NULL)) != -1) {
        switch (c) {
        case 'J': o->json = true; break;
        case 'h': wsctl_cli_usage(true); return WSCTL_EXIT_OK;
        case 'u': *user = optarg; break;
        case 'c':
            if (wsctl_cli_parse_code(optarg, code) < 0)
                return wsctl_cli_usage_error("kick: --code must be 1000-1003, 1007-1014 or "
                                             "3000-4999");
            break;
        default: return wsctl_cli_bad_option(argv[0], c, argv);
        }
    }
    return -1;
}

int wsctl_ctl_kick(struct wsctl_opts *o, int argc, char **argv)
{
    const char *user = NULL;
    uint16_t code = CTL_DEFAULT_CODE;
    uint64_t id = 0;
    int rc = kick_args(o, argc, argv, &user, &code);
    if (rc >= 0)
        return rc;
    int rest = argc - optind;
    if ((user == NULL) == (rest == 0) || rest > 1)
        return wsctl_cli_usage_error("usage: kick CONN [--code C] | kick --user U [--code C]");
    if (user == NULL && wsctl_cli_parse_conn_id(argv[optind], &id) < 0)
        return wsctl_cli_usage_error("kick: bad connection id %s", argv[optind]);
    if (user != NULL && (user[0] == '\0' || strlen(user) > NAMES_NAME_MAX))
        return wsctl_cli_usage_error("kick: --user needs a user id of 1-%d bytes", NAMES_NAME_MAX);
    struct wsctl_json j;
    struct buf reply;
    wsctl_json_init(&j);
    buf_init(&reply);
    wsctl_json_object(&j, NULL);
    wsctl_json_str(&j, "cmd", "kick");
    if (user != NULL)
        wsctl_json_str(&j, "user", user);
    else
        wsctl_json_u64(&j, "conn", id);
    wsctl_json_u64(&j, "code", code);
    wsctl_json_object_end(&j);
    rc = ctl_call(o, &j, &reply);
    if (rc == 0 && !o->json)
        kick_print(&reply, user != NULL);
    wsctl_json_fini(&j);
    buf_fini(&reply);
    return rc;
}

/* ---- send ---- */

static int send_args(struct wsctl_opts *o, int argc, char **argv, struct send_args *a)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},        {"help", no_argument, NULL, 'h'},
        {"all", no_argument, NULL, 'a'},         {"group", required_argument, NULL, 'g'},
        {"user", required_argument, NULL, 'u'},  {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hag:u:d:", opts, NULL)) != -1) {
        switch (c) {
        case 'J': o->json = true; break;
        case 'h': wsctl_cli_usage(true); return WSCTL_EXIT_OK;
        case 'a': a->kind = "all"; a->kinds++; break;
        case 'g': a->kind = "group"; a->target = optarg; a->kinds++; break;
        case 'u': a->kind = "user"; a->target = optarg; a->kinds++; break;
        case 'd': a->data = optarg; break;
        default: return wsctl_cli_bad_option(argv[0], c, argv);
        }
    }
    if (a->kinds != 1)
        return wsctl_cli_usage_error("send: give exactly one of --all, --group G, --user U");
    if (a->target != NULL && (a->target[0] == '\0' || strlen(a->target) > NAMES_NAME_MAX))
        return wsctl_cli_usage_error("send: --%s needs a name of 1-%d bytes", a->kind,
                                     NAMES_NAME_MAX);
    if ((a->data != NULL) == (optind < argc))
        return wsctl_cli_usage_error("send: give either TEXT or --data JSON");
    return -1;
}

/* Appends the message data to j: --data as given (newlines made blanks: in valid JSON
 * they are whitespace), or the TEXT words joined by blanks as a JSON string. */
static int send_data(struct wsctl_json *j, const struct send_args *a, int argc, char **argv)
{
    if (a->data != NULL) {
        size_t len = strlen(a->data);
        if (json_validate((const uint8_t *)a->data, len, NULL) < 0)
            return wsctl_cli_usage_error("send: --data is not valid JSON");
        char *copy = strdup(a->data);
        for (size_t i = 0; copy && i < len; i++)
            copy[i] = copy[i] == '\n' || copy[i] == '\r' ? ' ' : copy[i];
        if (copy == NULL)
            j->err = WSD_ENOMEM;
        else
            wsctl_json_raw(j, "data", copy, len);
        free(copy);
        return -1;
    }
    struct buf text;
    buf_init(&text);
    for (int i = optind; i < argc; i++) {
        if ((i > optind && buf_append(&text, " ", 1) < 0) ||
            buf_append(&text, argv[i], strlen(argv[i])) < 0)
            j->err = WSD_ENOMEM;
    }
    int rc = -1;
    if (!json_utf8_is_valid(text.data ? text.data : (const uint8_t *)"", text.len))
        rc = wsctl_cli_usage_error("send: TEXT is not valid UTF-8");
    else
        wsctl_json_strn(j, "data", text.data ? (const char *)text.data : "", text.len);
    buf_fini(&text);
    return rc;
}

static void send_print(const struct buf *reply, const struct send_args *a)
{
    unsigned long long worker = ctl_u64(reply, "worker");
    unsigned long long online = ctl_u64(reply, "online");
    if (strcmp(a->kind, "all") == 0)
        printf("system message to every connection queued on worker %llu\n", worker);
    else if (strcmp(a->kind, "group") == 0)
        printf("system message published to group %s (%llu member(s) online) by worker %llu\n",
               a->target, online, worker);
    else
        printf("system message sent to user %s (%llu connection(s) online; kept for offline "
               "delivery) by worker %llu\n",
               a->target, online, worker);
}

int wsctl_ctl_send(struct wsctl_opts *o, int argc, char **argv)
{
    struct send_args a = {0};
    int rc = send_args(o, argc, argv, &a);
    if (rc >= 0)
        return rc;
    struct wsctl_json j;
    struct buf reply;
    wsctl_json_init(&j);
    buf_init(&reply);
    wsctl_json_object(&j, NULL);
    wsctl_json_str(&j, "cmd", "send");
    if (a.target != NULL)
        wsctl_json_str(&j, a.kind, a.target);
    else
        wsctl_json_bool(&j, "all", true);
    rc = send_data(&j, &a, argc, argv);
    wsctl_json_object_end(&j);
    if (rc < 0)
        rc = ctl_call(o, &j, &reply);
    if (rc == 0 && !o->json)
        send_print(&reply, &a);
    wsctl_json_fini(&j);
    buf_fini(&reply);
    return rc;
}
