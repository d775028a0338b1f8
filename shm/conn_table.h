/*
 * conn_table.h - the shared connection table: max_connections fixed slots in the segment.
 *
 * A connection id is ((uint64_t)generation << 32) | index. The generation of a slot is
 * bumped on every allocation (never 0), so an id kept after its connection closed does
 * not match the slot's next occupants: lookups by a stale id return NULL / WSD_ENOENT.
 * Generations go up to CONN_TABLE_GENERATION_MAX and start again at 1, so every id is
 * below 2^53 and survives a JavaScript number (wsd-protocol(7) promises it); a stale id
 * could match again only after 2^21 - 1 reuses of its slot. Id 0 is never valid
 * (CONN_TABLE_ID_NONE).
 *
 * Who writes what:
 *   - allocation and release run under the table's one robust lock (struct
 *     conn_table_header.lock); they write generation, state, next_free, the identity
 *     fields of line 0 and reset the counters;
 *   - the owning worker writes its slots' state (connecting -> connected -> closing),
 *     user, flags and everything on line 1, with relaxed atomics;
 *   - anyone may set close_request (the master asks the owner to close with a code);
 *   - everyone else only reads, through conn_table_snapshot(), which re-checks the
 *     generation around its copy (seqlock style) because a slot can be reused meanwhile.
 *
 * Allocation takes the free list (LIFO) first, then the never-used slot at the high-water
 * mark, so pages of a big table are touched only as connections arrive.
 *
 * Crash rule. State is written last on allocation and first on release, so the states
 * of the slots below the high-water mark always tell which slots are free. When a
 * process dies holding the lock, the next locker's repair rescans [0, high_water): it
 * rebuilds the free list, the in-use count and every worker's `connections` count from
 * the states, and frees used slots whose owner is out of range or whose worker slot is
 * SHM_SEG_WORKER_EMPTY (nobody will ever release those). Slots of a worker that died are
 * kept until the master, after reaping it, calls conn_table_release_worker(), so the
 * master can still read what they held (user references) first. The master's order
 * after a crash: worker slot -> SHM_SEG_WORKER_DEAD, read the dead worker's slots,
 * conn_table_release_worker(), ring_skip_dead() on every ring, then STARTING (respawn)
 * or EMPTY (retired). A worker slot is EMPTY only when it owns no connection.
 *
 * struct conn_table_slot (128 bytes, 2 cache lines):
 *
 *   line 0: identity (set at allocation under the lock)
 *   0   generation       atomic u32
 *   4   state            atomic u32   enum conn_table_state; FREE = 0
 *   8   close_request    atomic u64   generation << 32 | close code asked by the master;
 *                                     0 = none (the generation keeps a request made for
 *                                     a closed connection away from the next occupant)
 *   16  owner            atomic u32   worker slot that owns the connection
 *   20  family           u16          AF_INET / AF_INET6 value, 0 unknown
 *   22  port             u16          host byte order
 *   24  addr             u8[16]       IPv4 in the first 4 bytes, or IPv6
 *   40  connect_wall_ms  i64          wall clock at accept
 *   48  user             atomic u32   index into the user table; CONN_TABLE_USER_NONE
 *   52  flags            atomic u32   CONN_TABLE_F_*; owner writes
 *   56  next_free        u32          free-list link while FREE (lock)
 *   60  reserved         u32
 *   line 1: liveness and counters (owner writes, relaxed)
 *   64  last_seen_ms     atomic i64   monotonic ms of the last sign of life
 *   72  last_ping_ms     atomic i64   monotonic ms of the last ping sent; 0 = none
 *   80  rtt_us           atomic u32   last measured round trip
 *   84  missed_pings     atomic u32
 *   88  bytes_in, bytes_out, msgs_in, msgs_out   atomic u64 x 4
 *   120 reserved         u64
 *
 * struct conn_table_header (128 bytes): line 0 the robust lock; line 1 count, free_head
 * (lock), high_water (atomic, lock writes), in_use (atomic, lock writes), counters and
 * the key of the address hash.
 *
 * Connections per client address (max_connections_per_ip): an open-addressing table of
 * struct conn_table_ip in the segment (ips_off, ips_cap >= 2 x max_connections, so at
 * most half full), written only under the table's lock by allocation and release, in
 * the same critical section as the slot. Every allocation with a known address is
 * counted, limit or none, so a limit set by a reload sees the connections already open.
 * Lookups hash (family, address) with SipHash under a key drawn when the segment is
 * created (no chosen collisions); removal shifts the run back (no tombstones). The
 * table is derived state: the repair rebuilds it from the used slots.
 */
#ifndef WSD_SHM_CONN_TABLE_H
#define WSD_SHM_CONN_TABLE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/wsd.h"
#include "shm/lock.h"
#include "shm/seg.h"

#define CONN_TABLE_ID_NONE UINT64_C(0)
#define CONN_TABLE_USER_NONE UINT32_MAX
#define CONN_TABLE_INDEX_NONE UINT32_MAX
#define CONN_TABLE_GENERATION_MAX ((UINT32_C(1) << 21) - 1) /* ids stay below 2^53 */

enum conn_table_state {
    CONN_TABLE_FREE = 0, /* closed: the slot is free */
    CONN_TABLE_CONNECTING = 1,
    CONN_TABLE_CONNECTED = 2,
    CONN_TABLE_CLOSING = 3,
};

/* Bits of the flags word (owner-defined beyond these). */
#define CONN_TABLE_F_TLS (UINT32_C(1) << 0)
#define CONN_TABLE_F_DEFLATE (UINT32_C(1) << 1)
#define CONN_TABLE_F_AUTHENTICATED (UINT32_C(1) << 2)

struct conn_table_slot {
    alignas(WSD_CACHELINE) _Atomic uint32_t generation;
    _Atomic uint32_t state;
    _Atomic uint64_t close_request;
    _Atomic uint32_t owner;
    uint16_t family;
    uint16_t port;
    uint8_t addr[16];
    int64_t connect_wall_ms;
    _Atomic uint32_t user;
    _Atomic uint32_t flags;
    uint32_t next_free;
    uint32_t reserved0;
    alignas(WSD_CACHELINE) _Atomic int64_t last_seen_ms;
    _Atomic int64_t last_ping_ms;
    _Atomic uint32_t rtt_us;
    _Atomic uint32_t missed_pings;
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t msgs_in;
    _Atomic uint64_t msgs_out;
    uint64_t reserved1;
};

_Static_assert(sizeof(struct conn_table_slot) == 128, "connection slot is 2 cache lines");
_Static_assert(offsetof(struct conn_table_slot, close_request) == 8, "slot layout");
_Static_assert(offsetof(struct conn_table_slot, owner) == 16, "slot layout");
_Static_assert(offsetof(struct conn_table_slot, addr) == 24, "slot layout");
_Static_assert(offsetof(struct conn_table_slot, connect_wall_ms) == 40, "slot layout");
_Static_assert(offsetof(struct conn_table_slot, user) == 48, "slot layout");
_Static_assert(offsetof(struct conn_table_slot, next_free) == 56, "slot layout");
_Static_assert(offsetof(struct conn_table_slot, last_seen_ms) == 64, "hot fields on line 1");
_Static_assert(offsetof(struct conn_table_slot, bytes_in) == 88, "slot layout");

struct conn_table_header {
    alignas(WSD_CACHELINE) struct shm_mutex lock;
    alignas(WSD_CACHELINE) uint32_t count; /* capacity: max_connections */
    uint32_t free_head;                    /* CONN_TABLE_INDEX_NONE when empty (lock) */
    _Atomic uint32_t high_water;           /* slots >= this were never used */
    _Atomic uint32_t in_use;
    _Atomic uint64_t allocs;
    _Atomic uint64_t releases;
    _Atomic uint64_t full; /* allocations refused with WSD_ENOSPC */
    uint8_t ip_key[16];    /* SipHash key of the address table (set at creation) */
    _Atomic uint64_t per_address_refused; /* allocations refused with WSD_ETOOBIG */
};

_Static_assert(sizeof(struct shm_mutex) <= WSD_CACHELINE, "lock fits its cache line");
_Static_assert(offsetof(struct conn_table_header, count) == WSD_CACHELINE, "header layout");
_Static_assert(sizeof(struct conn_table_header) == 2 * WSD_CACHELINE, "header is 128 bytes");

/* Remote address of a new connection (no socket types in shm/). */
struct conn_table_addr {
    uint16_t family; /* AF_INET or AF_INET6 value; 0 = unknown */
    uint16_t port;   /* host byte order */
    uint8_t addr[16];
};

/* "1.2.3.4:80", "[::1]:80", or "-" for an unknown family, into out. Returns out. */
const char *conn_table_addr_format(const struct conn_table_addr *a, char *out, size_t cap);

/* Connections from one client address (24 bytes; family 0 = empty entry). */
struct conn_table_ip {
    uint8_t addr[16]; /* as in struct conn_table_addr: IPv4 in the first 4 bytes */
    uint16_t family;
    uint16_t reserved;
    uint32_t count;
};

_Static_assert(sizeof(struct conn_table_ip) == 24, "address entry is 24 bytes");

/* A consistent copy of one used slot, for the master's scans and wsctl. */
struct conn_table_info {
    uint64_t id;
    uint32_t state;
    uint32_t owner;
    struct conn_table_addr remote;
    int64_t connect_wall_ms;
    int64_t last_seen_ms;
    int64_t last_ping_ms;
    uint32_t rtt_us;
    uint32_t missed_pings;
    uint32_t user;
    uint32_t flags;
    uint16_t close_request; /* pending close code, 0 = none */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t msgs_in;
    uint64_t msgs_out;
};

/* Points in the allocation and release sequences, for conn_table_test_hook(). */
enum conn_table_step {
    CONN_TABLE_STEP_ALLOC_PICKED,    /* slot chosen, nothing written */
    CONN_TABLE_STEP_ALLOC_UNLINKED,  /* off the free list / high water raised, still FREE */
    CONN_TABLE_STEP_ALLOC_FILLED,    /* generation and fields written, state not yet */
    CONN_TABLE_STEP_ALLOC_PUBLISHED, /* state written, lock still held */
    CONN_TABLE_STEP_RELEASE_FREED,   /* state FREE written, not yet on the free list */
    CONN_TABLE_STEP_RELEASE_LINKED,  /* on the free list, lock still held */
};

static inline uint64_t conn_table_make_id(uint32_t generation, uint32_t index)
{
    return ((uint64_t)generation << 32) | index;
}

static inline uint32_t conn_table_id_index(uint64_t id)
{
    return (uint32_t)id;
}

static inline uint32_t conn_table_id_generation(uint64_t id)
{
    return (uint32_t)(id >> 32);
}

/*
 * Initialises the table header of a freshly created segment (shm_seg_create() calls
 * it; slots are left as ftruncate's zeros). Returns 0 or WSD_EIO.
 */
int conn_table_init(struct shm_seg *seg);

/*
 * Allocates a slot for a new connection owned by `worker`: remote address (NULL =
 * unknown, stored as zeros), connect time and last-seen time set, counters zero, user
 * none, flags 0, no close request, state CONN_TABLE_CONNECTING, the worker's connection
 * count raised, the remote address's count raised. Writes the new id to *id_out. Any
 * worker slot is accepted whatever its state; the times come from the caller (no clock
 * reads under the lock). per_address_max > 0 refuses a known address that already has
 * that many connections.
 * Returns 0; WSD_EINVAL for worker >= SHM_SEG_WORKERS; WSD_ETOOBIG when the address is at
 * per_address_max (counted in header `per_address_refused`); WSD_ENOSPC when every slot
 * is in use (counted in header `full`); WSD_EBROKEN when the table could not be repaired.
 */
int conn_table_alloc(struct shm_seg *seg, uint32_t worker, const struct conn_table_addr *remote,
                     uint32_t per_address_max, int64_t connect_wall_ms, int64_t now_mono_ms,
                     uint64_t *id_out);

/* Connections from this address now (0 for an unknown family). Takes the lock; for
 * tests and diagnostics. Returns the count or WSD_EBROKEN. */
int64_t conn_table_address_count(struct shm_seg *seg, const struct conn_table_addr *remote);

/*
 * Frees the slot of connection `id` (its owner, or the master). The id and every copy
 * of it become stale. Returns 0; WSD_ENOENT for a stale or invalid id; WSD_EBROKEN.
 */
int conn_table_release(struct shm_seg *seg, uint64_t id);

/*
 * Frees every slot owned by `worker` (the master, after reaping it; also its count goes
 * to 0). Takes the lock once per matching slot, never across the whole scan.
 * Returns how many slots it freed; WSD_EINVAL for a bad worker; WSD_EBROKEN.
 */
int conn_table_release_worker(struct shm_seg *seg, uint32_t worker);

/*
 * The slot of connection `id` for its owner, or NULL when the id is stale, invalid or
 * the slot is free. The pointer stays valid; the slot may be reused once released.
 */
struct conn_table_slot *conn_table_get(const struct shm_seg *seg, uint64_t id);

/*
 * Owner: moves a slot to CONN_TABLE_CONNECTING, _CONNECTED or _CLOSING (release store).
 * Returns 0, or WSD_EINVAL for CONN_TABLE_FREE or an unknown state (use release).
 */
int conn_table_set_state(struct conn_table_slot *slot, enum conn_table_state state);

/*
 * Asks the owner of `id` to close it with `code` (nonzero); a later request replaces an
 * earlier one not yet taken. Returns 0; WSD_EINVAL for code 0; WSD_ENOENT for a stale id.
 */
int conn_table_request_close(struct shm_seg *seg, uint64_t id, uint16_t code);

/* Owner: takes and clears the pending close request; 0 when there is none. */
uint16_t conn_table_take_close_request(struct conn_table_slot *slot);

/*
 * Copies slot `index` into *out. Works on a read-only mapping. Returns 0; WSD_ENOENT
 * when the index is out of range or the slot is free; WSD_EAGAIN when the slot changed
 * hands during the copy (read it again).
 */
int conn_table_snapshot(const struct shm_seg *seg, uint32_t index, struct conn_table_info *out);

/* Slots in use now (relaxed read). */
uint32_t conn_table_in_use(const struct shm_seg *seg);

/* Capacity (max_connections). */
uint32_t conn_table_capacity(const struct shm_seg *seg);

/* Slots below this index may be used: the bound of every scan (acquire read). */
uint32_t conn_table_high_water(const struct shm_seg *seg);

/*
 * Checks the table under its lock: the free list has no cycle and holds exactly the
 * free slots below the high-water mark, the in-use count and every worker's connection
 * count match the states, and the address table holds exactly the used slots' addresses
 * with their counts. Scans the whole used part of the table while holding the lock:
 * for tests and diagnostics, not for the hot path. Returns 0 or WSD_EBROKEN.
 */
int conn_table_verify(struct shm_seg *seg);

/*
 * Called at each enum conn_table_step with the table lock held. The library's definition
 * is a weak no-op; a test binary defines its own to stop a process mid-sequence.
 */
void conn_table_test_hook(enum conn_table_step step);

#endif
