/*
 * store_common.h - behaviour every store backend shares. Included by store_lmdb_test.c and
 * store_redis_test.c after they define COMMON_SUITE (their Criterion suite, whose init
 * fills common_uri and calls common_open()) and declare that suite.
 */
#ifndef WSD_TESTS_UNIT_STORE_COMMON_H
#define WSD_TESTS_UNIT_STORE_COMMON_H

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/wsd.h"
#include "store/store.h"

#define COMMON_GOT_MAX 8192
#define COMMON_KEEP_MAX 16

static char common_uri[512];
static struct store *cs;

static const struct store_retention common_keep = {.max_messages = 100000,
                                                   .ttl_ms = INT64_MAX};

static struct store *common_open_new(void)
{
    struct store_options opt = {.uri = common_uri, .sync = STORE_SYNC_BATCH};
    struct store *s = NULL;
    char err[256] = "";
    int rc = store_open(&opt, &s, err, sizeof(err));

    cr_assert_eq(rc, 0, "store_open(%s): %s (%s)", common_uri, wsd_strerror(rc), err);
    return s;
}

static void common_open(void)
{
    cs = common_open_new();
}

static void common_close(void)
{
    store_close(cs);
    cs = NULL;
}

/* Appends data to ch outside a batch; returns the offset. */
static uint64_t common_put(struct store *s, const char *ch, const struct store_retention *ret,
                           int64_t ts_ms, const char *data)
{
    struct store_msg msg = {.ts_ms = ts_ms, .mid = "", .from = "u", .data = (const uint8_t *)data,
                            .data_len = strlen(data)};
    uint64_t off = 0;
    bool dup = true;
    int rc = store_append(s, ch, ret, NULL, 0, &msg, &off, &dup);

    cr_assert_eq(rc, 0, "store_append: %s", wsd_strerror(rc));
    cr_assert_not(dup);
    cr_assert_eq(msg.offset, off);
    return off;
}

/* Appends with a dedup key inside the open batch, or outside one. */
static uint64_t common_put_dedup(const char *ch, const char *key, int64_t window_ms,
                                 int64_t ts_ms, const char *data, bool *dup)
{
    struct store_msg msg = {.ts_ms = ts_ms, .mid = "m", .from = "u",
                            .data = (const uint8_t *)data, .data_len = strlen(data)};
    uint64_t off = 0;
    int rc = store_append(cs, ch, &common_keep, key, window_ms, &msg, &off, dup);

    cr_assert_eq(rc, 0, "store_append: %s", wsd_strerror(rc));
    cr_assert_eq(msg.offset, off);
    return off;
}

struct common_got {
    size_t n;
    size_t stop_after; /* 0 = never */
    uint64_t off[COMMON_GOT_MAX];
    int64_t ts[COMMON_KEEP_MAX];
    uint8_t flags[COMMON_KEEP_MAX], encoding[COMMON_KEEP_MAX];
    char mid[COMMON_KEEP_MAX][STORE_MID_MAX + 1];
    char from[COMMON_KEEP_MAX][STORE_USER_MAX + 1];
    char data[COMMON_KEEP_MAX][64];
};

static int common_collect(void *ctx, const struct store_msg *m)
{
    struct common_got *g = ctx;
    size_t i = g->n;

    cr_assert_lt(i, COMMON_GOT_MAX);
    g->off[i] = m->offset;
    if (i < COMMON_KEEP_MAX) {
        g->ts[i] = m->ts_ms;
        g->flags[i] = m->flags;
        g->encoding[i] = m->encoding;
        snprintf(g->mid[i], sizeof(g->mid[i]), "%s", m->mid);
        snprintf(g->from[i], sizeof(g->from[i]), "%s", m->from);
        snprintf(g->data[i], sizeof(g->data[i]), "%.*s", (int)WSD_MIN(m->data_len, 63),
                 (const char *)m->data);
    }
    g->n++;
    return g->stop_after != 0 && g->n == g->stop_after ? 7 : 0;
}

/* Reads ch after `after` (at most max) into a fresh collector. */
static struct common_got *common_read(const char *ch, uint64_t after, size_t max, int64_t now)
{
    struct common_got *g = calloc(1, sizeof(*g));
    int rc;

    cr_assert_not_null(g);
    rc = store_read(cs, ch, after, max, now, common_collect, g);
    cr_assert_eq(rc, 0, "store_read: %d", rc);
    return g;
}

static struct store_channel_info common_info(const char *ch)
{
    struct store_channel_info info;
    int rc = store_channel_info(cs, ch, &info);

    cr_assert_eq(rc, 0, "store_channel_info: %s", wsd_strerror(rc));
    return info;
}

static void common_begin(void)
{
    int rc = store_batch_begin(cs);

    cr_assert_eq(rc, 0, "store_batch_begin: %s", wsd_strerror(rc));
}

static void common_commit(void)
{
    int rc = store_batch_commit(cs);

    cr_assert_eq(rc, 0, "store_batch_commit: %s", wsd_strerror(rc));
}

Test(COMMON_SUITE, offsets_start_at_one_and_grow_by_one)
{
    common_begin();
    for (uint64_t i = 1; i <= 5; i++)
        cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "x"), i);
    common_commit();
    common_begin();
    cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "x"), 6);
    cr_assert_eq(common_put(cs, "other", &common_keep, 1000, "x"), 1);
    common_commit();
    cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "x"), 7);

    struct store_channel_info info = common_info("g");
    cr_assert_eq(info.last_offset, 7);
    cr_assert_eq(info.first_offset, 1);
}

Test(COMMON_SUITE, unknown_channel_reports_offset_zero_and_the_epoch_it_will_keep)
{
    struct store_channel_info a = common_info("room:new"), b = common_info("room:new");

    cr_assert_eq(a.last_offset, 0);
    cr_assert_eq(a.first_offset, 0);
    cr_assert_eq(strlen(a.epoch), STORE_EPOCH_LEN);
    cr_assert_eq(strspn(a.epoch, "0123456789abcdef"), STORE_EPOCH_LEN);
    cr_assert_str_eq(a.epoch, b.epoch);
    common_put(cs, "room:new", &common_keep, 1000, "x");
    b = common_info("room:new");
    cr_assert_eq(b.last_offset, 1);
    cr_assert_str_eq(a.epoch, b.epoch);
    cr_assert_str_neq(a.epoch, common_info("room:other").epoch);
}

Test(COMMON_SUITE, read_returns_the_messages_after_an_offset_in_order_with_their_fields)
{
    char mid[32], from[32], data[32];

    common_begin();
    for (int i = 1; i <= 10; i++) {
        snprintf(mid, sizeof(mid), "mid-%d", i);
        snprintf(from, sizeof(from), "user-%d", i);
        snprintf(data, sizeof(data), "{\"n\":%d}", i);
        struct store_msg m = {.ts_ms = 5000 + i, .mid = mid, .from = from,
                              .encoding = (uint8_t)(i & 1), .flags = i == 4 ? STORE_MSG_SYS : 0,
                              .data = (const uint8_t *)data, .data_len = strlen(data)};
        uint64_t off;
        bool dup;
        cr_assert_eq(store_append(cs, "g", &common_keep, NULL, 0, &m, &off, &dup), 0);
    }
    common_commit();

    struct common_got *g = common_read("g", 3, 100, 6000);
    cr_assert_eq(g->n, 7);
    for (size_t i = 0; i < g->n; i++) {
        int n = (int)i + 4;
        cr_assert_eq(g->off[i], (uint64_t)n);
        cr_assert_eq(g->ts[i], 5000 + n);
        snprintf(mid, sizeof(mid), "mid-%d", n);
        snprintf(from, sizeof(from), "user-%d", n);
        snprintf(data, sizeof(data), "{\"n\":%d}", n);
        cr_assert_str_eq(g->mid[i], mid);
        cr_assert_str_eq(g->from[i], from);
        cr_assert_str_eq(g->data[i], data);
        cr_assert_eq(g->encoding[i], n & 1);
        cr_assert_eq(g->flags[i], n == 4 ? STORE_MSG_SYS : 0);
    }
    free(g);
    g = common_read("g", 10, 100, 6000);
    cr_assert_eq(g->n, 0);
    free(g);
}

Test(COMMON_SUITE, read_stops_at_max_and_when_the_callback_says_so)
{
    for (int i = 0; i < 6; i++)
        common_put(cs, "g", &common_keep, 1000, "x");

    struct common_got *g = common_read("g", 0, 2, 1000);
    cr_assert_eq(g->n, 2);
    cr_assert_eq(g->off[1], 2);
    free(g);

    g = calloc(1, sizeof(*g));
    g->stop_after = 3;
    cr_assert_eq(store_read(cs, "g", 0, 100, 1000, common_collect, g), 7);
    cr_assert_eq(g->n, 3);
    free(g);
    g = common_read("never-written", 0, 100, 1000);
    cr_assert_eq(g->n, 0);
    free(g);
}

Test(COMMON_SUITE, null_mid_and_from_and_empty_data_read_back_empty)
{
    struct store_msg m = {.ts_ms = 1};
    uint64_t off;
    bool dup;

    cr_assert_eq(store_append(cs, "g", &common_keep, NULL, 0, &m, &off, &dup), 0);
    struct common_got *g = common_read("g", 0, 10, 1);
    cr_assert_eq(g->n, 1);
    cr_assert_str_eq(g->mid[0], "");
    cr_assert_str_eq(g->from[0], "");
    cr_assert_str_eq(g->data[0], "");
    free(g);
}

/* Checks one big message byte by byte. */
static int common_check_big(void *ctx, const struct store_msg *m)
{
    size_t *len = ctx;

    cr_assert_eq(m->data_len, *len);
    for (size_t i = 0; i < m->data_len; i++)
        if (m->data[i] != (uint8_t)(i * 7 + 3))
            return 1;
    *len = 0;
    return 0;
}

Test(COMMON_SUITE, large_message_data_is_intact)
{
    size_t len = 300 * 1024, left = len;
    uint8_t *big = malloc(len);
    struct store_msg m = {.ts_ms = 1, .data = big, .data_len = len};
    uint64_t off;
    bool dup;

    for (size_t i = 0; i < len; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    cr_assert_eq(store_append(cs, "g", &common_keep, NULL, 0, &m, &off, &dup), 0);
    free(big);
    cr_assert_eq(store_read(cs, "g", 0, 1, 1, common_check_big, &left), 0);
    cr_assert_eq(left, 0, "the callback saw the message");
}

Test(COMMON_SUITE, retention_by_count_keeps_the_last_n_offsets)
{
    struct store_retention three = {.max_messages = 3, .ttl_ms = INT64_MAX};

    common_begin();
    for (int i = 0; i < 10; i++)
        common_put(cs, "g", &three, 1000, "x");
    common_commit();

    struct common_got *g = common_read("g", 0, 100, 1000);
    cr_assert_eq(g->n, 3);
    cr_assert_eq(g->off[0], 8);
    cr_assert_eq(g->off[2], 10);
    free(g);
    struct store_channel_info info = common_info("g");
    cr_assert_eq(info.first_offset, 8);
    cr_assert_eq(info.last_offset, 10);
}

Test(COMMON_SUITE, retention_count_trim_spans_many_messages)
{
    struct store_retention keep = {.max_messages = 1000, .ttl_ms = INT64_MAX};
    char data[256];

    memset(data, 'd', sizeof(data) - 1);
    data[sizeof(data) - 1] = '\0';
    for (int b = 0; b < 30; b++) {
        common_begin();
        for (int i = 0; i < 100; i++)
            common_put(cs, "g", &keep, 1000, data);
        common_commit();
    }
    struct common_got *g = common_read("g", 0, COMMON_GOT_MAX, 1000);
    cr_assert_eq(g->n, 1000);
    for (size_t i = 0; i < g->n; i++)
        cr_assert_eq(g->off[i], 2001 + i);
    free(g);
    cr_assert_eq(common_info("g").first_offset, 2001);
}

Test(COMMON_SUITE, retention_zero_keeps_nothing_but_offsets_still_advance)
{
    struct store_retention none = {.max_messages = 0, .ttl_ms = INT64_MAX};
    struct store_retention no_ttl = {.max_messages = 100, .ttl_ms = 0};

    common_put(cs, "g", &common_keep, 1000, "kept");
    for (uint64_t i = 2; i <= 4; i++)
        cr_assert_eq(common_put(cs, "g", &none, 1000, "x"), i);
    cr_assert_eq(common_put(cs, "g", &no_ttl, 1000, "x"), 5);

    struct common_got *g = common_read("g", 0, 100, 1000);
    cr_assert_eq(g->n, 0, "history_size 0 dropped the older message too");
    free(g);
    struct store_channel_info info = common_info("g");
    cr_assert_eq(info.last_offset, 5);
    cr_assert_eq(info.first_offset, 0);
}

Test(COMMON_SUITE, read_skips_messages_past_the_ttl)
{
    struct store_retention ttl = {.max_messages = 100, .ttl_ms = 1000};

    common_put(cs, "g", &ttl, 1000, "a");
    common_put(cs, "g", &ttl, 2000, "b");
    common_put(cs, "g", &ttl, 3000, "c");

    struct common_got *g = common_read("g", 0, 100, 3000); /* 3000 - 2000 == ttl: kept */
    cr_assert_eq(g->n, 2);
    cr_assert_eq(g->off[0], 2);
    free(g);
    g = common_read("g", 0, 100, 3001);
    cr_assert_eq(g->n, 1);
    cr_assert_str_eq(g->data[0], "c");
    free(g);
    g = common_read("g", 0, 100, 9000);
    cr_assert_eq(g->n, 0);
    free(g);
}

Test(COMMON_SUITE, expire_deletes_messages_past_the_ttl_only)
{
    struct store_retention ttl = {.max_messages = 100, .ttl_ms = 1000};

    common_put(cs, "g", &ttl, 1000, "a");
    common_put(cs, "g", &ttl, 2000, "b");
    common_put(cs, "g", &ttl, 3000, "c");
    common_put(cs, "h", &ttl, 2500, "d");

    cr_assert_eq(store_expire(cs, 1500, 100), 0, "nothing is past its ttl yet");
    cr_assert_eq(store_expire(cs, 3200, 100), 2);
    struct common_got *g = common_read("g", 0, 100, 0);
    cr_assert_eq(g->n, 1);
    cr_assert_eq(g->off[0], 3);
    free(g);
    cr_assert_eq(common_info("g").first_offset, 3);
    cr_assert_eq(common_info("h").first_offset, 1);
    cr_assert_eq(store_expire(cs, 3600, 100), 1);
    cr_assert_eq(store_expire(cs, 10000, 100), 1);
    struct store_channel_info info = common_info("g");
    cr_assert_eq(info.first_offset, 0);
    cr_assert_eq(info.last_offset, 3, "the channel keeps its offsets after expiring");
    cr_assert_eq(common_put(cs, "g", &ttl, 20000, "e"), 4);
}

Test(COMMON_SUITE, expire_stops_at_its_budget_and_resumes)
{
    struct store_retention ttl = {.max_messages = 100, .ttl_ms = 10};

    for (int i = 0; i < 5; i++)
        common_put(cs, "g", &ttl, 1000 + i, "x");
    cr_assert_eq(store_expire(cs, 5000, 2), 2);
    cr_assert_eq(common_info("g").first_offset, 3);
    cr_assert_eq(store_expire(cs, 5000, 2), 2);
    cr_assert_eq(store_expire(cs, 5000, 2), 1);
    cr_assert_eq(store_expire(cs, 5000, 2), 0);
    cr_assert_eq(common_info("g").first_offset, 0);
}

Test(COMMON_SUITE, a_shorter_ttl_applies_to_messages_already_kept)
{
    struct store_retention longer = {.max_messages = 100, .ttl_ms = 100000};
    struct store_retention shorter = {.max_messages = 100, .ttl_ms = 100};

    common_put(cs, "g", &longer, 1000, "a");
    common_put(cs, "g", &shorter, 1050, "b");
    cr_assert_eq(store_expire(cs, 1101, 100), 1);
    cr_assert_eq(common_info("g").first_offset, 2);
}

Test(COMMON_SUITE, ack_deletes_a_personal_channel_up_to_the_offset)
{
    for (int i = 0; i < 5; i++)
        common_put(cs, "@alice", &common_keep, 1000, "x");
    cr_assert_eq(store_ack(cs, "@alice", 3), 0);

    struct common_got *g = common_read("@alice", 0, 100, 1000);
    cr_assert_eq(g->n, 2);
    cr_assert_eq(g->off[0], 4);
    free(g);
    cr_assert_eq(common_info("@alice").first_offset, 4);
    cr_assert_eq(store_ack(cs, "@alice", 2), 0, "an older ack changes nothing");
    cr_assert_eq(common_info("@alice").first_offset, 4);
    cr_assert_eq(store_ack(cs, "@alice", 99), 0);
    struct store_channel_info info = common_info("@alice");
    cr_assert_eq(info.first_offset, 0);
    cr_assert_eq(info.last_offset, 5);
    cr_assert_eq(common_put(cs, "@alice", &common_keep, 1000, "x"), 6);
    cr_assert_eq(store_ack(cs, "@nobody", 5), 0);
}

Test(COMMON_SUITE, ack_in_a_batch_spans_many_messages)
{
    common_begin();
    for (int i = 0; i < 3000; i++)
        common_put(cs, "@bob", &common_keep, 1000, "0123456789012345678901234567890123456789");
    common_commit();
    common_begin();
    cr_assert_eq(store_ack(cs, "@bob", 2500), 0);
    common_commit();

    struct common_got *g = common_read("@bob", 0, COMMON_GOT_MAX, 1000);
    cr_assert_eq(g->n, 500);
    for (size_t i = 0; i < g->n; i++)
        cr_assert_eq(g->off[i], 2501 + i);
    free(g);
}

Test(COMMON_SUITE, dedup_within_the_window_returns_the_first_offset)
{
    bool dup = true;
    uint64_t first = common_put_dedup("g", "5:alicem1", 60000, 1000, "a", &dup);

    cr_assert_not(dup);
    common_put(cs, "g", &common_keep, 1000, "b");
    uint64_t again = common_put_dedup("g", "5:alicem1", 60000, 60999, "c", &dup);
    cr_assert(dup);
    cr_assert_eq(again, first);
    cr_assert_eq(common_info("g").last_offset, 2, "the duplicate was not appended");
    common_put_dedup("g", "3:bobm1", 60000, 2000, "d", &dup);
    cr_assert_not(dup, "another key is no duplicate");
}

Test(COMMON_SUITE, dedup_after_the_window_appends_anew)
{
    bool dup = true;
    uint64_t first = common_put_dedup("g", "k", 60000, 1000, "a", &dup);
    uint64_t second = common_put_dedup("g", "k", 60000, 61000, "b", &dup);

    cr_assert_not(dup);
    cr_assert_eq(second, first + 1);
    uint64_t third = common_put_dedup("g", "k", 60000, 61001, "c", &dup);
    cr_assert(dup);
    cr_assert_eq(third, second, "the window restarts at the new message");
}

Test(COMMON_SUITE, dedup_sees_an_earlier_append_of_the_same_batch)
{
    bool dup = true;

    common_begin();
    uint64_t first = common_put_dedup("@u", "k", 1000, 1000, "a", &dup);
    cr_assert_not(dup);
    uint64_t again = common_put_dedup("@u", "k", 1000, 1001, "a", &dup);
    cr_assert(dup);
    cr_assert_eq(again, first);
    common_commit();
    cr_assert_eq(common_info("@u").last_offset, 1);
}

/* A login in the middle of a batch positions the session at the channel's last offset and
   replays up to it: both must include what the batch appended before. */
Test(COMMON_SUITE, reads_inside_a_batch_see_its_earlier_appends)
{
    common_begin();
    common_put(cs, "g:rw", &common_keep, 1000, "one");
    common_commit();
    common_begin();
    common_put(cs, "g:rw", &common_keep, 1001, "two");
    common_put(cs, "g:rw", &common_keep, 1002, "three");
    cr_assert_eq(common_info("g:rw").last_offset, 3);
    struct common_got *g = common_read("g:rw", 1, 100, 2000);
    cr_assert_eq(g->n, 2);
    cr_assert_str_eq(g->data[0], "two");
    cr_assert_str_eq(g->data[1], "three");
    free(g);
    common_commit();
    cr_assert_eq(common_info("g:rw").last_offset, 3);
}

/* Appends user's mid at ts with a 60 s window; true when it was a duplicate. */
static bool common_user_dup(const char *user, const char *mid, int64_t ts)
{
    char key[STORE_DEDUP_KEY_MAX + 1];
    bool dup = false;

    cr_assert_eq(store_dedup_key(key, sizeof(key), user, mid), 0);
    common_put_dedup("g:dm", key, 60000, ts, mid, &dup);
    return dup;
}

Test(COMMON_SUITE, dedup_max_forgets_a_users_oldest_keys_first)
{
    char mid[16];

    store_set_dedup_max(cs, 3);
    cr_assert_not(common_user_dup("bob", "b1", 999));
    for (int i = 1; i <= 5; i++) {
        snprintf(mid, sizeof(mid), "m%d", i);
        cr_assert_not(common_user_dup("alice", mid, 1000 + i));
    }
    /* alice's three newest are remembered, her two oldest are not; bob is apart. */
    cr_assert(common_user_dup("alice", "m5", 2000));
    cr_assert(common_user_dup("alice", "m4", 2000));
    cr_assert(common_user_dup("alice", "m3", 2000));
    cr_assert(common_user_dup("bob", "b1", 2000));
    cr_assert_not(common_user_dup("alice", "m1", 2001), "forgotten: appended anew");
    cr_assert_not(common_user_dup("alice", "m3", 2002), "m1 again pushed m3 out");
    cr_assert(common_user_dup("alice", "m1", 2003));
    cr_assert_eq(common_info("g:dm").last_offset, 8);
}

Test(COMMON_SUITE, dedup_max_counts_a_key_renewed_after_its_window_once)
{
    store_set_dedup_max(cs, 2);
    cr_assert_not(common_user_dup("carol", "a", 1000));
    cr_assert_not(common_user_dup("carol", "a", 61000), "its window had passed");
    cr_assert_not(common_user_dup("carol", "b", 61001));
    cr_assert(common_user_dup("carol", "a", 61002), "still one of carol's two keys");
    cr_assert(common_user_dup("carol", "b", 61003));
}

Test(COMMON_SUITE, dedup_max_does_not_count_keys_past_their_window)
{
    char mid[16];

    store_set_dedup_max(cs, 2);
    cr_assert_not(common_user_dup("dave", "old1", 1000));
    cr_assert_not(common_user_dup("dave", "old2", 1001));
    cr_assert_eq(store_expire(cs, 100000, 1000) >= 0, true);
    cr_assert_not(common_user_dup("dave", "new1", 100001));
    cr_assert_not(common_user_dup("dave", "new2", 100002));
    cr_assert(common_user_dup("dave", "new1", 100003), "the expired keys took no room");
    cr_assert(common_user_dup("dave", "new2", 100004));
    store_set_dedup_max(cs, 0); /* no cap: every key stays for its window */
    for (int i = 0; i < 50; i++) {
        snprintf(mid, sizeof(mid), "n%d", i);
        cr_assert_not(common_user_dup("erin", mid, 200000 + i));
    }
    for (int i = 0; i < 50; i++) {
        snprintf(mid, sizeof(mid), "n%d", i);
        cr_assert(common_user_dup("erin", mid, 200100));
    }
}

Test(COMMON_SUITE, dedup_key_user_part_is_found_only_in_store_keys)
{
    cr_assert_eq(store_dedup_key_user_len("5:alicem1", 9), 7);
    cr_assert_eq(store_dedup_key_user_len("0:m", 3), 2);
    cr_assert_eq(store_dedup_key_user_len("k", 1), 0);
    cr_assert_eq(store_dedup_key_user_len("9:ab", 4), 0, "longer than the key");
    cr_assert_eq(store_dedup_key_user_len(":ab", 3), 0);
    cr_assert_eq(store_dedup_key_user_len("12345:a", 7), 0);
}

Test(COMMON_SUITE, dedup_is_off_without_a_key_or_window)
{
    bool dup = true;

    common_put_dedup("g", "k", 0, 1000, "a", &dup);
    common_put_dedup("g", "k", 0, 1000, "a", &dup);
    cr_assert_not(dup);
    common_put_dedup("g", NULL, 1000, 1000, "a", &dup);
    cr_assert_not(dup);
    cr_assert_eq(common_info("g").last_offset, 3);
}

Test(COMMON_SUITE, sessions_put_get_replace_and_delete)
{
    int64_t now = clock_wall_ms(), exp = now + 600000;
    uint8_t buf[64], small[2];
    int n;

    cr_assert_eq(store_session_get(cs, "s1", buf, sizeof(buf), now), WSD_ENOENT);
    cr_assert_eq(store_session_put(cs, "s1", (const uint8_t *)"hello", 5, exp), 0);
    n = store_session_get(cs, "s1", buf, sizeof(buf), now);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    cr_assert_eq(store_session_get(cs, "s1", small, sizeof(small), now), WSD_ETOOBIG);
    cr_assert_eq(store_session_get(cs, "s1", buf, sizeof(buf), exp), WSD_ENOENT,
                 "expired at its expiry");
    cr_assert_eq(store_session_get(cs, "s1", buf, sizeof(buf), exp - 1), 5);

    common_begin();
    cr_assert_eq(store_session_put(cs, "s1", (const uint8_t *)"bye", 3, exp + 1000), 0);
    common_commit();
    cr_assert_eq(store_session_get(cs, "s1", buf, sizeof(buf), exp), 3);
    cr_assert_eq(memcmp(buf, "bye", 3), 0);
    cr_assert_eq(store_session_put(cs, "s2", NULL, 0, exp), 0);
    cr_assert_eq(store_session_get(cs, "s2", buf, sizeof(buf), now), 0);

    cr_assert_eq(store_session_del(cs, "s1"), 0);
    cr_assert_eq(store_session_get(cs, "s1", buf, sizeof(buf), now), WSD_ENOENT);
    cr_assert_eq(store_session_del(cs, "s1"), 0, "deleting an absent session is fine");
    cr_assert_eq(store_session_get(cs, "s2", buf, sizeof(buf), now), 0);
}

Test(COMMON_SUITE, session_ids_and_blobs_are_checked)
{
    char long_id[STORE_SESSION_ID_MAX + 2];
    uint8_t buf[4];

    memset(long_id, 's', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    cr_assert_eq(store_session_put(cs, "", (const uint8_t *)"x", 1, 1), WSD_EINVAL);
    cr_assert_eq(store_session_put(cs, long_id, (const uint8_t *)"x", 1, 1), WSD_EINVAL);
    cr_assert_eq(store_session_put(cs, "s", (const uint8_t *)"x", STORE_SESSION_BLOB_MAX + 1,
                                   1),
                 WSD_ETOOBIG);
    cr_assert_eq(store_session_get(cs, long_id, buf, sizeof(buf), 0), WSD_ENOENT);
    cr_assert_eq(store_session_del(cs, ""), WSD_EINVAL);
}

Test(COMMON_SUITE, batch_abort_drops_queued_session_writes_and_acks)
{
    int64_t now = clock_wall_ms();
    uint8_t buf[8];

    common_put(cs, "@a", &common_keep, 1000, "x");
    common_put(cs, "@a", &common_keep, 1000, "y");
    cr_assert_eq(store_session_put(cs, "keep", (const uint8_t *)"k", 1, now + 600000), 0);
    common_begin();
    cr_assert_eq(store_session_put(cs, "s", (const uint8_t *)"v", 1, now + 600000), 0);
    cr_assert_eq(store_session_del(cs, "keep"), 0);
    cr_assert_eq(store_ack(cs, "@a", 2), 0);
    store_batch_abort(cs);

    cr_assert_eq(store_session_get(cs, "s", buf, sizeof(buf), now), WSD_ENOENT);
    cr_assert_eq(store_session_get(cs, "keep", buf, sizeof(buf), now), 1);
    struct common_got *g = common_read("@a", 0, 10, 1000);
    cr_assert_eq(g->n, 2);
    free(g);
    store_batch_abort(cs); /* without a batch: nothing */
    cr_assert_eq(store_batch_commit(cs), 0, "commit without a batch is a no-op");
}

Test(COMMON_SUITE, a_second_batch_begin_is_refused)
{
    common_begin();
    cr_assert_eq(store_batch_begin(cs), WSD_EINVAL);
    common_put(cs, "g", &common_keep, 1, "x");
    common_commit();
    cr_assert_eq(common_info("g").last_offset, 1);
}

Test(COMMON_SUITE, invalid_appends_are_refused_and_the_batch_goes_on)
{
    char long_ch[STORE_CHANNEL_MAX + 2], long_mid[STORE_MID_MAX + 2];
    char long_from[STORE_USER_MAX + 2], long_key[STORE_DEDUP_KEY_MAX + 2];
    struct store_msg m = {.ts_ms = 1};
    uint64_t off;
    bool dup;

    memset(long_ch, 'c', sizeof(long_ch) - 1);
    long_ch[sizeof(long_ch) - 1] = '\0';
    memset(long_mid, 'm', sizeof(long_mid) - 1);
    long_mid[sizeof(long_mid) - 1] = '\0';
    memset(long_from, 'f', sizeof(long_from) - 1);
    long_from[sizeof(long_from) - 1] = '\0';
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';

    common_begin();
    cr_assert_eq(store_append(cs, "", &common_keep, NULL, 0, &m, &off, &dup), WSD_EINVAL);
    cr_assert_eq(store_append(cs, long_ch, &common_keep, NULL, 0, &m, &off, &dup), WSD_EINVAL);
    long_ch[STORE_CHANNEL_MAX] = '\0';
    cr_assert_eq(store_append(cs, long_ch, &common_keep, NULL, 0, &m, &off, &dup), 0,
                 "a channel of STORE_CHANNEL_MAX bytes is fine");
    m.mid = long_mid;
    cr_assert_eq(store_append(cs, "g", &common_keep, NULL, 0, &m, &off, &dup), WSD_EINVAL);
    m.mid = NULL;
    m.from = long_from;
    cr_assert_eq(store_append(cs, "g", &common_keep, NULL, 0, &m, &off, &dup), WSD_EINVAL);
    m.from = NULL;
    cr_assert_eq(store_append(cs, "g", &common_keep, long_key, 10, &m, &off, &dup), WSD_EINVAL);
    cr_assert_eq(store_append(cs, "g", &common_keep, "", 10, &m, &off, &dup), WSD_EINVAL);
    m.data_len = 3;
    cr_assert_eq(store_append(cs, "g", &common_keep, NULL, 0, &m, &off, &dup), WSD_EINVAL);
    m.data_len = 0;
    cr_assert_eq(store_append(cs, "g", &common_keep, NULL, 0, &m, &off, &dup), 0);
    cr_assert_eq(off, 1);
    common_commit();
    cr_assert_eq(common_info("g").last_offset, 1);
    cr_assert_eq(store_ack(cs, "", 1), WSD_EINVAL);
    struct store_channel_info info;
    cr_assert_eq(store_channel_info(cs, long_mid, &info), 0);
    cr_assert_eq(store_channel_info(cs, "", &info), WSD_EINVAL);
}

Test(COMMON_SUITE, reopening_keeps_messages_offsets_epochs_and_sessions)
{
    int64_t now = clock_wall_ms();
    uint8_t buf[8];

    common_put(cs, "g", &common_keep, 1000, "a");
    common_put(cs, "g", &common_keep, 1000, "b");
    cr_assert_eq(store_session_put(cs, "s", (const uint8_t *)"v", 1, now + 600000), 0);
    struct store_channel_info before = common_info("g");
    struct store_channel_info unwritten = common_info("unwritten");
    common_close();
    common_open();

    struct store_channel_info after = common_info("g");
    cr_assert_eq(after.last_offset, 2);
    cr_assert_str_eq(after.epoch, before.epoch);
    cr_assert_str_eq(common_info("unwritten").epoch, unwritten.epoch);
    struct common_got *g = common_read("g", 0, 10, 1000);
    cr_assert_eq(g->n, 2);
    cr_assert_str_eq(g->data[1], "b");
    free(g);
    cr_assert_eq(store_session_get(cs, "s", buf, sizeof(buf), now), 1);
    cr_assert_eq(common_put(cs, "g", &common_keep, 1000, "c"), 3);
}

Test(COMMON_SUITE, dedup_key_joins_user_and_mid_unambiguously)
{
    char a[STORE_DEDUP_KEY_MAX + 1], b[STORE_DEDUP_KEY_MAX + 1];
    char user[STORE_USER_MAX + 1], mid[STORE_MID_MAX + 1];

    cr_assert_eq(store_dedup_key(a, sizeof(a), "ab", "c"), 0);
    cr_assert_eq(store_dedup_key(b, sizeof(b), "a", "bc"), 0);
    cr_assert_str_eq(a, "2:abc");
    cr_assert_str_neq(a, b);
    cr_assert_eq(store_dedup_key(a, 4, "ab", "c"), WSD_ETOOBIG);
    memset(user, 'u', STORE_USER_MAX);
    user[STORE_USER_MAX] = '\0';
    memset(mid, 'm', STORE_MID_MAX);
    mid[STORE_MID_MAX] = '\0';
    cr_assert_eq(store_dedup_key(a, sizeof(a), user, mid), 0, "the longest user and mid fit");
}

/* Child of the concurrency test: appends COMMON_PER_CHILD messages "child:seq". */
#define COMMON_CHILDREN 4
#define COMMON_PER_CHILD 250

static int common_child_appends(int child)
{
    struct store *s = common_open_new();
    char data[32];
    uint64_t off, prev = 0;
    bool dup;

    for (int seq = 0; seq < COMMON_PER_CHILD;) {
        if (store_batch_begin(s) != 0)
            return 1;
        for (int i = 0; i < 1 + seq % 7 && seq < COMMON_PER_CHILD; i++, seq++) {
            snprintf(data, sizeof(data), "%d:%d", child, seq);
            struct store_msg m = {.ts_ms = 1000, .data = (const uint8_t *)data,
                                  .data_len = strlen(data)};
            if (store_append(s, "shared", &common_keep, NULL, 0, &m, &off, &dup) != 0 ||
                off <= prev)
                return 2;
            prev = off;
        }
        if (store_batch_commit(s) != 0)
            return 3;
    }
    store_close(s);
    return 0;
}

struct common_seen {
    uint64_t next_off;
    int next_seq[COMMON_CHILDREN];
};

static int common_check_shared(void *ctx, const struct store_msg *m)
{
    struct common_seen *seen = ctx;
    char data[32];
    int child, seq;

    cr_assert_eq(m->offset, seen->next_off, "offsets are gap-free");
    seen->next_off++;
    snprintf(data, sizeof(data), "%.*s", (int)WSD_MIN(m->data_len, 31), (const char *)m->data);
    cr_assert_eq(sscanf(data, "%d:%d", &child, &seq), 2);
    cr_assert(child >= 0 && child < COMMON_CHILDREN);
    cr_assert_eq(seq, seen->next_seq[child], "each child's messages in its order, once");
    seen->next_seq[child]++;
    return 0;
}

Test(COMMON_SUITE, processes_appending_at_once_get_unique_gap_free_offsets)
{
    pid_t pids[COMMON_CHILDREN];
    struct common_seen seen = {.next_off = 1};
    int status;

    common_put(cs, "warm", &common_keep, 1, "x");
    for (int i = 0; i < COMMON_CHILDREN; i++) {
        pids[i] = fork();
        cr_assert_neq(pids[i], -1);
        if (pids[i] == 0)
            _exit(common_child_appends(i));
    }
    for (int i = 0; i < COMMON_CHILDREN; i++) {
        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %d", i,
                  status);
    }
    cr_assert_eq(store_read(cs, "shared", 0, SIZE_MAX, 1000, common_check_shared, &seen), 0);
    cr_assert_eq(seen.next_off, COMMON_CHILDREN * COMMON_PER_CHILD + 1);
    for (int i = 0; i < COMMON_CHILDREN; i++)
        cr_assert_eq(seen.next_seq[i], COMMON_PER_CHILD);
    cr_assert_eq(common_info("shared").last_offset, COMMON_CHILDREN * COMMON_PER_CHILD);
}

#endif
