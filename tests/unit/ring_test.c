/* ring_test.c - MPSC byte rings: fill and drain, wraparound, producers in other processes. */
#include "shm/ring.h"

#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/seg.h"

static struct ring *ring;
static size_t ring_map_len;
static struct shm_seg seg;
static char seg_name[SHM_SEG_NAME_LEN];
static int die_at_step = -1; /* ring_test_hook kills the process at this step */

void ring_test_hook(enum ring_step step)
{
    if ((int)step == die_at_step)
        raise(SIGKILL);
}

/* A ring of `size` data bytes in an anonymous shared mapping (children see it too). */
static void make_ring(uint64_t size)
{
    ring_map_len = ring_footprint(size);
    ring = mmap(NULL, ring_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert(ring != MAP_FAILED);
    cr_assert_eq(ring_init(ring, size, 0), 0);
}

/* Ring 0 of a real segment, for the tests with producer processes. */
static void make_seg_ring(uint32_t ring_bytes)
{
    struct shm_seg_sizes sz = {.max_connections = 4, .ring_bytes = ring_bytes};

    snprintf(seg_name, sizeof(seg_name), "/wsd-test-ring-%d", (int)getpid());
    cr_assert_eq(shm_seg_create(&seg, seg_name, &sz), 0);
    ring = shm_seg_ring(&seg, 0);
}

static void no_setup(void)
{
    ring = NULL;
    ring_map_len = 0;
    seg_name[0] = '\0';
}

static void teardown(void)
{
    if (ring_map_len != 0)
        munmap(ring, ring_map_len);
    shm_seg_close(&seg);
    if (seg_name[0] != '\0')
        shm_seg_unlink(seg_name);
}

TestSuite(ring, .init = no_setup, .fini = teardown);

/*
 * Record payload: producer (1 byte), sequence number (4 bytes), then filler bytes derived
 * from both, so a record that was overwritten, torn or misplaced does not verify.
 */
static size_t make_payload(unsigned char *buf, uint8_t producer, uint32_t seq, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (unsigned char)(seq * 31u + i * 7u + producer);
    if (len >= 5) {
        buf[0] = producer;
        memcpy(buf + 1, &seq, 4);
    }
    return len;
}

static bool payload_ok(const struct ring_msg *m, uint8_t producer, uint32_t seq, size_t len)
{
    unsigned char want[4096];

    if (m->len != len || m->producer != producer || len > sizeof(want))
        return false;
    make_payload(want, producer, seq, len);
    return memcmp(m->data, want, len) == 0;
}

static int push_seq(uint8_t producer, uint32_t seq, size_t len)
{
    unsigned char buf[4096];
    struct iovec iov = {.iov_base = buf, .iov_len = make_payload(buf, producer, seq, len)};

    return ring_push(ring, (uint16_t)(seq & 0xff), producer, &iov, 1);
}

static void pop_expect(uint8_t producer, uint32_t seq, size_t len)
{
    struct ring_msg m;
    const unsigned char *start = (const unsigned char *)ring + sizeof(*ring);

    cr_assert_eq(ring_peek(ring, &m), 0, "record %u is there", seq);
    cr_assert(payload_ok(&m, producer, seq, len), "record %u intact (len %u want %zu)", seq,
              m.len, len);
    cr_assert_eq(m.type, seq & 0xff);
    cr_assert_geq((const unsigned char *)m.data, start + RING_REC_HDR_LEN);
    cr_assert_leq((const unsigned char *)m.data + m.len, start + ring_size(ring),
                  "a record never wraps");
    cr_assert_eq(((uintptr_t)m.data) % RING_ALIGN, 0);
    cr_assert_eq(ring_pop(ring), 0);
}

Test(ring, init_rejects_sizes_that_are_not_powers_of_two_in_range)
{
    static unsigned char mem[4096] __attribute__((aligned(64)));
    struct ring *r = (struct ring *)mem;

    cr_assert_eq(ring_init(r, 0, 0), WSD_EINVAL);
    cr_assert_eq(ring_init(r, 32, 0), WSD_EINVAL);
    cr_assert_eq(ring_init(r, 96, 0), WSD_EINVAL);
    cr_assert_eq(ring_init(r, RING_MAX_BYTES * 2, 0), WSD_EINVAL);
    cr_assert_eq(ring_init(r, 64, 0), 0);
    cr_assert_eq(ring_max_payload(r), 24);
}

Test(ring, empty_ring_has_nothing_to_peek_or_pop)
{
    struct ring_msg m;

    make_ring(256);
    cr_assert_eq(ring_peek(ring, &m), WSD_EAGAIN);
    cr_assert_eq(ring_pop(ring), WSD_EAGAIN);
    cr_assert_eq(ring_used_bytes(ring), 0);
}

Test(ring, rejects_reserved_types_and_oversized_records)
{
    struct ring_resv rv;

    make_ring(256);
    cr_assert_eq(ring_reserve(ring, RING_TYPE_PAD, 0, 1, &rv), WSD_EINVAL);
    cr_assert_eq(ring_reserve(ring, RING_TYPE_SKIP, 0, 1, &rv), WSD_EINVAL);
    cr_assert_eq(ring_reserve(ring, 1, 0, ring_max_payload(ring) + 1, &rv), WSD_ETOOBIG);
    cr_assert_eq(ring_used_bytes(ring), 0);
}

/*
 * Single producer: for every payload length, fill the ring until WSD_ENOSPC, then drain
 * it; the ring carries over from one length to the next so head and tail sit at every
 * offset and records wrap with padding. Order and content must hold throughout.
 */
static void fill_drain_every_length(uint64_t size)
{
    uint32_t seq = 0, len, max;

    make_ring(size);
    max = ring_max_payload(ring);
    for (len = 0; len <= max; len++) {
        int round;

        for (round = 0; round < 3; round++) {
            uint32_t first = seq, s;
            uint64_t full_before = atomic_load(&ring->full);
            int rc;

            while ((rc = push_seq(3, seq, len)) == 0)
                seq++;
            cr_assert_eq(rc, WSD_ENOSPC);
            cr_assert_eq(atomic_load(&ring->full), full_before + 1);
            cr_assert_gt(seq, first, "len %u: at least one record fits", len);
            cr_assert_leq(ring_used_bytes(ring), size);
            for (s = first; s < seq; s++)
                pop_expect(3, s, len);
            cr_assert_eq(ring_pop(ring), WSD_EAGAIN);
            cr_assert_eq(ring_used_bytes(ring), 0);
        }
    }
}

Test(ring, fills_until_full_and_drains_in_order_for_every_length_256)
{
    fill_drain_every_length(256);
}

Test(ring, fills_until_full_and_drains_in_order_for_every_length_4096)
{
    fill_drain_every_length(4096);
}

Test(ring, full_ring_holds_exactly_what_fits)
{
    make_ring(256);
    /* 8 header + 24 payload = 32 bytes a record: exactly 8 fit, the 9th does not */
    for (uint32_t s = 0; s < 8; s++)
        cr_assert_eq(push_seq(1, s, 24), 0);
    cr_assert_eq(ring_used_bytes(ring), 256);
    cr_assert_eq(push_seq(1, 8, 0), WSD_ENOSPC);
    pop_expect(1, 0, 24);
    cr_assert_eq(push_seq(1, 8, 24), 0, "one pop makes room for one record");
    cr_assert_eq(push_seq(1, 9, 0), WSD_ENOSPC);
}

Test(ring, record_that_does_not_fit_before_the_end_goes_to_the_start_after_padding)
{
    struct ring_msg m;
    const unsigned char *start;

    make_ring(256);
    start = (const unsigned char *)ring + sizeof(*ring);
    for (uint32_t s = 0; s < 3; s++) {
        cr_assert_eq(push_seq(1, s, 56), 0); /* 64 bytes each: head ends at 192 */
        pop_expect(1, s, 56);
    }
    cr_assert_eq(push_seq(1, 3, 60), 0); /* 72 bytes do not fit in the last 64 */
    cr_assert_eq(ring_used_bytes(ring), 64 + 72, "padding counts as used");
    cr_assert_eq(ring_peek(ring, &m), 0);
    cr_assert_eq((const unsigned char *)m.data, start + RING_REC_HDR_LEN);
    pop_expect(1, 3, 60);
    cr_assert_eq(ring_used_bytes(ring), 0);
    cr_assert_eq(push_seq(1, 4, 0), 0);
    cr_assert_eq(ring_peek(ring, &m), 0);
    cr_assert_eq((const unsigned char *)m.data, start + 72 + RING_REC_HDR_LEN);
}

Test(ring, largest_record_fits_an_empty_ring_at_any_offset)
{
    uint32_t off, seq = 0;

    make_ring(256);
    for (off = 0; off < 256; off += 8) {
        cr_assert_eq(push_seq(2, seq, ring_max_payload(ring)), 0, "offset %u", off);
        pop_expect(2, seq, ring_max_payload(ring));
        seq++;
        cr_assert_eq(push_seq(2, seq, 0), 0); /* moves head by 8 */
        pop_expect(2, seq, 0);
        seq++;
    }
}

/* xorshift32: a fixed sequence, so the test is the same every run. */
static uint32_t next_rand(uint32_t *state)
{
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

Test(ring, random_interleaving_of_pushes_and_pops_matches_a_fifo)
{
    enum { OPS = 200000 };
    static uint32_t lens[1 << 16];
    uint32_t rnd = 12345, pushed = 0, popped = 0, i;

    make_ring(1024);
    for (i = 0; i < OPS; i++) {
        uint32_t r = next_rand(&rnd);

        if (r % 3 != 0) {
            uint32_t len = (r >> 8) % (ring_max_payload(ring) + 1);
            int rc = push_seq(4, pushed, len);

            cr_assert(rc == 0 || rc == WSD_ENOSPC);
            if (rc == 0)
                lens[pushed++ % WSD_ARRAY_LEN(lens)] = len;
        } else if (popped < pushed) {
            pop_expect(4, popped, lens[popped % WSD_ARRAY_LEN(lens)]);
            popped++;
        } else {
            cr_assert_eq(ring_pop(ring), WSD_EAGAIN);
        }
    }
    while (popped < pushed) {
        pop_expect(4, popped, lens[popped % WSD_ARRAY_LEN(lens)]);
        popped++;
    }
    cr_assert_gt(pushed, OPS / 4);
    cr_assert_eq(ring_used_bytes(ring), 0);
}

Test(ring, push_gathers_an_iovec)
{
    struct iovec iov[3] = {{.iov_base = "hello ", .iov_len = 6},
                           {.iov_base = NULL, .iov_len = 0},
                           {.iov_base = "world", .iov_len = 5}};
    struct ring_msg m;

    make_ring(256);
    cr_assert_eq(ring_push(ring, 7, 9, iov, 3), 0);
    cr_assert_eq(ring_push(ring, 7, 9, iov, -1), WSD_EINVAL);
    cr_assert_eq(ring_peek(ring, &m), 0);
    cr_assert_eq(m.len, 11);
    cr_assert_eq(m.type, 7);
    cr_assert_eq(m.producer, 9);
    cr_assert_arr_eq(m.data, "hello world", 11);
}

Test(ring, records_come_out_in_reservation_order_whatever_the_commit_order)
{
    struct ring_resv a, b;
    struct ring_msg m;

    make_ring(256);
    cr_assert_eq(ring_reserve(ring, 1, 1, 4, &a), 0);
    cr_assert_eq(ring_reserve(ring, 2, 2, 4, &b), 0);
    memcpy(b.data, "bbbb", 4);
    ring_commit(ring, &b);
    cr_assert_eq(ring_peek(ring, &m), WSD_EAGAIN, "the first record is not committed");
    memcpy(a.data, "aaaa", 4);
    ring_commit(ring, &a);
    cr_assert_eq(ring_peek(ring, &m), 0);
    cr_assert_eq(m.type, 1);
    cr_assert_arr_eq(m.data, "aaaa", 4);
    cr_assert_eq(ring_pop(ring), 0);
    cr_assert_eq(ring_peek(ring, &m), 0);
    cr_assert_eq(m.type, 2);
    cr_assert_eq(ring_pop(ring), 0);
}

Test(ring, uncommitted_record_blocks_the_consumer_until_skip_dead)
{
    struct ring_resv rv;
    struct ring_msg m;
    uint32_t s;

    make_ring(1024);
    cr_assert_eq(push_seq(6, 0, 10), 0);
    cr_assert_eq(ring_reserve(ring, 1, 5, 40, &rv), 0); /* producer 5 never commits */
    for (s = 1; s <= 10; s++)
        cr_assert_eq(push_seq(6, s, 10), 0);
    pop_expect(6, 0, 10);
    cr_assert_eq(ring_peek(ring, &m), WSD_EAGAIN);
    cr_assert_eq(ring_skip_dead(ring, 6), 0, "a live producer's records are not touched");
    cr_assert_eq(ring_peek(ring, &m), WSD_EAGAIN);
    cr_assert_eq(ring_skip_dead(ring, 5), 1);
    cr_assert_eq(atomic_load(&ring->skipped), 1);
    for (s = 1; s <= 10; s++)
        pop_expect(6, s, 10);
    cr_assert_eq(ring_peek(ring, &m), WSD_EAGAIN);
    cr_assert_eq(ring_used_bytes(ring), 0);
    cr_assert_eq(ring_skip_dead(ring, 5), 0);
}

/* Forks a producer that runs `fn` and then exits 0 (or is killed by its hook). */
static pid_t fork_producer(void (*fn)(uint8_t, uint32_t), uint8_t producer, uint32_t count)
{
    pid_t parent = getpid(), pid = fork();

    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* a producer retrying on a full ring must not outlive a failed test */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
            _exit(4);
        fn(producer, count);
        _exit(0);
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int status;

    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static void reserve_then_die(uint8_t producer, uint32_t count)
{
    struct ring_resv rv;

    (void)count;
    if (ring_reserve(ring, 1, producer, 100, &rv) == 0)
        memset(rv.data, 0xee, 50); /* half the payload, then killed */
    raise(SIGKILL);
}

/* Pushes count records numbered 0..count-1, retrying while the ring is full. */
static void push_numbered(uint8_t producer, uint32_t count)
{
    uint32_t seq;

    for (seq = 0; seq < count; seq++) {
        size_t len = 5 + (seq * 13u + producer * 7u) % 120;
        int rc;

        while ((rc = push_seq(producer, seq, len)) == WSD_ENOSPC)
            sched_yield();
        if (rc != 0)
            _exit(3);
    }
}

static void expect_numbered(uint8_t producer, uint32_t count)
{
    uint32_t seq;

    for (seq = 0; seq < count; seq++)
        pop_expect(producer, seq, 5 + (seq * 13u + producer * 7u) % 120);
}

Test(ring, producer_killed_between_reserve_and_commit_is_skipped_by_rule, .timeout = 60)
{
    struct ring_msg m;
    int status;

    make_seg_ring(SHM_SEG_RING_MIN);
    status = wait_status(fork_producer(reserve_then_die, 7, 0));
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    status = wait_status(fork_producer(push_numbered, 8, 20));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(ring_peek(ring, &m), WSD_EAGAIN, "the dead producer's record blocks");
    cr_assert_eq(ring_skip_dead(ring, 7), 1);
    expect_numbered(8, 20);
    cr_assert_eq(ring_peek(ring, &m), WSD_EAGAIN);
}

static void check_killed_holding_lock(enum ring_step step, int expect_skipped)
{
    struct ring_msg m;
    pid_t pid;
    int status;

    make_seg_ring(SHM_SEG_RING_MIN);
    die_at_step = (int)step;
    pid = fork_producer(push_numbered, 7, 1);
    die_at_step = -1;
    status = wait_status(pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    cr_assert_eq(push_seq(8, 0, 30), 0, "the next producer gets the lock");
    cr_assert_eq(ring->lock.repairs, 1);
    cr_assert_eq(ring_skip_dead(ring, 7), expect_skipped);
    pop_expect(8, 0, 30);
    cr_assert_eq(ring_peek(ring, &m), WSD_EAGAIN);
    cr_assert_eq(ring_used_bytes(ring), 0);
}

Test(ring, producer_killed_before_publishing_head_leaves_no_record, .timeout = 60)
{
    check_killed_holding_lock(RING_STEP_HEADER_WRITTEN, 0);
}

Test(ring, producer_killed_after_publishing_head_leaves_a_skippable_record, .timeout = 60)
{
    check_killed_holding_lock(RING_STEP_HEAD_ADVANCED, 1);
}

/*
 * Consumes until every producer delivered `count` records, checking per-producer order
 * and content; fails if a producer exits abnormally meanwhile.
 */
static void consume_all(const pid_t *pids, int producers, uint32_t count)
{
    uint32_t next[8] = {0};
    uint64_t left = (uint64_t)producers * count;
    struct ring_msg m;

    while (left > 0) {
        int rc = ring_peek(ring, &m);
        uint32_t seq;

        if (rc == WSD_EAGAIN) {
            int i, status;

            for (i = 0; i < producers; i++)
                if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i])
                    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                              "producer %d failed", i);
            sched_yield();
            continue;
        }
        cr_assert_eq(rc, 0);
        cr_assert_lt(m.producer, producers);
        cr_assert_geq(m.len, 5);
        memcpy(&seq, (const unsigned char *)m.data + 1, 4);
        cr_assert_eq(seq, next[m.producer], "producer %u: got %u, want %u", m.producer, seq,
                     next[m.producer]);
        cr_assert(payload_ok(&m, m.producer, seq, 5 + (seq * 13u + m.producer * 7u) % 120));
        next[m.producer]++;
        cr_assert_eq(ring_pop(ring), 0);
        left--;
    }
}

Test(ring, producers_in_other_processes_deliver_every_record_once_in_order, .timeout = 120)
{
    enum { PRODUCERS = 4, COUNT = 20000 };
    pid_t pids[PRODUCERS];
    struct ring_msg m;
    int i, status;

    make_seg_ring(SHM_SEG_RING_MIN);
    for (i = 0; i < PRODUCERS; i++)
        pids[i] = fork_producer(push_numbered, (uint8_t)i, COUNT);
    consume_all(pids, PRODUCERS, COUNT);
    for (i = 0; i < PRODUCERS; i++) {
        if (waitpid(pids[i], &status, 0) == pids[i])
            cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    cr_assert_eq(ring_peek(ring, &m), WSD_EAGAIN, "nothing extra");
    cr_assert_eq(ring_used_bytes(ring), 0);
    cr_assert_eq(atomic_load(&ring->records), (uint64_t)PRODUCERS * COUNT);
}
