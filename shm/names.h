/*
 * names.h - a shared-memory index from a name (user id or group name) to how many
 * connections each worker holds under it. Two instances live in the segment: the user
 * index (user id -> that user's connections) and the group table (group name -> its
 * members). A sender reads one entry to learn which workers to wake; each worker keeps
 * its own local index of which of its connections are under which name.
 *
 * Layout: a header (robust lock, capacity, counters), a bitmap with one bit per
 * NAMES_SPAN entries that tells which spans were ever used (so scans after a crash read
 * only those pages), then `capacity` entries: an open-addressing hash table with linear
 * probing and tombstones. Capacity is a power of
 * two; the table refuses new names beyond 3/4 full (WSD_ENOSPC).
 *
 *   struct names_entry (448 bytes, 7 cache lines):
 *   0    hash         u64    FNV-1a of the name; 0 only when never used
 *   8    state        u32    NAMES_FREE / NAMES_USED / NAMES_DEAD (tombstone)
 *   12   len          u32    name length, 1..NAMES_NAME_MAX
 *   16   total        atomic u32   sum of counts[] (readable without the lock)
 *   20   reserved     u32
 *   24   worker_mask  atomic u64   bit w set when counts[w] > 0
 *   32   name         u8[128]
 *   160  counts       u32[64]      connections per worker slot
 *
 * Every change runs under the table lock and writes counts[] first, then the derived
 * total and worker_mask, so the repair after a crash inside the lock recomputes the
 * derived fields and the header counters from counts[] and the states.
 */
#ifndef WSD_SHM_NAMES_H
#define WSD_SHM_NAMES_H

#include "core/wsd.h"
#include "shm/lock.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAMES_NAME_MAX 128
#define NAMES_WORKERS 64
#define NAMES_NONE UINT32_MAX
#define NAMES_SPAN 8 /* entries per bit of the used-span bitmap (8 x 448 bytes) */

enum names_state {
    NAMES_FREE = 0,
    NAMES_USED = 1,
    NAMES_DEAD = 2,
};

struct names_entry {
    alignas(WSD_CACHELINE) uint64_t hash;
    uint32_t state;
    uint32_t len;
    _Atomic uint32_t total;
    uint32_t reserved;
    _Atomic uint64_t worker_mask;
    char name[NAMES_NAME_MAX];
    uint32_t counts[NAMES_WORKERS];
};

_Static_assert(offsetof(struct names_entry, worker_mask) == 24, "names entry layout");
_Static_assert(offsetof(struct names_entry, name) == 32, "names entry layout");
_Static_assert(offsetof(struct names_entry, counts) == 160, "names entry layout");
_Static_assert(sizeof(struct names_entry) == 448, "names entry is 7 cache lines");

struct names_table {
    alignas(WSD_CACHELINE) struct shm_mutex lock;
    alignas(WSD_CACHELINE) uint32_t capacity; /* entries, a power of two */
    _Atomic uint32_t used;                    /* NAMES_USED entries */
    uint32_t dead;                            /* tombstones */
    uint32_t reserved;
    /* _Atomic uint64_t used_spans[capacity / NAMES_SPAN / 64 rounded up], then
       struct names_entry entries[capacity] at the next cache line */
};

_Static_assert(sizeof(struct names_table) == 2 * WSD_CACHELINE, "names header is 128 bytes");

/* A copy of one entry's routing information. */
struct names_info {
    uint32_t index;
    uint32_t total;
    uint64_t worker_mask;
};

/* Bytes needed for a table of capacity entries (header included). */
size_t names_size(uint32_t capacity);

/* Initialises a table in zeroed shared memory; capacity must be a power of two.
 * Returns 0, WSD_EINVAL or WSD_EIO (lock init). */
int names_init(struct names_table *t, uint32_t capacity);

/* The entries array of t. */
struct names_entry *names_entries(const struct names_table *t);

/*
 * Adds one connection of worker under name (creating the entry). *first_on_worker is
 * set when the worker had none under this name before. Returns 0, WSD_EINVAL (empty or
 * too long name, bad worker), WSD_ENOSPC (table full), WSD_EBROKEN.
 */
int names_add(struct names_table *t, const char *name, size_t len, uint32_t worker,
              struct names_info *out, bool *first_on_worker);

/*
 * Removes one connection of worker from name (deleting the entry at zero).
 * *last_on_worker is set when the worker has none left under it. Returns 0, WSD_ENOENT
 * (no such name, or the worker has none under it), WSD_EINVAL, WSD_EBROKEN.
 */
int names_remove(struct names_table *t, const char *name, size_t len, uint32_t worker,
                 bool *last_on_worker);

/* Looks name up. Returns 0 with out filled, WSD_ENOENT, WSD_EINVAL, WSD_EBROKEN. */
int names_lookup(struct names_table *t, const char *name, size_t len, struct names_info *out);

/*
 * Drops every count of a dead worker (the master, after reaping it), taking the lock
 * only for the entries that worker is in. Returns how many entries it changed,
 * WSD_EINVAL or WSD_EBROKEN.
 */
int names_release_worker(struct names_table *t, uint32_t worker);

/*
 * Calls fn for each used entry without taking the lock (inspection: wsctl, presence
 * fallbacks); an entry changing meanwhile may be seen torn. Works on a read-only
 * mapping.
 */
typedef void (*names_fn)(void *ctx, const struct names_entry *e);
void names_foreach(const struct names_table *t, names_fn fn, void *ctx);

#endif
