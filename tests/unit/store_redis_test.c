/*
 * store_redis_test.c - the Redis store: shared behaviour against a redis-server each test
 * starts on a free port, then outages, restarts, lost scripts and lost data.
 */
#include "store/store_redis.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define COMMON_SUITE store_redis
#define REDIS_SERVER "/usr/bin/redis-server"

static pid_t redis_pid = -1;
static int redis_port;
static char redis_dir[256]; /* the server's working directory (AOF files) */

static void redis_setup(void);
static void redis_teardown(void);

TestSuite(store_redis, .init = redis_setup, .fini = redis_teardown);

#include "tests/unit/store_common.h"

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_neq(fd, -1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};

    nanosleep(&ts, NULL);
}

static bool port_answers(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    close(fd);
    return ok;
}

/* Starts redis-server on redis_port in redis_dir and waits (bounded) until it answers. */
static void start_redis(bool aof)
{
    char port[16];
    int status;

    snprintf(port, sizeof(port), "%d", redis_port);
    redis_pid = fork();
    cr_assert_neq(redis_pid, -1);
    if (redis_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(null, 1);
        dup2(null, 2);
        execl(REDIS_SERVER, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", aof ? "yes" : "no", "--appendfsync", "always", "--daemonize",
              "no", "--dir", redis_dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && !port_answers(redis_port); i++) {
        cr_assert_eq(waitpid(redis_pid, &status, WNOHANG), 0, "redis-server exited");
        sleep_ms(10);
    }
    cr_assert(port_answers(redis_port), "redis-server does not answer");
}

/* Stops the server with sig and reaps it. */
static void stop_redis(int sig)
{
    int status;

    if (redis_pid <= 0)
        return;
    kill(redis_pid, sig);
    waitpid(redis_pid, &status, 0);
    redis_pid = -1;
}

static void redis_setup(void)
{
    if (access(REDIS_SERVER, X_OK) != 0)
        cr_skip_test("%s is not installed", REDIS_SERVER);
    snprintf(redis_dir, sizeof(redis_dir), "/tmp/wsd-store-redis-XXXXXX");
    cr_assert_not_null(mkdtemp(redis_dir));
    redis_port = free_port();
    snprintf(common_uri, sizeof(common_uri), "redis://127.0.0.1:%d", redis_port);
    start_redis(false);
    common_open();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void redis_teardown(void)
{
    common_close();
    stop_redis(SIGKILL);
    if (redis_dir[0] != '\0')
        nftw(redis_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs one command on a connection of its own; returns the reply type (and integer). */
static int raw_command_int(long long *integer, const char *fmt, ...)
{
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    redisReply *reply;
    va_list ap;
    int type;

    cr_assert(c != NULL && c->err == 0);
    va_start(ap, fmt);
    reply = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(reply);
    type = reply->type;
    if (integer != NULL)
        *integer = reply->integer;
    freeReplyObject(reply);
    redisFree(c);
    return type;
}

#define raw_command(...) raw_command_int(NULL, __VA_ARGS__)

/* Polls store_is_available, bounded: the handle reconnects at most every 500 ms. */
static bool wait_available(struct store *s)
{
    for (int i = 0; i < 400; i++) {
        if (store_is_available(s))
            return true;
        sleep_ms(25);
    }
    return false;
}

Test(store_redis, an_outage_fails_fast_and_the_handle_recovers_after_it)
{
    struct store_channel_info before = common_info("g"), info;
    struct common_got *g = calloc(1, sizeof(*g));
    uint8_t buf[8];
    int64_t t0;
    bool dup;

    common_put(cs, "g", &common_keep, 1000, "a");
    cr_assert(store_is_available(cs));
    stop_redis(SIGKILL);

    t0 = clock_mono_ms();
    struct store_msg m = {.ts_ms = 1, .data = (const uint8_t *)"x", .data_len = 1};
    uint64_t off;
    cr_assert_eq(store_append(cs, "g", &common_keep, NULL, 0, &m, &off, &dup), WSD_EIO);
    cr_assert_not(store_is_available(cs));
    cr_assert_eq(store_batch_begin(cs), WSD_EIO);
    cr_assert_eq(store_channel_info(cs, "g", &info), WSD_EIO);
    cr_assert_eq(store_read(cs, "g", 0, 10, 1000, common_collect, g), WSD_EIO);
    free(g);
    cr_assert_eq(store_session_get(cs, "s", buf, sizeof(buf), 0), WSD_EIO);
    cr_assert_eq(store_session_put(cs, "s", buf, 1, INT64_MAX), WSD_EIO);
    cr_assert_eq(store_ack(cs, "@u", 1), WSD_EIO);
    cr_assert_eq(store_expire(cs, 0, 10), WSD_EIO);
    cr_assert_lt(clock_mono_ms() - t0, 5000, "no call hangs while redis is down");

    start_redis(false);
    cr_assert(wait_available(cs), "the handle reconnects by itself");
    info = common_info("g");
    cr_assert_eq(info.last_offset, 0, "the server came back empty");
    cr_assert_str_neq(info.epoch, before.epoch, "lost history gives a new epoch");
    common_begin();
    cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "b"), 1);
    common_commit();
    cr_assert_str_eq(common_info("g").epoch, info.epoch);
}

Test(store_redis, a_batch_whose_server_died_fails_to_commit)
{
    int64_t now = clock_wall_ms();
    uint8_t buf[4];

    common_begin();
    cr_assert_eq(store_session_put(cs, "s", (const uint8_t *)"v", 1, now + 60000), 0);
    stop_redis(SIGKILL);
    cr_assert_eq(store_batch_commit(cs), WSD_EIO);
    cr_assert_not(store_is_available(cs));
    start_redis(false);
    cr_assert(wait_available(cs));
    cr_assert_eq(store_session_get(cs, "s", buf, sizeof(buf), now), WSD_ENOENT);
    common_begin();
    cr_assert_eq(store_session_put(cs, "s", (const uint8_t *)"v", 1, now + 60000), 0);
    common_commit();
    cr_assert_eq(store_session_get(cs, "s", buf, sizeof(buf), now), 1);
}

Test(store_redis, a_restart_with_aof_keeps_messages_epochs_and_sessions)
{
    int64_t now = clock_wall_ms();
    uint8_t buf[4];

    common_close();
    stop_redis(SIGKILL);
    start_redis(true);
    common_open();
    for (int i = 0; i < 3; i++)
        common_put(cs, "g", &common_keep, 1000, "a");
    cr_assert_eq(store_session_put(cs, "s", (const uint8_t *)"v", 1, now + 600000), 0);
    struct store_channel_info before = common_info("g");
    stop_redis(SIGKILL); /* appendfsync always: every reply was on disk */
    start_redis(true);
    cr_assert(wait_available(cs));

    struct store_channel_info after;
    int rc = store_channel_info(cs, "g", &after);
    cr_assert_eq(rc, 0, "after the restart: %s", wsd_strerror(rc));
    cr_assert_eq(after.last_offset, 3);
    cr_assert_str_eq(after.epoch, before.epoch);
    struct common_got *g = common_read("g", 0, 10, 1000);
    cr_assert_eq(g->n, 3);
    free(g);
    cr_assert_eq(store_session_get(cs, "s", buf, sizeof(buf), now), 1);
    cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "b"), 4);
}

Test(store_redis, lost_data_while_connected_gives_new_epochs)
{
    common_put(cs, "g", &common_keep, 1000, "a");
    struct store_channel_info before = common_info("g");
    struct store_channel_info unwritten = common_info("never");

    cr_assert_eq(raw_command("FLUSHALL"), REDIS_REPLY_STATUS);
    cr_assert_str_neq(common_info("never").epoch, unwritten.epoch);
    cr_assert_eq(raw_command("FLUSHALL"), REDIS_REPLY_STATUS);
    cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "b"), 1);
    struct store_channel_info after = common_info("g");
    cr_assert_eq(after.last_offset, 1);
    cr_assert_str_neq(after.epoch, before.epoch);
}

Test(store_redis, a_flushed_script_cache_is_survived)
{
    cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "a"), 1);
    cr_assert_eq(raw_command("SCRIPT FLUSH"), REDIS_REPLY_STATUS);
    cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "b"), 2);
    struct store_retention ttl = {.max_messages = 10, .ttl_ms = 1};
    common_put(cs, "h", &ttl, 1000, "c");
    cr_assert_eq(raw_command("SCRIPT FLUSH"), REDIS_REPLY_STATUS);
    cr_assert_eq(store_expire(cs, 5000, 10), 1);
}

Test(store_redis, a_session_past_its_expiry_is_gone_from_the_server)
{
    int64_t now = clock_wall_ms();
    uint8_t buf[4];

    cr_assert_eq(store_session_put(cs, "s", (const uint8_t *)"v", 1, now - 1), 0);
    cr_assert_eq(store_session_get(cs, "s", buf, sizeof(buf), now - 1000), WSD_ENOENT);
    long long n = -1;
    cr_assert_eq(raw_command_int(&n, "EXISTS wsd:sess:s"), REDIS_REPLY_INTEGER);
    cr_assert_eq(n, 0);
}

Test(store_redis, a_database_number_selects_a_separate_keyspace)
{
    struct store_options opt = {0};
    char uri[64], err[256];
    struct store *db3;

    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d/3", redis_port);
    opt.uri = uri;
    cr_assert_eq(store_open(&opt, &db3, err, sizeof(err)), 0, "%s", err);
    common_put(db3, "g", &common_keep, 1000, "a");
    common_put(db3, "g", &common_keep, 1000, "b");
    struct store_channel_info info;
    cr_assert_eq(store_channel_info(db3, "g", &info), 0);
    cr_assert_eq(info.last_offset, 2);
    cr_assert_eq(common_info("g").last_offset, 0);
    store_close(db3);
}

Test(store_redis, open_refuses_bad_addresses_and_unreachable_servers)
{
    static const char *const bad[] = {
        "redis://",           "redis://host",         "redis://host:",
        "redis://:6379",      "redis://host:0",       "redis://host:65536",
        "redis://host:63x79", "redis://host:6379/",   "redis://host:6379/x",
        "redis://[::1",       "redis://[::1]6379",    "redis://host:6379/-1",
    };
    struct store_options opt = {0};
    char uri[64], err[256];
    struct store *s;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        opt.uri = bad[i];
        cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), WSD_EINVAL, "%s", bad[i]);
    }
    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", free_port());
    opt.uri = uri;
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), WSD_EIO);
    cr_assert(strstr(err, "connect") != NULL, "%s", err);
    snprintf(uri, sizeof(uri), "redis://[::1]:%d", free_port());
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), WSD_EIO);
}

Test(store_redis, lazy_connect_opens_while_the_server_is_down)
{
    struct store_options opt = {.lazy_connect = true};
    char uri[64], err[256];
    struct store *s;
    bool dup;

    snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d", redis_port);
    opt.uri = uri;
    stop_redis(SIGKILL);
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), 0);
    cr_assert_not(store_is_available(s));
    struct store_msg m = {.ts_ms = 1};
    uint64_t off;
    cr_assert_eq(store_append(s, "g", &common_keep, NULL, 0, &m, &off, &dup), WSD_EIO);
    start_redis(false);
    cr_assert(wait_available(s));
    cr_assert_eq(store_append(s, "g", &common_keep, NULL, 0, &m, &off, &dup), 0);
    cr_assert_eq(off, 1);
    store_close(s);
}

Test(store_redis, appends_are_applied_even_when_the_batch_is_aborted)
{
    common_begin();
    common_put(cs, "g", &common_keep, 1000, "a");
    store_batch_abort(cs);
    cr_assert_eq(common_info("g").last_offset, 1, "documented: a script cannot be withdrawn");
}
