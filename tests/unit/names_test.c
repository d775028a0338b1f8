/* names_test.c - the shared name index (users, groups). */
#include "shm/names.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static struct names_table *table_new(uint32_t capacity)
{
    size_t size = names_size(capacity);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    cr_assert_eq(names_init(p, capacity), 0);
    return p;
}

static void table_free(struct names_table *t, uint32_t capacity)
{
    munmap(t, names_size(capacity));
}

Test(names, counts_connections_per_worker_and_total)
{
    struct names_table *t = table_new(64);
    struct names_info info;
    bool first, last;
    cr_assert_eq(names_add(t, "alice", 5, 0, &info, &first), 0);
    cr_assert(first);
    cr_assert_eq(names_add(t, "alice", 5, 0, &info, &first), 0);
    cr_assert_not(first);
    cr_assert_eq(names_add(t, "alice", 5, 3, &info, &first), 0);
    cr_assert(first);
    cr_assert_eq(info.total, 3);
    cr_assert_eq(info.worker_mask, (1u << 0) | (1u << 3));
    cr_assert_eq(names_lookup(t, "alice", 5, &info), 0);
    cr_assert_eq(info.total, 3);
    cr_assert_eq(names_remove(t, "alice", 5, 0, &last), 0);
    cr_assert_not(last);
    cr_assert_eq(names_remove(t, "alice", 5, 0, &last), 0);
    cr_assert(last);
    cr_assert_eq(names_lookup(t, "alice", 5, &info), 0);
    cr_assert_eq(info.worker_mask, 1u << 3);
    cr_assert_eq(names_remove(t, "alice", 5, 0, &last), WSD_ENOENT);
    cr_assert_eq(names_remove(t, "alice", 5, 3, &last), 0);
    cr_assert_eq(names_lookup(t, "alice", 5, &info), WSD_ENOENT);
    cr_assert_eq(atomic_load(&t->used), 0);
    table_free(t, 64);
}

Test(names, rejects_empty_long_names_and_bad_workers)
{
    struct names_table *t = table_new(16);
    char big[NAMES_NAME_MAX + 1];
    memset(big, 'x', sizeof(big));
    bool first;
    cr_assert_eq(names_add(t, "", 0, 0, NULL, &first), WSD_EINVAL);
    cr_assert_eq(names_add(t, big, sizeof(big), 0, NULL, &first), WSD_EINVAL);
    cr_assert_eq(names_add(t, big, NAMES_NAME_MAX, 0, NULL, &first), 0);
    cr_assert_eq(names_add(t, "a", 1, NAMES_WORKERS, NULL, &first), WSD_EINVAL);
    table_free(t, 16);
}

Test(names, refuses_new_names_past_three_quarters_and_reuses_tombstones)
{
    struct names_table *t = table_new(16);
    bool first, last;
    char name[16];
    for (int i = 0; i < 12; i++) {
        int n = snprintf(name, sizeof(name), "g%d", i);
        cr_assert_eq(names_add(t, name, (size_t)n, 1, NULL, &first), 0);
    }
    cr_assert_eq(names_add(t, "g12", 3, 1, NULL, &first), WSD_ENOSPC);
    cr_assert_eq(names_add(t, "g3", 2, 2, NULL, &first), 0); /* existing name still ok */
    for (int i = 0; i < 12; i++) {
        int n = snprintf(name, sizeof(name), "g%d", i);
        cr_assert_eq(names_remove(t, name, (size_t)n, 1, &last), 0);
    }
    /* every removed name left a tombstone; new names reuse them */
    for (int i = 100; i < 111; i++) {
        int n = snprintf(name, sizeof(name), "g%d", i);
        cr_assert_eq(names_add(t, name, (size_t)n, 0, NULL, &first), 0, "name %s", name);
    }
    struct names_info info;
    cr_assert_eq(names_lookup(t, "g3", 2, &info), 0);
    cr_assert_eq(info.worker_mask, 1u << 2);
    table_free(t, 16);
}

Test(names, release_worker_drops_only_that_workers_counts)
{
    struct names_table *t = table_new(64);
    bool first;
    names_add(t, "room:a", 6, 1, NULL, &first);
    names_add(t, "room:a", 6, 1, NULL, &first);
    names_add(t, "room:a", 6, 2, NULL, &first);
    names_add(t, "room:b", 6, 1, NULL, &first);
    cr_assert_eq(names_release_worker(t, 1), 2);
    struct names_info info;
    cr_assert_eq(names_lookup(t, "room:a", 6, &info), 0);
    cr_assert_eq(info.total, 1);
    cr_assert_eq(info.worker_mask, 1u << 2);
    cr_assert_eq(names_lookup(t, "room:b", 6, &info), WSD_ENOENT);
    cr_assert_eq(names_release_worker(t, 1), 0);
    table_free(t, 64);
}

static void count_entry(void *ctx, const struct names_entry *e)
{
    *(uint32_t *)ctx += atomic_load(&e->total);
}

Test(names, table_is_repaired_after_a_holder_dies_mid_update)
{
    struct names_table *t = table_new(64);
    bool first;
    cr_assert_eq(names_add(t, "u", 1, 0, NULL, &first), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* Die inside the critical section after changing counts but not the derived
           fields, as a crash between the two writes would leave it. */
        shm_lock(&t->lock, NULL, NULL);
        names_entries(t)[0].counts[5] += 7;
        for (uint32_t i = 0; i < t->capacity; i++) {
            if (names_entries(t)[i].state == NAMES_USED)
                names_entries(t)[i].counts[5] += 7;
        }
        kill(getpid(), SIGKILL);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status));
    struct names_info info;
    cr_assert_eq(names_lookup(t, "u", 1, &info), 0);
    cr_assert_eq(t->lock.repairs, 1);
    cr_assert_eq(info.total, 8, "derived total rebuilt from counts: %u", info.total);
    cr_assert_eq(info.worker_mask, (1u << 0) | (1u << 5));
    cr_assert_eq(names_add(t, "v", 1, 1, NULL, &first), 0); /* usable afterwards */
    uint32_t sum = 0;
    names_foreach(t, count_entry, &sum);
    cr_assert_eq(sum, 9);
    table_free(t, 64);
}
