/* conn_table_test.c - the shared segment and its connection table. */
#include "shm/conn_table.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/ring.h"
#include "shm/seg.h"

#define SMALL 16

static struct shm_seg seg;
static char seg_name[SHM_SEG_NAME_LEN];
static int die_at_step = -1; /* conn_table_test_hook kills the process at this step */

void conn_table_test_hook(enum conn_table_step step)
{
    if ((int)step == die_at_step)
        raise(SIGKILL);
}

static void make_name(const char *what)
{
    static int serial;

    snprintf(seg_name, sizeof(seg_name), "/wsd-test-%s-%d-%d", what, (int)getpid(), serial++);
}

static void create_seg(uint32_t max_connections)
{
    struct shm_seg_sizes sz = {.max_connections = max_connections,
                               .ring_bytes = SHM_SEG_RING_MIN};

    make_name("ct");
    cr_assert_eq(shm_seg_create(&seg, seg_name, &sz), 0);
}

static void small_setup(void)
{
    uint32_t w;

    create_seg(SMALL);
    for (w = 0; w < 8; w++)
        atomic_store(&shm_seg_worker(&seg, w)->state, SHM_SEG_WORKER_RUNNING);
}

static void teardown(void)
{
    shm_seg_close(&seg);
    shm_seg_unlink(seg_name);
}

static void no_setup(void)
{
    seg_name[0] = '\0';
}

static void seg_teardown(void)
{
    shm_seg_close(&seg);
    if (seg_name[0] != '\0')
        shm_seg_unlink(seg_name);
}

TestSuite(conn_table, .init = small_setup, .fini = teardown);
TestSuite(shm_seg, .init = no_setup, .fini = seg_teardown);

static const struct conn_table_addr addr4 = {.family = 2, .port = 40000, .addr = {127, 0, 0, 1}};

static uint64_t alloc_ok(uint32_t worker)
{
    uint64_t id = CONN_TABLE_ID_NONE;

    cr_assert_eq(conn_table_alloc(&seg, worker, &addr4, 0, 1000, 500, &id), 0);
    cr_assert_neq(id, CONN_TABLE_ID_NONE);
    return id;
}

/* Allocates until WSD_ENOSPC; returns how many allocations succeeded. */
static uint32_t fill_table(uint32_t worker)
{
    uint64_t id;
    uint32_t n = 0;
    int rc;

    while ((rc = conn_table_alloc(&seg, worker, &addr4, 0, 1, 1, &id)) == 0)
        n++;
    cr_assert_eq(rc, WSD_ENOSPC);
    return n;
}

Test(conn_table, fills_up_then_reuses_a_released_slot_with_a_new_generation)
{
    uint64_t ids[SMALL], extra, again;
    uint32_t i;

    for (i = 0; i < SMALL; i++) {
        ids[i] = alloc_ok(1);
        cr_assert_eq(conn_table_id_index(ids[i]), i, "fresh table hands out slots in order");
    }
    cr_assert_eq(conn_table_in_use(&seg), SMALL);
    cr_assert_eq(conn_table_alloc(&seg, 1, &addr4, 0, 0, 0, &extra), WSD_ENOSPC);
    cr_assert_eq(atomic_load(&seg.conn_hdr->full), 1);

    cr_assert_eq(conn_table_release(&seg, ids[5]), 0);
    cr_assert_eq(conn_table_in_use(&seg), SMALL - 1);
    cr_assert_null(conn_table_get(&seg, ids[5]));
    again = alloc_ok(1);
    cr_assert_eq(conn_table_id_index(again), 5);
    cr_assert_neq(conn_table_id_generation(again), conn_table_id_generation(ids[5]));
    cr_assert_null(conn_table_get(&seg, ids[5]), "old id is stale");
    cr_assert_not_null(conn_table_get(&seg, again));
    cr_assert_eq(conn_table_release(&seg, ids[5]), WSD_ENOENT);
    cr_assert_eq(conn_table_request_close(&seg, ids[5], 4000), WSD_ENOENT);
    cr_assert_eq(conn_table_alloc(&seg, 1, &addr4, 0, 0, 0, &extra), WSD_ENOSPC);
    cr_assert_eq(conn_table_verify(&seg), 0);
}

Test(conn_table, free_list_is_lifo_and_release_twice_is_refused)
{
    uint64_t a = alloc_ok(0), b = alloc_ok(0), c = alloc_ok(0);

    (void)a;
    cr_assert_eq(conn_table_release(&seg, b), 0);
    cr_assert_eq(conn_table_release(&seg, b), WSD_ENOENT);
    cr_assert_eq(conn_table_release(&seg, c), 0);
    cr_assert_eq(conn_table_id_index(alloc_ok(0)), conn_table_id_index(c));
    cr_assert_eq(conn_table_id_index(alloc_ok(0)), conn_table_id_index(b));
    cr_assert_eq(conn_table_high_water(&seg), 3);
    cr_assert_eq(conn_table_verify(&seg), 0);
}

Test(conn_table, rejects_invalid_ids_and_workers)
{
    uint64_t id;

    cr_assert_eq(conn_table_alloc(&seg, SHM_SEG_WORKERS, &addr4, 0, 0, 0, &id), WSD_EINVAL);
    cr_assert_null(conn_table_get(&seg, CONN_TABLE_ID_NONE));
    cr_assert_null(conn_table_get(&seg, conn_table_make_id(1, SMALL)));
    cr_assert_null(conn_table_get(&seg, conn_table_make_id(1, 0)), "slot 0 is free");
    cr_assert_eq(conn_table_release(&seg, conn_table_make_id(1, SMALL)), WSD_ENOENT);
    cr_assert_eq(conn_table_release(&seg, conn_table_make_id(0, 0)), WSD_ENOENT);
    cr_assert_eq(conn_table_release_worker(&seg, SHM_SEG_WORKERS), WSD_EINVAL);
    id = alloc_ok(0);
    cr_assert_null(conn_table_get(&seg, conn_table_make_id(conn_table_id_generation(id) + 1,
                                                           conn_table_id_index(id))));
}

Test(conn_table, alloc_sets_identity_and_resets_what_the_last_occupant_left)
{
    struct conn_table_addr a6 = {.family = 10, .port = 443, .addr = {0x20, 0x01, 0x0d, 0xb8}};
    struct conn_table_info info;
    struct conn_table_slot *s;
    uint64_t id, id2;

    cr_assert_eq(conn_table_alloc(&seg, 3, &a6, 0, 1700000000123, 42, &id), 0);
    s = conn_table_get(&seg, id);
    cr_assert_not_null(s);
    atomic_store(&s->bytes_in, 99);
    atomic_store(&s->msgs_out, 7);
    atomic_store(&s->rtt_us, 1234);
    atomic_store(&s->user, 17);
    cr_assert_eq(conn_table_set_state(s, CONN_TABLE_CONNECTED), 0);
    cr_assert_eq(conn_table_snapshot(&seg, conn_table_id_index(id), &info), 0);
    cr_assert_eq(info.id, id);
    cr_assert_eq(info.state, CONN_TABLE_CONNECTED);
    cr_assert_eq(info.owner, 3);
    cr_assert_eq(info.remote.family, 10);
    cr_assert_eq(info.remote.port, 443);
    cr_assert_arr_eq(info.remote.addr, a6.addr, 16);
    cr_assert_eq(info.connect_wall_ms, 1700000000123);
    cr_assert_eq(info.last_seen_ms, 42);
    cr_assert_eq(info.bytes_in, 99);
    cr_assert_eq(info.msgs_out, 7);
    cr_assert_eq(info.rtt_us, 1234);
    cr_assert_eq(info.user, 17);

    cr_assert_eq(conn_table_release(&seg, id), 0);
    cr_assert_eq(conn_table_snapshot(&seg, conn_table_id_index(id), &info), WSD_ENOENT);
    cr_assert_eq(conn_table_alloc(&seg, 4, NULL, 0, 5, 6, &id2), 0);
    cr_assert_eq(conn_table_id_index(id2), conn_table_id_index(id));
    cr_assert_eq(conn_table_snapshot(&seg, conn_table_id_index(id2), &info), 0);
    cr_assert_eq(info.state, CONN_TABLE_CONNECTING);
    cr_assert_eq(info.owner, 4);
    cr_assert_eq(info.remote.family, 0);
    cr_assert_eq(info.bytes_in, 0);
    cr_assert_eq(info.msgs_out, 0);
    cr_assert_eq(info.rtt_us, 0);
    cr_assert_eq(info.user, CONN_TABLE_USER_NONE);
}

Test(conn_table, set_state_refuses_free_and_unknown_states)
{
    struct conn_table_slot *s = conn_table_get(&seg, alloc_ok(0));

    cr_assert_eq(conn_table_set_state(s, CONN_TABLE_FREE), WSD_EINVAL);
    cr_assert_eq(conn_table_set_state(s, (enum conn_table_state)9), WSD_EINVAL);
    cr_assert_eq(conn_table_set_state(s, CONN_TABLE_CLOSING), 0);
    cr_assert_eq(atomic_load(&s->state), CONN_TABLE_CLOSING);
}

Test(conn_table, close_request_reaches_only_the_connection_it_was_made_for)
{
    uint64_t id = alloc_ok(2), id2;
    struct conn_table_slot *s = conn_table_get(&seg, id);
    struct conn_table_info info;

    cr_assert_eq(conn_table_take_close_request(s), 0);
    cr_assert_eq(conn_table_request_close(&seg, id, 0), WSD_EINVAL);
    cr_assert_eq(conn_table_request_close(&seg, id, 4000), 0);
    cr_assert_eq(conn_table_snapshot(&seg, conn_table_id_index(id), &info), 0);
    cr_assert_eq(info.close_request, 4000);
    cr_assert_eq(conn_table_take_close_request(s), 4000);
    cr_assert_eq(conn_table_take_close_request(s), 0, "taking clears it");

    /* A request that lands after the slot changed hands carries the old generation. */
    cr_assert_eq(conn_table_release(&seg, id), 0);
    id2 = alloc_ok(2);
    cr_assert_eq(conn_table_id_index(id2), conn_table_id_index(id));
    atomic_store(&s->close_request, (id & ~(uint64_t)UINT32_MAX) | 4000);
    cr_assert_eq(conn_table_take_close_request(s), 0);
}

Test(conn_table, release_worker_frees_exactly_that_workers_slots)
{
    uint64_t ids[12];
    uint32_t owners[12] = {1, 2, 3, 2, 2, 1, 3, 2, 1, 1, 2, 3};
    uint32_t i;

    for (i = 0; i < 12; i++)
        ids[i] = alloc_ok(owners[i]);
    cr_assert_eq(conn_table_release(&seg, ids[3]), 0); /* one of worker 2's closed already */
    cr_assert_eq(atomic_load(&shm_seg_worker(&seg, 2)->connections), 4);
    cr_assert_eq(conn_table_release_worker(&seg, 2), 4);
    cr_assert_eq(atomic_load(&shm_seg_worker(&seg, 2)->connections), 0);
    cr_assert_eq(atomic_load(&shm_seg_worker(&seg, 1)->connections), 4);
    cr_assert_eq(atomic_load(&shm_seg_worker(&seg, 3)->connections), 3);
    for (i = 0; i < 12; i++) {
        if (owners[i] == 2)
            cr_assert_null(conn_table_get(&seg, ids[i]));
        else
            cr_assert_not_null(conn_table_get(&seg, ids[i]));
    }
    cr_assert_eq(conn_table_in_use(&seg), 7);
    cr_assert_eq(conn_table_release_worker(&seg, 2), 0);
    cr_assert_eq(conn_table_release_worker(&seg, 5), 0);
    cr_assert_eq(conn_table_verify(&seg), 0);
}

/*
 * Forks a child that runs one allocation (release when `release_id` is set) as worker 3
 * and is killed with SIGKILL at `step` while holding the table lock.
 */
static void child_killed_at(enum conn_table_step step, uint64_t release_id)
{
    pid_t pid = fork();
    int status;

    cr_assert_neq(pid, -1);
    if (pid == 0) {
        uint64_t id;

        die_at_step = (int)step;
        if (release_id != CONN_TABLE_ID_NONE)
            conn_table_release(&seg, release_id);
        else
            conn_table_alloc(&seg, 3, &addr4, 0, 0, 0, &id);
        _exit(0); /* not reached: the hook killed us */
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child died at step %d",
              (int)step);
}

/*
 * Prepares slots 0..5 in use (worker 1) with 2 and 4 released, so the free list is not
 * empty (from_free_list) or empty (allocation at the high-water mark), kills a child in
 * the middle, then checks the next locker repaired the table and every slot is usable.
 */
static void check_alloc_death(enum conn_table_step step, bool from_free_list)
{
    uint64_t ids[6];
    uint32_t i, in_use, expect;

    for (i = 0; i < 6; i++)
        ids[i] = alloc_ok(1);
    if (from_free_list) {
        cr_assert_eq(conn_table_release(&seg, ids[2]), 0);
        cr_assert_eq(conn_table_release(&seg, ids[4]), 0);
    }
    in_use = conn_table_in_use(&seg);
    child_killed_at(step, CONN_TABLE_ID_NONE);

    cr_assert_eq(conn_table_verify(&seg), 0, "the next locker repaired the table");
    cr_assert_eq(seg.conn_hdr->lock.repairs, 1);
    expect = in_use + (step == CONN_TABLE_STEP_ALLOC_PUBLISHED ? 1 : 0);
    cr_assert_eq(conn_table_in_use(&seg), expect, "step %d", (int)step);
    cr_assert_eq(atomic_load(&shm_seg_worker(&seg, 3)->connections),
                 step == CONN_TABLE_STEP_ALLOC_PUBLISHED ? 1 : 0);
    for (i = 0; i < 6; i++)
        if (!from_free_list || (i != 2 && i != 4))
            cr_assert_not_null(conn_table_get(&seg, ids[i]), "slot %u kept", i);
    cr_assert_eq(fill_table(1), SMALL - expect, "every slot is accounted for");
    cr_assert_eq(conn_table_verify(&seg), 0);
}

Test(conn_table, death_after_picking_a_slot_is_repaired)
{
    check_alloc_death(CONN_TABLE_STEP_ALLOC_PICKED, false);
}

Test(conn_table, death_after_raising_high_water_is_repaired)
{
    check_alloc_death(CONN_TABLE_STEP_ALLOC_UNLINKED, false);
}

Test(conn_table, death_after_unlinking_from_free_list_is_repaired)
{
    check_alloc_death(CONN_TABLE_STEP_ALLOC_UNLINKED, true);
}

Test(conn_table, death_after_filling_a_slot_is_repaired)
{
    check_alloc_death(CONN_TABLE_STEP_ALLOC_FILLED, true);
}

Test(conn_table, death_after_publishing_a_slot_keeps_it_for_release_worker)
{
    check_alloc_death(CONN_TABLE_STEP_ALLOC_PUBLISHED, false);
    cr_assert_eq(conn_table_release_worker(&seg, 3), 1);
    cr_assert_eq(conn_table_verify(&seg), 0);
}

static void check_release_death(enum conn_table_step step)
{
    uint64_t ids[6];
    uint32_t i;

    for (i = 0; i < 6; i++)
        ids[i] = alloc_ok(1);
    cr_assert_eq(conn_table_release(&seg, ids[1]), 0);
    child_killed_at(step, ids[3]);
    cr_assert_eq(conn_table_verify(&seg), 0);
    cr_assert_eq(seg.conn_hdr->lock.repairs, 1);
    cr_assert_null(conn_table_get(&seg, ids[3]), "the release took effect");
    cr_assert_eq(conn_table_in_use(&seg), 4);
    cr_assert_eq(atomic_load(&shm_seg_worker(&seg, 1)->connections), 4);
    cr_assert_eq(fill_table(1), SMALL - 4);
    cr_assert_eq(conn_table_verify(&seg), 0);
}

Test(conn_table, death_after_marking_a_slot_free_is_repaired)
{
    check_release_death(CONN_TABLE_STEP_RELEASE_FREED);
}

Test(conn_table, death_after_linking_a_released_slot_is_repaired)
{
    check_release_death(CONN_TABLE_STEP_RELEASE_LINKED);
}

Test(conn_table, repair_frees_slots_whose_worker_slot_is_empty)
{
    uint64_t kept = alloc_ok(1);
    uint64_t orphan = alloc_ok(9); /* worker 9 was never started: EMPTY */

    child_killed_at(CONN_TABLE_STEP_ALLOC_PUBLISHED, CONN_TABLE_ID_NONE); /* worker 3 */
    atomic_store(&shm_seg_worker(&seg, 3)->state, SHM_SEG_WORKER_DEAD);
    cr_assert_eq(conn_table_verify(&seg), 0);
    cr_assert_not_null(conn_table_get(&seg, kept));
    cr_assert_null(conn_table_get(&seg, orphan), "nobody would ever release it");
    cr_assert_eq(atomic_load(&shm_seg_worker(&seg, 9)->connections), 0);
    cr_assert_eq(atomic_load(&shm_seg_worker(&seg, 3)->connections), 1,
                 "a dead worker's slots wait for the master");
    cr_assert_eq(conn_table_in_use(&seg), 2);
}

Test(conn_table, verify_detects_a_corrupted_free_list)
{
    uint64_t a = alloc_ok(0), b = alloc_ok(0);

    cr_assert_eq(conn_table_release(&seg, a), 0);
    cr_assert_eq(conn_table_release(&seg, b), 0);
    seg.conns[conn_table_id_index(a)].next_free = conn_table_id_index(b); /* a cycle */
    cr_assert_eq(conn_table_verify(&seg), WSD_EBROKEN);
}

Test(conn_table, snapshot_rejects_free_and_out_of_range_slots)
{
    struct conn_table_info info;

    cr_assert_eq(conn_table_snapshot(&seg, 0, &info), WSD_ENOENT);
    cr_assert_eq(conn_table_snapshot(&seg, SMALL, &info), WSD_ENOENT);
    cr_assert_eq(conn_table_capacity(&seg), SMALL);
}

/* Pages of the connection array that are resident. */
static size_t resident_pages(void)
{
    size_t len = (size_t)conn_table_capacity(&seg) * sizeof(struct conn_table_slot);
    size_t pages = (len + SHM_SEG_PAGE - 1) / SHM_SEG_PAGE, i, n = 0;
    unsigned char *vec = calloc(pages, 1);

    cr_assert_not_null(vec);
    cr_assert_eq(mincore(seg.conns, len, vec), 0);
    for (i = 0; i < pages; i++)
        n += vec[i] & 1;
    free(vec);
    return n;
}

Test(shm_seg, million_connection_table_is_touched_only_where_used)
{
    uint64_t id;

    create_seg(SHM_SEG_MAX_CONNECTIONS);
    cr_assert_eq(resident_pages(), 0);
    cr_assert_eq(conn_table_alloc(&seg, 0, &addr4, 0, 0, 0, &id), 0);
    cr_assert_eq(conn_table_release(&seg, id), 0);
    cr_assert_eq(conn_table_alloc(&seg, 0, &addr4, 0, 0, 0, &id), 0);
    cr_assert_eq(conn_table_id_index(id), 0);
    cr_assert_eq(conn_table_high_water(&seg), 1);
    cr_assert_eq(resident_pages(), 1);
    cr_assert_eq(conn_table_verify(&seg), 0);
}

Test(shm_seg, create_writes_the_header_and_readonly_open_validates_it)
{
    struct shm_seg ro;
    struct conn_table_info info;
    uint64_t id;

    create_seg(100);
    cr_assert_eq(seg.hdr->magic, SHM_SEG_MAGIC);
    cr_assert_eq(seg.hdr->layout_version, SHM_SEG_LAYOUT_VERSION);
    cr_assert_eq(seg.hdr->master_pid, getpid());
    cr_assert_gt(seg.hdr->start_wall_ms, 0);
    cr_assert_eq(seg.hdr->conn_count, 100);
    cr_assert_eq(seg.hdr->total_size, seg.size);
    cr_assert_eq(shm_seg_state(&seg), SHM_SEG_STARTING);
    cr_assert_eq(conn_table_alloc(&seg, 0, &addr4, 0, 0, 0, &id), 0);

    cr_assert_eq(shm_seg_open_readonly(&ro, seg_name), 0);
    cr_assert(ro.readonly);
    cr_assert_eq(ro.size, seg.size);
    cr_assert_eq(conn_table_in_use(&ro), 1);
    cr_assert_eq(conn_table_snapshot(&ro, 0, &info), 0);
    cr_assert_eq(info.id, id);
    shm_seg_set_state(&seg, SHM_SEG_DRAINING);
    cr_assert_eq(shm_seg_state(&ro), SHM_SEG_DRAINING, "both map the same object");
    cr_assert_eq(ring_size(shm_seg_ring(&ro, 63)), SHM_SEG_RING_MIN);
    shm_seg_close(&ro);
    cr_assert_null(ro.base);
}

/* Changes one header field through the writable mapping and expects wsctl to refuse. */
static void expect_refused(uint32_t *field, uint32_t bad)
{
    struct shm_seg ro;
    uint32_t saved = *field;

    *field = bad;
    cr_assert_eq(shm_seg_open_readonly(&ro, seg_name), WSD_EINVAL);
    cr_assert_null(ro.base);
    *field = saved;
    cr_assert_eq(shm_seg_open_readonly(&ro, seg_name), 0);
    shm_seg_close(&ro);
}

Test(shm_seg, readonly_open_refuses_a_foreign_layout)
{
    struct shm_seg ro;

    create_seg(10);
    expect_refused(&seg.hdr->layout_version, SHM_SEG_LAYOUT_VERSION + 1);
    expect_refused(&seg.hdr->header_size, 64);
    expect_refused(&seg.hdr->worker_size, 128);
    expect_refused(&seg.hdr->worker_count, 32);
    expect_refused(&seg.hdr->conn_size, 64);
    expect_refused(&seg.hdr->conn_count, 11);      /* same layout, table header says 10 */
    expect_refused(&seg.hdr->conn_count, 100000); /* another layout */
    expect_refused(&seg.conn_hdr->count, 12);
    expect_refused(&seg.hdr->ring_header_size, 128);
    seg.hdr->magic ^= 1;
    cr_assert_eq(shm_seg_open_readonly(&ro, seg_name), WSD_EINVAL);
    seg.hdr->magic ^= 1;
    seg.hdr->rings_off += SHM_SEG_PAGE;
    cr_assert_eq(shm_seg_open_readonly(&ro, seg_name), WSD_EINVAL);
    seg.hdr->rings_off -= SHM_SEG_PAGE;
    cr_assert_eq(shm_seg_open_readonly(&ro, seg_name), 0);
    shm_seg_close(&ro);
}

Test(shm_seg, readonly_open_refuses_a_truncated_object)
{
    struct shm_seg ro;
    int fd;

    create_seg(10);
    fd = shm_open(seg_name, O_RDWR, 0);
    cr_assert_neq(fd, -1);
    cr_assert_eq(ftruncate(fd, (off_t)seg.hdr->rings_off), 0);
    close(fd);
    cr_assert_eq(shm_seg_open_readonly(&ro, seg_name), WSD_EINVAL);
}

Test(shm_seg, readonly_open_of_a_missing_segment_is_enoent)
{
    struct shm_seg ro;

    make_name("none");
    cr_assert_eq(shm_seg_open_readonly(&ro, seg_name), WSD_ENOENT);
    cr_assert_eq(shm_seg_open_readonly(&ro, "no-slash"), WSD_EINVAL);
    cr_assert_eq(shm_seg_unlink(seg_name), WSD_ENOENT);
}

/* Permissions of the mapping that starts at base, from /proc/self/maps ("r--s"). */
static void mapping_perms(const void *base, char perms[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long start;

    cr_assert_not_null(f);
    perms[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "%lx-%*x %4s", &start, perms) == 2 && start == (uintptr_t)base)
            break;
        else
            perms[0] = '\0';
    fclose(f);
}

Test(shm_seg, readonly_open_maps_without_write_permission)
{
    struct shm_seg ro;
    char perms[5];

    create_seg(10);
    cr_assert_eq(shm_seg_open_readonly(&ro, seg_name), 0);
    mapping_perms(ro.base, perms);
    cr_assert_str_eq(perms, "r--s");
    mapping_perms(seg.base, perms);
    cr_assert_str_eq(perms, "rw-s");
    shm_seg_close(&ro);
}

Test(shm_seg, create_rejects_bad_names_and_sizes)
{
    struct shm_seg_sizes ok = {.max_connections = 10, .ring_bytes = SHM_SEG_RING_MIN};
    struct shm_seg_sizes bad[] = {
        {.max_connections = 0, .ring_bytes = SHM_SEG_RING_MIN},
        {.max_connections = SHM_SEG_MAX_CONNECTIONS + 1, .ring_bytes = SHM_SEG_RING_MIN},
        {.max_connections = 10, .ring_bytes = SHM_SEG_RING_MIN + 8},
        {.max_connections = 10, .ring_bytes = SHM_SEG_RING_MIN / 2},
        {.max_connections = 10, .ring_bytes = SHM_SEG_RING_MAX * 2},
    };
    char long_name[SHM_SEG_NAME_LEN + 8];
    size_t i;

    make_name("bad");
    for (i = 0; i < WSD_ARRAY_LEN(bad); i++)
        cr_assert_eq(shm_seg_create(&seg, seg_name, &bad[i]), WSD_EINVAL, "sizes %zu", i);
    cr_assert_eq(shm_seg_create(&seg, "wsd-no-slash", &ok), WSD_EINVAL);
    cr_assert_eq(shm_seg_create(&seg, "/wsd/sub", &ok), WSD_EINVAL);
    cr_assert_eq(shm_seg_create(&seg, "/", &ok), WSD_EINVAL);
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[0] = '/';
    long_name[sizeof(long_name) - 1] = '\0';
    cr_assert_eq(shm_seg_create(&seg, long_name, &ok), WSD_EINVAL);
    cr_assert_eq(shm_seg_unlink(seg_name), WSD_ENOENT, "nothing was left behind");
}

Test(shm_seg, create_replaces_a_stale_segment_of_the_same_name)
{
    struct shm_seg_sizes sz = {.max_connections = 10, .ring_bytes = SHM_SEG_RING_MIN};
    struct shm_seg old;
    uint64_t id;

    create_seg(10);
    cr_assert_eq(conn_table_alloc(&seg, 0, &addr4, 0, 0, 0, &id), 0);
    old = seg;
    cr_assert_eq(shm_seg_create(&seg, seg_name, &sz), 0);
    cr_assert_eq(conn_table_in_use(&seg), 0, "a fresh segment, not the stale one");
    shm_seg_close(&old);
}

Test(shm_seg, name_for_hashes_the_control_socket_path)
{
    char a[SHM_SEG_NAME_LEN], b[SHM_SEG_NAME_LEN];

    shm_seg_name_for("/tmp/wsd.sock", a);
    cr_assert_str_eq(a, "/wsd-b7cedfc2f5d5a130");
    shm_seg_name_for("a", b);
    cr_assert_str_eq(b, "/wsd-af63dc4c8601ec8c"); /* FNV-1a 64 test vector */
    shm_seg_name_for("", b);
    cr_assert_str_eq(b, "/wsd-cbf29ce484222325");
    shm_seg_name_for("/tmp/wsd.sock", b);
    cr_assert_str_eq(a, b);
}

Test(shm_seg, accessors_bound_their_index_and_rings_belong_to_their_slot)
{
    uint32_t i;

    create_seg(10);
    cr_assert_null(shm_seg_worker(&seg, SHM_SEG_WORKERS));
    cr_assert_null(shm_seg_ring(&seg, SHM_SEG_WORKERS));
    for (i = 0; i < SHM_SEG_WORKERS; i++) {
        struct ring *r = shm_seg_ring(&seg, i);

        cr_assert_eq(r->consumer, i);
        cr_assert_eq(r->magic, RING_MAGIC);
        cr_assert_eq(ring_size(r), SHM_SEG_RING_MIN);
        cr_assert_eq((uintptr_t)r % WSD_CACHELINE, 0);
        cr_assert_eq((uintptr_t)shm_seg_worker(&seg, i) % WSD_CACHELINE, 0);
        cr_assert_eq(atomic_load(&shm_seg_worker(&seg, i)->state), SHM_SEG_WORKER_EMPTY);
    }
    cr_assert_leq((unsigned char *)shm_seg_ring(&seg, SHM_SEG_WORKERS - 1) +
                      ring_footprint(SHM_SEG_RING_MIN),
                  (unsigned char *)seg.base + seg.size);
}

Test(shm_seg, run_state_broken_flag_and_config_generation)
{
    create_seg(10);
    shm_seg_set_state(&seg, SHM_SEG_RUNNING);
    cr_assert_eq(shm_seg_state(&seg), SHM_SEG_RUNNING);
    shm_seg_set_state(&seg, SHM_SEG_STOPPING);
    cr_assert_eq(shm_seg_state(&seg), SHM_SEG_STOPPING);
    cr_assert_not(shm_seg_is_broken(&seg));
    shm_seg_mark_broken(&seg);
    cr_assert(shm_seg_is_broken(&seg));
    cr_assert_eq(shm_seg_bump_config_generation(&seg), 1);
    cr_assert_eq(shm_seg_bump_config_generation(&seg), 2);
}

Test(shm_seg, close_codes_fall_into_buckets)
{
    cr_assert_eq(shm_seg_close_bucket(1000), SHM_SEG_CLOSE_NORMAL);
    cr_assert_eq(shm_seg_close_bucket(1001), SHM_SEG_CLOSE_GOING_AWAY);
    cr_assert_eq(shm_seg_close_bucket(1006), SHM_SEG_CLOSE_ABNORMAL);
    cr_assert_eq(shm_seg_close_bucket(1009), SHM_SEG_CLOSE_TOO_BIG);
    cr_assert_eq(shm_seg_close_bucket(4000), SHM_SEG_CLOSE_HEARTBEAT);
    cr_assert_eq(shm_seg_close_bucket(4010), SHM_SEG_CLOSE_SLOW);
    cr_assert_eq(shm_seg_close_bucket(4321), SHM_SEG_CLOSE_APP);
    cr_assert_eq(shm_seg_close_bucket(1015), SHM_SEG_CLOSE_OTHER);
    cr_assert_eq(shm_seg_close_bucket(0), SHM_SEG_CLOSE_OTHER);
}

Test(shm_seg, worker_stats_are_counted_with_relaxed_adds)
{
    struct shm_seg_worker *w;

    create_seg(10);
    w = shm_seg_worker(&seg, 7);
    SHM_SEG_STAT_ADD(w, msgs_in, 3);
    SHM_SEG_STAT_ADD(w, msgs_in, 2);
    SHM_SEG_STAT_ADD(w, closes[shm_seg_close_bucket(1001)], 1);
    cr_assert_eq(atomic_load(&w->stats.msgs_in), 5);
    cr_assert_eq(atomic_load(&w->stats.closes[SHM_SEG_CLOSE_GOING_AWAY]), 1);
}

/* ---- connections per address ---- */

static struct conn_table_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct conn_table_addr x = {.family = 2, .port = 1, .addr = {a, b, c, d}};
    return x;
}

Test(conn_table, per_address_max_refuses_an_address_at_its_limit_and_only_it)
{
    struct conn_table_addr other = v4(127, 0, 0, 2);
    struct conn_table_addr six = {.family = 10, .port = 1, .addr = {0xfe, 0x80, [15] = 1}};
    uint64_t ids[3], id;

    for (int i = 0; i < 3; i++)
        cr_assert_eq(conn_table_alloc(&seg, 1, &addr4, 3, 0, 0, &ids[i]), 0);
    cr_assert_eq(conn_table_alloc(&seg, 1, &addr4, 3, 0, 0, &id), WSD_ETOOBIG);
    cr_assert_eq(conn_table_alloc(&seg, 2, &addr4, 3, 0, 0, &id), WSD_ETOOBIG,
                 "counted over every worker");
    cr_assert_eq(atomic_load(&seg.conn_hdr->per_address_refused), 2);
    cr_assert_eq(conn_table_in_use(&seg), 3, "a refusal takes no slot");
    cr_assert_eq(conn_table_address_count(&seg, &addr4), 3);
    /* Other addresses, and the same bytes as IPv6, are counted apart. */
    cr_assert_eq(conn_table_alloc(&seg, 1, &other, 3, 0, 0, &id), 0);
    cr_assert_eq(conn_table_alloc(&seg, 1, &six, 1, 0, 0, &id), 0);
    cr_assert_eq(conn_table_alloc(&seg, 1, &six, 1, 0, 0, &id), WSD_ETOOBIG);
    cr_assert_eq(conn_table_address_count(&seg, &other), 1);
    /* A release makes room; a higher limit (a reload) admits more at once. */
    cr_assert_eq(conn_table_release(&seg, ids[1]), 0);
    cr_assert_eq(conn_table_address_count(&seg, &addr4), 2);
    cr_assert_eq(conn_table_alloc(&seg, 1, &addr4, 3, 0, 0, &id), 0);
    cr_assert_eq(conn_table_alloc(&seg, 1, &addr4, 4, 0, 0, &id), 0);
    cr_assert_eq(conn_table_alloc(&seg, 1, &addr4, 0, 0, 0, &id), 0, "0 is no limit");
    cr_assert_eq(conn_table_address_count(&seg, &addr4), 5);
    cr_assert_eq(conn_table_verify(&seg), 0);
    /* The last connection of an address removes its entry. */
    cr_assert_eq(conn_table_release_worker(&seg, 1), 7);
    cr_assert_eq(conn_table_address_count(&seg, &addr4), 0);
    cr_assert_eq(conn_table_address_count(&seg, &six), 0);
    for (uint32_t i = 0; i < seg.hdr->ips_cap; i++)
        cr_assert_eq(seg.ips[i].family, 0, "entry %u left behind", i);
}

Test(conn_table, unknown_addresses_are_never_counted_or_refused)
{
    struct conn_table_addr unknown = {.family = 0};
    uint64_t id;

    cr_assert_eq(conn_table_alloc(&seg, 1, NULL, 1, 0, 0, &id), 0);
    cr_assert_eq(conn_table_alloc(&seg, 1, NULL, 1, 0, 0, &id), 0);
    cr_assert_eq(conn_table_alloc(&seg, 1, &unknown, 1, 0, 0, &id), 0);
    cr_assert_eq(conn_table_address_count(&seg, &unknown), 0);
    cr_assert_eq(conn_table_verify(&seg), 0);
}

/*
 * Thousands of addresses in a table with long probe runs: every count stays right while
 * connections come and go in random order (removal moves runs back, never loses one).
 */
Test(conn_table, address_counts_stay_exact_through_random_arrivals_and_departures)
{
    enum { CONNS = 4096, ADDRS = 1500, STEPS = 40000 };
    static uint64_t ids[CONNS];
    static uint16_t addr_of[CONNS];
    static uint32_t model[ADDRS];
    uint32_t live = 0, seed = 12345;

    teardown();
    create_seg(CONNS);
    atomic_store(&shm_seg_worker(&seg, 0)->state, SHM_SEG_WORKER_RUNNING);
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r = seed >> 8;
        if (live < CONNS && (live == 0 || r % 100 < 55)) {
            uint16_t a = (uint16_t)(r % ADDRS);
            struct conn_table_addr x = v4(10, 0, (uint8_t)(a >> 8), (uint8_t)a);
            int rc = conn_table_alloc(&seg, 0, &x, 6, 0, 0, &ids[live]);
            if (model[a] == 6) {
                cr_assert_eq(rc, WSD_ETOOBIG, "address %u at its limit", a);
                continue;
            }
            cr_assert_eq(rc, 0);
            addr_of[live++] = a;
            model[a]++;
        } else {
            uint32_t k = r % live;
            cr_assert_eq(conn_table_release(&seg, ids[k]), 0);
            model[addr_of[k]]--;
            ids[k] = ids[live - 1];
            addr_of[k] = addr_of[--live];
        }
        if (step % 5000 == 0)
            cr_assert_eq(conn_table_verify(&seg), 0, "step %d", step);
    }
    for (uint32_t a = 0; a < ADDRS; a++) {
        struct conn_table_addr x = v4(10, 0, (uint8_t)(a >> 8), (uint8_t)a);
        cr_assert_eq(conn_table_address_count(&seg, &x), model[a], "address %u", a);
    }
    cr_assert_eq(conn_table_verify(&seg), 0);
}

Test(conn_table, repair_rebuilds_the_address_counts)
{
    struct conn_table_addr other = v4(127, 0, 0, 2);
    uint64_t id;

    for (int i = 0; i < 3; i++)
        alloc_ok(1);
    cr_assert_eq(conn_table_alloc(&seg, 1, &other, 0, 0, 0, &id), 0);
    /* Counts scribbled over, then a holder of the lock dies: the repair recounts. */
    memset(seg.ips, 0xff, (size_t)seg.hdr->ips_cap * sizeof(seg.ips[0]));
    child_killed_at(CONN_TABLE_STEP_RELEASE_LINKED, id);
    cr_assert_eq(conn_table_verify(&seg), 0);
    cr_assert_eq(conn_table_address_count(&seg, &addr4), 3);
    cr_assert_eq(conn_table_address_count(&seg, &other), 0, "the released one is gone");
    cr_assert_eq(conn_table_alloc(&seg, 1, &addr4, 3, 0, 0, &id), WSD_ETOOBIG);
}

Test(conn_table, ids_stay_below_2_to_the_53_as_generations_wrap)
{
    uint64_t id = alloc_ok(1), again;

    cr_assert_eq(conn_table_release(&seg, id), 0);
    atomic_store(&seg.conns[conn_table_id_index(id)].generation, CONN_TABLE_GENERATION_MAX - 1);
    again = alloc_ok(1);
    cr_assert_eq(conn_table_id_generation(again), CONN_TABLE_GENERATION_MAX);
    cr_assert_lt(again, UINT64_C(1) << 53);
    cr_assert_eq(conn_table_release(&seg, again), 0);
    again = alloc_ok(1);
    cr_assert_eq(conn_table_id_index(again), conn_table_id_index(id));
    cr_assert_eq(conn_table_id_generation(again), 1, "wrapped past the largest");
    cr_assert_null(conn_table_get(&seg, conn_table_make_id(CONN_TABLE_GENERATION_MAX,
                                                           conn_table_id_index(id))));
    cr_assert_not_null(conn_table_get(&seg, again));
}
