/* store_lmdb_test.c - the LMDB store: shared behaviour, crash and restart, files, full map. */
#include "store/store_lmdb.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"

#define COMMON_SUITE store_lmdb

static char test_dir[256]; /* per test, removed afterwards */
static char db_dir[300];   /* test_dir/db: the store creates it */

static void lmdb_setup(void);
static void lmdb_teardown(void);

TestSuite(store_lmdb, .init = lmdb_setup, .fini = lmdb_teardown);

#include "tests/unit/store_common.h"

static void lmdb_setup(void)
{
    snprintf(test_dir, sizeof(test_dir), "/tmp/wsd-store-lmdb-XXXXXX");
    cr_assert_not_null(mkdtemp(test_dir));
    snprintf(db_dir, sizeof(db_dir), "%s/db", test_dir);
    snprintf(common_uri, sizeof(common_uri), "lmdb:%s", db_dir);
    common_open();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void lmdb_teardown(void)
{
    common_close();
    remove_tree(test_dir);
}

Test(store_lmdb, creates_its_directory_with_mode_0700)
{
    struct stat st;

    cr_assert_eq(stat(db_dir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0700);
}

Test(store_lmdb, batch_abort_leaves_nothing)
{
    int64_t now = clock_wall_ms();
    uint8_t buf[8];
    bool dup;

    common_begin();
    common_put(cs, "g", &common_keep, 1000, "a");
    common_put(cs, "g", &common_keep, 1000, "b");
    common_put_dedup("g", "k", 60000, 1000, "c", &dup);
    cr_assert_eq(store_session_put(cs, "s", (const uint8_t *)"v", 1, now + 60000), 0);
    store_batch_abort(cs);

    struct store_channel_info info = common_info("g");
    cr_assert_eq(info.last_offset, 0);
    cr_assert_eq(info.first_offset, 0);
    struct common_got *g = common_read("g", 0, 10, 1000);
    cr_assert_eq(g->n, 0);
    free(g);
    cr_assert_eq(store_session_get(cs, "s", buf, sizeof(buf), now), WSD_ENOENT);
    cr_assert_eq(common_put_dedup("g", "k", 60000, 1001, "c", &dup), 1);
    cr_assert_not(dup, "the aborted dedup entry is gone too");
}

/*
 * A child process with its own handle (opened before the parent's batch: opening writes)
 * that answers each byte on `ask` with channel g's last offset on `answer`.
 */
struct lmdb_peer {
    pid_t pid;
    int ask, answer;
};

static struct lmdb_peer lmdb_peer_start(void)
{
    int to[2], from[2];
    cr_assert_eq(pipe(to), 0);
    cr_assert_eq(pipe(from), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(to[1]);
        close(from[0]);
        struct store *s = common_open_new();
        uint8_t b;
        uint8_t ready = 0;
        if (write(from[1], &ready, 1) != 1)
            _exit(1);
        while (read(to[0], &b, 1) == 1) {
            struct store_channel_info info;
            uint8_t off = store_channel_info(s, "g", &info) < 0 ? 0xFF : (uint8_t)info.last_offset;
            if (write(from[1], &off, 1) != 1)
                _exit(1);
        }
        store_close(s);
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
    uint8_t ready;
    cr_assert_eq(read(from[0], &ready, 1), 1);
    return (struct lmdb_peer){pid, to[1], from[0]};
}

static int lmdb_peer_last_offset(struct lmdb_peer *p)
{
    uint8_t b = 1;
    cr_assert_eq(write(p->ask, &b, 1), 1);
    cr_assert_eq(read(p->answer, &b, 1), 1);
    return b;
}

static void lmdb_peer_stop(struct lmdb_peer *p)
{
    int status;
    close(p->ask);
    cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(p->answer);
}

Test(store_lmdb, other_processes_see_only_committed_writes)
{
    struct lmdb_peer peer = lmdb_peer_start();
    common_begin();
    common_put(cs, "g", &common_keep, 1000, "a");
    cr_assert_eq(common_info("g").last_offset, 1, "the batch sees its own append");
    cr_assert_eq(lmdb_peer_last_offset(&peer), 0, "another process does not, before the commit");
    common_commit();
    cr_assert_eq(lmdb_peer_last_offset(&peer), 1);
    lmdb_peer_stop(&peer);
}

Test(store_lmdb, a_wiped_directory_gives_every_channel_a_new_epoch)
{
    common_put(cs, "g", &common_keep, 1000, "a");
    struct store_channel_info before = common_info("g");
    struct store_channel_info unwritten = common_info("never");
    common_close();
    remove_tree(db_dir);
    common_open();

    struct store_channel_info after = common_info("g");
    cr_assert_eq(after.last_offset, 0);
    cr_assert_str_neq(after.epoch, before.epoch);
    cr_assert_str_neq(common_info("never").epoch, unwritten.epoch);
}

Test(store_lmdb, expire_removes_dedup_entries_and_sessions)
{
    int64_t now = clock_wall_ms();
    uint8_t buf[4];
    bool dup;

    common_put_dedup("g", "k1", 1000, 1000, "a", &dup);
    common_put_dedup("g", "k2", 1000, 5000, "a", &dup);
    cr_assert_eq(store_session_put(cs, "s1", (const uint8_t *)"v", 1, now), 0);
    cr_assert_eq(store_session_put(cs, "s2", (const uint8_t *)"v", 1, now + 1000), 0);
    cr_assert_eq(store_session_put(cs, "s1", (const uint8_t *)"v", 1, now + 500), 0);

    cr_assert_eq(store_expire(cs, 1999, 100), 0, "k1 is a duplicate until 1999");
    cr_assert_eq(store_expire(cs, 2000, 100), 1);
    cr_assert_eq(store_expire(cs, now + 499, 100), 1, "k2; s1 was moved to now + 500");
    cr_assert_eq(store_session_get(cs, "s1", buf, sizeof(buf), now), 1);
    cr_assert_eq(store_expire(cs, now + 1000, 100), 2);
    cr_assert_eq(store_session_get(cs, "s1", buf, sizeof(buf), now), WSD_ENOENT);
    cr_assert_eq(store_session_get(cs, "s2", buf, sizeof(buf), now), WSD_ENOENT);
    cr_assert_eq(store_expire(cs, now + 3600 * 1000, 100), 0);
}

Test(store_lmdb, expire_shares_its_budget_between_kinds)
{
    struct store_retention ttl = {.max_messages = 100, .ttl_ms = 1};
    bool dup;

    for (int i = 0; i < 4; i++)
        common_put(cs, "g", &ttl, 1000, "x");
    for (int i = 0; i < 4; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        common_put_dedup("h", key, 10, 1000, "x", &dup);
    }
    int total = 0;
    for (int i = 0; i < 8; i++) {
        int n = store_expire(cs, 100000, 3);
        cr_assert(n >= 0 && n <= 3, "expire removed %d with a budget of 3", n);
        total += n;
    }
    cr_assert_eq(total, 8, "4 messages and 4 dedup entries");
}

Test(store_lmdb, a_full_map_gives_enospc_and_keeps_what_was_committed)
{
    struct store_options opt = {.sync = STORE_SYNC_NONE, .map_size = 256 * 1024};
    char uri[400], err[256];
    static uint8_t data[8192];
    struct store *s;
    uint64_t off, last = 0;
    bool dup;
    int rc = 0;

    snprintf(uri, sizeof(uri), "lmdb:%s/small", test_dir);
    opt.uri = uri;
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), 0, "%s", err);
    for (int i = 0; i < 1000 && rc == 0; i++) {
        struct store_msg m = {.ts_ms = 1, .data = data, .data_len = sizeof(data)};
        rc = store_append(s, "g", &common_keep, NULL, 0, &m, &off, &dup);
        if (rc == 0)
            last = off;
    }
    cr_assert_eq(rc, WSD_ENOSPC);
    cr_assert_gt(last, 0);
    struct store_channel_info info;
    cr_assert_eq(store_channel_info(s, "g", &info), 0);
    cr_assert_eq(info.last_offset, last);
    cr_assert_eq(store_ack(s, "g", last), 0, "deleting still works");
    /* LMDB reuses the pages a transaction freed from the second transaction after it */
    struct store_msg small = {.ts_ms = 1, .data = data, .data_len = 1};
    cr_assert_eq(store_append(s, "g", &common_keep, NULL, 0, &small, &off, &dup), 0);
    cr_assert_eq(off, last + 1);
    for (int i = 0; i < 5; i++) {
        struct store_msg m = {.ts_ms = 1, .data = data, .data_len = sizeof(data)};
        cr_assert_eq(store_append(s, "g", &common_keep, NULL, 0, &m, &off, &dup), 0,
                     "the space freed by the ack is used again");
    }
    store_close(s);
}

Test(store_lmdb, a_process_killed_inside_a_batch_loses_its_batch_and_blocks_no_one)
{
    int fds[2], status;
    char c;
    pid_t pid;

    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(fds[0]);
        struct store *s = common_open_new();
        struct store_msg m = {.ts_ms = 1, .data = (const uint8_t *)"lost", .data_len = 4};
        uint64_t off;
        bool dup;
        if (store_batch_begin(s) == 0 &&
            store_append(s, "g", &common_keep, NULL, 0, &m, &off, &dup) == 0)
            if (write(fds[1], "k", 1) == 1)
                pause();
        _exit(1);
    }
    close(fds[1]);
    cr_assert_eq(read(fds[0], &c, 1), 1, "the child holds the write lock");
    kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status));
    close(fds[0]);

    cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "kept"), 1);
    struct common_got *g = common_read("g", 0, 10, 1000);
    cr_assert_eq(g->n, 1);
    cr_assert_str_eq(g->data[0], "kept");
    free(g);
}

Test(store_lmdb, sync_none_with_writemap_stores_and_reads_back)
{
    struct store_options opt = {.sync = STORE_SYNC_NONE, .lmdb_writemap = true};
    char uri[400], err[256];
    struct store *s;

    snprintf(uri, sizeof(uri), "lmdb:%s/nosync", test_dir);
    opt.uri = uri;
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(store_batch_begin(s), 0);
    cr_assert_eq(common_put(s, "g", &common_keep, 1, "a"), 1);
    cr_assert_eq(store_batch_commit(s), 0);
    store_close(s);
    opt.sync = STORE_SYNC_BATCH;
    opt.lmdb_writemap = false;
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), 0, "%s", err);
    struct store_channel_info info;
    cr_assert_eq(store_channel_info(s, "g", &info), 0);
    cr_assert_eq(info.last_offset, 1);
    store_close(s);
}

Test(store_lmdb, open_refuses_bad_uris_and_paths)
{
    struct store_options opt = {0};
    char path[400], uri[420], err[256];
    struct store *s = (struct store *)1;
    int fd;

    opt.uri = "lmdb:";
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), WSD_EINVAL);
    cr_assert_null(s);
    opt.uri = "";
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), WSD_EINVAL);
    opt.uri = "mysql://localhost";
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), WSD_EINVAL);
    cr_assert(strstr(err, "mysql") != NULL, "the reason names the uri: %s", err);

    snprintf(path, sizeof(path), "%s/file", test_dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    cr_assert_neq(fd, -1);
    close(fd);
    snprintf(uri, sizeof(uri), "lmdb:%s", path);
    opt.uri = uri;
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), WSD_EIO);
    cr_assert(strstr(err, "not a directory") != NULL, "%s", err);
    snprintf(uri, sizeof(uri), "lmdb:%s/sub/dir", path);
    cr_assert_eq(store_open(&opt, &s, err, sizeof(err)), WSD_EIO);
    cr_assert(strstr(err, "mkdir") != NULL, "%s", err);
    store_close(NULL);
}

Test(store_lmdb, is_always_available)
{
    cr_assert(store_is_available(cs));
}
