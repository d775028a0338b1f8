/*
 * seg.h - the one shared-memory segment of a wsd instance.
 *
 * The master creates the segment (shm_open + ftruncate + mmap MAP_SHARED) before it forks
 * any worker; workers inherit the mapping. wsctl maps it read-only and refuses a layout it
 * does not know. Every table lives at an offset written in the header; records are
 * addressed by index, never by pointer. Pages are touched lazily: ftruncate gives zeros,
 * and creation writes only the header, the table headers and the ring headers.
 *
 * Layout (offsets in bytes; every region starts on a 4096-byte page):
 *
 *   0             struct shm_seg_header       magic, version, sizes, offsets, run state
 *   workers_off   struct shm_seg_worker[64]   one per worker slot, 384 bytes each
 *   conn_hdr_off  struct conn_table_header    the connection table's lock and free list
 *   conns_off     struct conn_table_slot[max_connections]   128 bytes each (conn_table.h)
 *   rings_off     64 x { struct ring (256 bytes) + ring_bytes of data }, ring_stride apart
 *                 ring i is the inbound ring of worker slot i (ring.h)
 *   users_off     struct names_table + users_cap entries: user id -> connections (names.h)
 *   groups_off    struct names_table + groups_cap entries: group -> members (names.h)
 *   ips_off       struct conn_table_ip[ips_cap]   connections per client address, 24 bytes
 *                 each, under the connection table's lock (conn_table.h)
 *   total_size
 *
 * struct shm_seg_header (3 cache lines):
 *
 *   0   magic            u64   SHM_SEG_MAGIC, written last by shm_seg_create()
 *   8   layout_version   u32   SHM_SEG_LAYOUT_VERSION
 *   12  header_size      u32   sizeof(struct shm_seg_header)
 *   16  worker_size      u32   sizeof(struct shm_seg_worker)
 *   20  worker_count     u32   SHM_SEG_WORKERS
 *   24  conn_size        u32   sizeof(struct conn_table_slot)
 *   28  conn_count       u32   max_connections
 *   32  conn_header_size u32   sizeof(struct conn_table_header)
 *   36  ring_header_size u32   sizeof(struct ring)
 *   40  ring_bytes       u64   data bytes per ring (power of two)
 *   48  workers_off .. total_size   u64 x 6
 *   96  master_pid       i32
 *   104 start_wall_ms    i64
 *   128 state            atomic u32   enum shm_seg_run_state (master writes)
 *   132 broken           atomic u32   1 once a repair failed: the master rebuilds
 *   136 config_generation atomic u64  bumped by the master on every applied reload
 *   144 users_off, groups_off  u64 x 2
 *   160 users_cap, groups_cap  u32 x 2   entries of the two name tables (powers of two)
 *   168 ips_off      u64   the per-address counts
 *   176 ips_cap      u32   their entries: a power of two, at least 2 x max_connections
 *
 * Lock order: the connection table lock, then a ring lock; never the other way round.
 */
#ifndef WSD_SHM_SEG_H
#define WSD_SHM_SEG_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/wsd.h"

#define SHM_SEG_MAGIC UINT64_C(0x57534453484d3031) /* "WSDSHM01" */
#define SHM_SEG_LAYOUT_VERSION 6
#define SHM_SEG_NAME_LEN 64
#define SHM_SEG_WORKERS CONFIG_MAX_WORKERS
#define SHM_SEG_MAX_CONNECTIONS 1000000u
#define SHM_SEG_RING_DEFAULT (UINT32_C(1) << 20) /* 1 MiB per worker */
#define SHM_SEG_RING_MIN (UINT32_C(1) << 12)
#define SHM_SEG_RING_MAX (UINT32_C(1) << 26)
#define SHM_SEG_PAGE 4096u

struct conn_table_header;
struct conn_table_slot;
struct conn_table_ip;
struct ring;
struct names_table;

/* Run state of the whole instance (header `state`); the master writes, anyone reads. */
enum shm_seg_run_state {
    SHM_SEG_STARTING = 0,
    SHM_SEG_RUNNING = 1,
    SHM_SEG_DRAINING = 2, /* TERM: no new upgrades, closing clients with 1001 */
    SHM_SEG_STOPPING = 3, /* QUIT or shutdown_timeout passed */
};

/* Worker slot states; the master writes them (fork, reap, retire). */
enum shm_seg_worker_state {
    SHM_SEG_WORKER_EMPTY = 0,    /* no process; never started or retired and swept */
    SHM_SEG_WORKER_STARTING = 1, /* forked, not yet in its loop */
    SHM_SEG_WORKER_RUNNING = 2,
    SHM_SEG_WORKER_RETIRING = 3, /* closing its clients with 1001, then exits */
    SHM_SEG_WORKER_DEAD = 4,     /* reaped; its connection slots await release */
};

/* Close-code buckets of the per-worker close counters; see shm_seg_close_bucket(). */
enum shm_seg_close_bucket {
    SHM_SEG_CLOSE_NORMAL,       /* 1000 */
    SHM_SEG_CLOSE_GOING_AWAY,   /* 1001 */
    SHM_SEG_CLOSE_PROTOCOL,     /* 1002 */
    SHM_SEG_CLOSE_UNSUPPORTED,  /* 1003 */
    SHM_SEG_CLOSE_ABNORMAL,     /* 1006: the peer vanished without a close frame */
    SHM_SEG_CLOSE_INVALID_DATA, /* 1007 */
    SHM_SEG_CLOSE_POLICY,       /* 1008 */
    SHM_SEG_CLOSE_TOO_BIG,      /* 1009 */
    SHM_SEG_CLOSE_INTERNAL,     /* 1011 */
    SHM_SEG_CLOSE_HEARTBEAT,    /* 4000 */
    SHM_SEG_CLOSE_SLOW,         /* 4010 */
    SHM_SEG_CLOSE_APP,          /* other 4000-4999 */
    SHM_SEG_CLOSE_OTHER,        /* anything else */
    SHM_SEG_CLOSE_BUCKETS
};

/* HTTP statuses of refused upgrades and failed requests; see shm_seg_hs_bucket(). */
enum shm_seg_hs_bucket {
    SHM_SEG_HS_400,
    SHM_SEG_HS_403,
    SHM_SEG_HS_404,
    SHM_SEG_HS_405,
    SHM_SEG_HS_408,
    SHM_SEG_HS_426,
    SHM_SEG_HS_429,
    SHM_SEG_HS_431,
    SHM_SEG_HS_503,
    SHM_SEG_HS_OTHER,
    SHM_SEG_HS_BUCKETS
};

/*
 * Statistics of one worker: relaxed atomics that the owning worker increments (with
 * SHM_SEG_STAT_ADD) and anyone reads. Monotonic counters; never reset while the slot
 * lives, the master may zero them before forking a fresh worker into an empty slot.
 */
struct shm_seg_worker_stats {
    _Atomic uint64_t msgs_in;
    _Atomic uint64_t msgs_out;
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t deliveries;        /* messages handed to a target connection */
    _Atomic uint64_t delivery_failures; /* target absent or its queue refused */
    _Atomic uint64_t dedup_hits;
    _Atomic uint64_t ring_full_retries; /* pushes that found a ring full */
    _Atomic uint64_t handshakes_ok;
    _Atomic uint64_t handshakes_failed;
    _Atomic uint64_t closes[SHM_SEG_CLOSE_BUCKETS];
    _Atomic uint64_t handshake_failures[SHM_SEG_HS_BUCKETS]; /* by HTTP status */
    _Atomic uint64_t rate_limited;      /* messages refused by rate_limit */
};

/*
 * One worker slot (6 cache lines):
 *
 *   0   pid            atomic i32   master writes after fork; 0 when none
 *   4   state          atomic u32   enum shm_seg_worker_state; master writes
 *   8   restarts       atomic u32   times the master forked a replacement into this slot
 *   12  connections    atomic u32   slots of the connection table this worker owns;
 *                                   maintained by conn_table.c under its lock (derived:
 *                                   rebuilt by the table repair)
 *   16  started_wall_ms atomic i64  when the current process was forked
 *   24  loop_mono_ms   atomic i64   the worker's last loop iteration (stall detection)
 *   32  app_connections atomic u32  welcomed connections on ws_path (broadcast audience)
 *   64  stats          struct shm_seg_worker_stats (264 bytes)
 */
struct shm_seg_worker {
    alignas(WSD_CACHELINE) _Atomic int32_t pid;
    _Atomic uint32_t state;
    _Atomic uint32_t restarts;
    _Atomic uint32_t connections;
    _Atomic int64_t started_wall_ms;
    _Atomic int64_t loop_mono_ms;
    _Atomic uint32_t app_connections; /* welcomed connections on ws_path (owner writes) */
    alignas(WSD_CACHELINE) struct shm_seg_worker_stats stats;
};

/* Adds n to one statistic of worker w (relaxed; only the owning worker writes). */
/* A plain load and store, not a locked add: each counter has exactly one writer. */
#define SHM_SEG_STAT_ADD(w, field, n)                                                     \
    atomic_store_explicit(&(w)->stats.field,                                              \
                          atomic_load_explicit(&(w)->stats.field, memory_order_relaxed) + \
                              (uint64_t)(n),                                              \
                          memory_order_relaxed)

struct shm_seg_header {
    uint64_t magic;
    uint32_t layout_version;
    uint32_t header_size;
    uint32_t worker_size;
    uint32_t worker_count;
    uint32_t conn_size;
    uint32_t conn_count;
    uint32_t conn_header_size;
    uint32_t ring_header_size;
    uint64_t ring_bytes;
    uint64_t workers_off;
    uint64_t conn_hdr_off;
    uint64_t conns_off;
    uint64_t rings_off;
    uint64_t ring_stride;
    uint64_t total_size;
    int32_t master_pid;
    uint32_t reserved0;
    int64_t start_wall_ms;
    alignas(WSD_CACHELINE) _Atomic uint32_t state;
    _Atomic uint32_t broken;
    _Atomic uint64_t config_generation;
    uint64_t users_off;  /* struct names_table of the user index */
    uint64_t groups_off; /* struct names_table of the group table */
    uint32_t users_cap;
    uint32_t groups_cap;
    uint64_t ips_off; /* struct conn_table_ip[ips_cap] */
    uint32_t ips_cap;
    uint32_t reserved1;
};

_Static_assert(offsetof(struct shm_seg_header, magic) == 0, "magic at offset 0");
_Static_assert(offsetof(struct shm_seg_header, layout_version) == 8, "header layout");
_Static_assert(offsetof(struct shm_seg_header, ring_bytes) == 40, "header layout");
_Static_assert(offsetof(struct shm_seg_header, master_pid) == 96, "header layout");
_Static_assert(offsetof(struct shm_seg_header, start_wall_ms) == 104, "header layout");
_Static_assert(offsetof(struct shm_seg_header, state) == 128, "header layout");
_Static_assert(offsetof(struct shm_seg_header, config_generation) == 136, "header layout");
_Static_assert(sizeof(struct shm_seg_header) == 192, "header is 3 cache lines");
_Static_assert(sizeof(struct shm_seg_header) <= SHM_SEG_PAGE, "header fits its page");
_Static_assert(offsetof(struct shm_seg_worker, started_wall_ms) == 16, "worker layout");
_Static_assert(offsetof(struct shm_seg_worker, stats) == 64, "worker stats on line 1");
_Static_assert(sizeof(struct shm_seg_worker_stats) == 272, "worker stats size");
_Static_assert(sizeof(struct shm_seg_worker) == 6 * WSD_CACHELINE, "worker slot is 384 bytes");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "shared atomics must be lock-free (address-free)");

/* Sizes chosen by the master from the configuration. */
struct shm_seg_sizes {
    uint32_t max_connections; /* 1..SHM_SEG_MAX_CONNECTIONS */
    uint32_t max_groups;      /* groups with members at once; 0 = 1024 */
    uint32_t ring_bytes;      /* power of two, SHM_SEG_RING_MIN..SHM_SEG_RING_MAX */
};

/*
 * Process-local handle of a mapped segment. The pointers are this process's view of
 * the mapping; they are never stored in shared memory.
 */
struct shm_seg {
    void *base;
    size_t size;
    bool readonly;
    struct shm_seg_header *hdr;
    struct shm_seg_worker *workers;
    struct conn_table_header *conn_hdr;
    struct conn_table_slot *conns;
    unsigned char *rings;
    uint64_t ring_stride;
    struct names_table *users;
    struct names_table *groups;
    struct conn_table_ip *ips;
};

/*
 * Creates and maps the segment `name` (e.g. from shm_seg_name_for()) sized by sz, after
 * unlinking any stale segment of that name. Initialises the header (master pid = the
 * caller, start time now, state SHM_SEG_STARTING), the connection table and the 64
 * rings; everything else stays untouched zero pages. The caller owns seg and releases
 * it with shm_seg_close(); the name stays until shm_seg_unlink().
 * Returns 0; WSD_EINVAL for a bad name (must be "/..." without another '/', shorter
 * than SHM_SEG_NAME_LEN) or sizes out of range; WSD_EIO when a system call failed
 * (errno kept), in which case nothing is left behind.
 */
int shm_seg_create(struct shm_seg *seg, const char *name, const struct shm_seg_sizes *sz);

/*
 * Maps the existing segment `name` read-only (for wsctl) and validates it: magic,
 * layout version, header size, record sizes and counts, and that the offsets match
 * the layout this build computes and fit the object. Returns 0; WSD_ENOENT when no
 * such segment exists; WSD_EINVAL for a bad name or a layout mismatch (nothing stays
 * mapped); WSD_EIO when a system call failed. Writing through seg faults.
 */
int shm_seg_open_readonly(struct shm_seg *seg, const char *name);

/* Unmaps seg (no-op on a zeroed handle) and zeroes the handle. The object stays. */
void shm_seg_close(struct shm_seg *seg);

/* Removes the name; mappings stay valid. Returns 0, WSD_ENOENT or WSD_EIO. */
int shm_seg_unlink(const char *name);

/*
 * Writes the segment name of the instance whose control socket is `control_socket`:
 * "/wsd-" and 16 lowercase hex digits of the 64-bit FNV-1a hash of the path string
 * exactly as given (no canonicalisation: pass the configured path). Always succeeds.
 */
void shm_seg_name_for(const char *control_socket, char out[SHM_SEG_NAME_LEN]);

/* Worker slot i (0..SHM_SEG_WORKERS-1), or NULL when i is out of range. */
struct shm_seg_worker *shm_seg_worker(const struct shm_seg *seg, uint32_t i);

/* Inbound ring of worker slot i, or NULL when i is out of range. */
struct ring *shm_seg_ring(const struct shm_seg *seg, uint32_t i);

/* enum shm_seg_run_state of the instance (acquire load). */
uint32_t shm_seg_state(const struct shm_seg *seg);

/* Publishes a new run state (release store; master only). */
void shm_seg_set_state(struct shm_seg *seg, enum shm_seg_run_state state);

/* Marks the segment broken: a repair failed and the master must rebuild it. */
void shm_seg_mark_broken(struct shm_seg *seg);

/* True once shm_seg_mark_broken() was called on this segment by any process. */
bool shm_seg_is_broken(const struct shm_seg *seg);

/* Bumps the configuration generation (master, after applying a reload); returns it. */
uint64_t shm_seg_bump_config_generation(struct shm_seg *seg);

/* Bucket of an HTTP status for shm_seg_worker_stats.handshake_failures[]. */
enum shm_seg_hs_bucket shm_seg_hs_bucket(int status);

/* Bucket of a WebSocket close code for shm_seg_worker_stats.closes[]. */
enum shm_seg_close_bucket shm_seg_close_bucket(uint16_t code);

#endif
