/* names.c - shared name -> per-worker connection counts (user index, group table). */
#include "shm/names.h"

#include <string.h>

#define RELAXED memory_order_relaxed

/* Bytes of the used-span bitmap, rounded to whole cache lines. */
static size_t names_bitmap_len(uint32_t capacity)
{
    size_t words = ((size_t)capacity / NAMES_SPAN + 63) / 64;
    return (words * 8 + WSD_CACHELINE - 1) & ~(size_t)(WSD_CACHELINE - 1);
}

size_t names_size(uint32_t capacity)
{
    return sizeof(struct names_table) + names_bitmap_len(capacity) +
           (size_t)capacity * sizeof(struct names_entry);
}

static _Atomic uint64_t *names_spans(const struct names_table *t)
{
    return (_Atomic uint64_t *)((char *)t + sizeof(struct names_table));
}

struct names_entry *names_entries(const struct names_table *t)
{
    return (struct names_entry *)((char *)t + sizeof(struct names_table) +
                                  names_bitmap_len(t->capacity));
}

/* Marks the span of entry i as used (lock held). */
static void names_mark_span(struct names_table *t, uint32_t i)
{
    uint32_t span = i / NAMES_SPAN;
    atomic_fetch_or_explicit(&names_spans(t)[span / 64], UINT64_C(1) << (span % 64),
                             memory_order_release);
}

/* True when no entry of span was ever used. */
static bool names_span_unused(const struct names_table *t, uint32_t span)
{
    uint64_t word = atomic_load_explicit(&names_spans(t)[span / 64], memory_order_acquire);
    return (word & (UINT64_C(1) << (span % 64))) == 0;
}

int names_init(struct names_table *t, uint32_t capacity)
{
    if (capacity < 2 || (capacity & (capacity - 1)) != 0)
        return WSD_EINVAL;
    t->capacity = capacity;
    atomic_store_explicit(&t->used, 0, RELAXED);
    t->dead = 0;
    return shm_mutex_init(&t->lock);
}

static uint64_t names_hash(const char *name, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h ? h : 1;
}

/* Recomputes an entry's derived fields from its counts. */
static void names_derive(struct names_entry *e)
{
    uint32_t total = 0;
    uint64_t mask = 0;
    for (uint32_t w = 0; w < NAMES_WORKERS; w++) {
        total += e->counts[w];
        if (e->counts[w])
            mask |= UINT64_C(1) << w;
    }
    atomic_store_explicit(&e->total, total, RELAXED);
    atomic_store_explicit(&e->worker_mask, mask, memory_order_release);
}

/* Repair after a process died holding the lock: derived fields and counters. */
static int names_repair(void *ctx)
{
    struct names_table *t = ctx;
    struct names_entry *es = names_entries(t);
    uint32_t used = 0, dead = 0;
    for (uint32_t i = 0; i < t->capacity; i++) {
        if (i % NAMES_SPAN == 0 && names_span_unused(t, i / NAMES_SPAN)) {
            i += NAMES_SPAN - 1;
            continue;
        }
        struct names_entry *e = &es[i];
        if (e->state == NAMES_USED) {
            names_derive(e);
            if (atomic_load_explicit(&e->total, RELAXED) == 0)
                e->state = NAMES_DEAD;
        }
        used += e->state == NAMES_USED;
        dead += e->state == NAMES_DEAD;
    }
    atomic_store_explicit(&t->used, used, RELAXED);
    t->dead = dead;
    return 0;
}

static bool names_valid(size_t len, uint32_t worker)
{
    return len >= 1 && len <= NAMES_NAME_MAX && worker < NAMES_WORKERS;
}

/*
 * Finds name's entry (lock held). Returns its index, or NAMES_NONE with *slot set to
 * the first reusable slot of the probe sequence (NAMES_NONE when the table is full).
 */
static uint32_t names_find_locked(struct names_table *t, const char *name, size_t len,
                                  uint64_t hash, uint32_t *slot)
{
    struct names_entry *es = names_entries(t);
    uint32_t mask = t->capacity - 1, reuse = NAMES_NONE;
    for (uint32_t n = 0, i = (uint32_t)hash & mask; n < t->capacity; n++, i = (i + 1) & mask) {
        struct names_entry *e = &es[i];
        if (e->state == NAMES_FREE) {
            *slot = reuse != NAMES_NONE ? reuse : i;
            return NAMES_NONE;
        }
        if (e->state == NAMES_DEAD) {
            if (reuse == NAMES_NONE)
                reuse = i;
            continue;
        }
        if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0)
            return i;
    }
    *slot = reuse;
    return NAMES_NONE;
}

static void names_fill_info(const struct names_entry *e, uint32_t index, struct names_info *out)
{
    if (out == NULL)
        return;
    out->index = index;
    out->total = atomic_load_explicit(&e->total, RELAXED);
    out->worker_mask = atomic_load_explicit(&e->worker_mask, RELAXED);
}

int names_add(struct names_table *t, const char *name, size_t len, uint32_t worker,
              struct names_info *out, bool *first_on_worker)
{
    if (!names_valid(len, worker))
        return WSD_EINVAL;
    uint64_t hash = names_hash(name, len);
    if (shm_lock(&t->lock, names_repair, t) < 0)
        return WSD_EBROKEN;
    struct names_entry *es = names_entries(t);
    uint32_t slot = NAMES_NONE;
    uint32_t i = names_find_locked(t, name, len, hash, &slot);
    if (i == NAMES_NONE) {
        uint32_t used = atomic_load_explicit(&t->used, RELAXED);
        if (slot == NAMES_NONE || (used + 1) * 4 > t->capacity * 3) {
            shm_unlock(&t->lock);
            return WSD_ENOSPC;
        }
        i = slot;
        struct names_entry *e = &es[i];
        if (e->state == NAMES_DEAD)
            t->dead--;
        names_mark_span(t, i);
        memset(e->counts, 0, sizeof(e->counts));
        memcpy(e->name, name, len);
        e->len = (uint32_t)len;
        e->hash = hash;
        e->state = NAMES_USED;
        atomic_store_explicit(&t->used, used + 1, RELAXED);
    }
    struct names_entry *e = &es[i];
    *first_on_worker = e->counts[worker] == 0;
    e->counts[worker]++;
    names_derive(e);
    names_fill_info(e, i, out);
    shm_unlock(&t->lock);
    return 0;
}

int names_remove(struct names_table *t, const char *name, size_t len, uint32_t worker,
                 bool *last_on_worker)
{
    if (!names_valid(len, worker))
        return WSD_EINVAL;
    uint64_t hash = names_hash(name, len);
    if (shm_lock(&t->lock, names_repair, t) < 0)
        return WSD_EBROKEN;
    uint32_t slot;
    uint32_t i = names_find_locked(t, name, len, hash, &slot);
    struct names_entry *e = i == NAMES_NONE ? NULL : &names_entries(t)[i];
    if (e == NULL || e->counts[worker] == 0) {
        shm_unlock(&t->lock);
        return WSD_ENOENT;
    }
    e->counts[worker]--;
    *last_on_worker = e->counts[worker] == 0;
    names_derive(e);
    if (atomic_load_explicit(&e->total, RELAXED) == 0) {
        e->state = NAMES_DEAD;
        t->dead++;
        atomic_fetch_sub_explicit(&t->used, 1, RELAXED);
    }
    shm_unlock(&t->lock);
    return 0;
}

int names_lookup(struct names_table *t, const char *name, size_t len, struct names_info *out)
{
    if (len < 1 || len > NAMES_NAME_MAX)
        return WSD_EINVAL;
    uint64_t hash = names_hash(name, len);
    if (shm_lock(&t->lock, names_repair, t) < 0)
        return WSD_EBROKEN;
    uint32_t slot;
    uint32_t i = names_find_locked(t, name, len, hash, &slot);
    if (i != NAMES_NONE)
        names_fill_info(&names_entries(t)[i], i, out);
    shm_unlock(&t->lock);
    return i == NAMES_NONE ? WSD_ENOENT : 0;
}

int names_release_worker(struct names_table *t, uint32_t worker)
{
    if (worker >= NAMES_WORKERS)
        return WSD_EINVAL;
    struct names_entry *es = names_entries(t);
    int changed = 0;
    for (uint32_t i = 0; i < t->capacity; i++) {
        if (i % NAMES_SPAN == 0 && names_span_unused(t, i / NAMES_SPAN)) {
            i += NAMES_SPAN - 1; /* never used: its pages were never touched */
            continue;
        }
        struct names_entry *e = &es[i];
        uint64_t bit = UINT64_C(1) << worker;
        if (!(atomic_load_explicit(&e->worker_mask, RELAXED) & bit))
            continue; /* the lock is taken only for entries the worker is in */
        if (shm_lock(&t->lock, names_repair, t) < 0)
            return WSD_EBROKEN;
        if (e->state == NAMES_USED && e->counts[worker] != 0) {
            e->counts[worker] = 0;
            names_derive(e);
            if (atomic_load_explicit(&e->total, RELAXED) == 0) {
                e->state = NAMES_DEAD;
                t->dead++;
                atomic_fetch_sub_explicit(&t->used, 1, RELAXED);
            }
            changed++;
        }
        shm_unlock(&t->lock);
    }
    return changed;
}

void names_foreach(const struct names_table *t, names_fn fn, void *ctx)
{
    const struct names_entry *es = names_entries(t);
    for (uint32_t i = 0; i < t->capacity; i++) {
        if (i % NAMES_SPAN == 0 && names_span_unused(t, i / NAMES_SPAN)) {
            i += NAMES_SPAN - 1;
            continue;
        }
        if (es[i].state == NAMES_USED)
            fn(ctx, &es[i]);
    }
}
