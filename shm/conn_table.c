/* conn_table.c - the shared connection table: allocation, release, repair, lookups. */
#include "shm/conn_table.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

__attribute__((weak)) void conn_table_test_hook(enum conn_table_step step)
{
    (void)step;
}

static struct conn_table_slot *slot_at(const struct shm_seg *seg, uint32_t index)
{
    return &seg->conns[index];
}

static uint32_t slot_state(const struct conn_table_slot *s)
{
    return atomic_load_explicit(&s->state, memory_order_acquire);
}

static uint32_t slot_owner(const struct conn_table_slot *s)
{
    return atomic_load_explicit(&s->owner, memory_order_relaxed);
}

/* A used slot nobody will ever release: owner out of range or its worker slot empty. */
static bool owner_gone(const struct shm_seg *seg, uint32_t owner)
{
    return owner >= SHM_SEG_WORKERS ||
           atomic_load_explicit(&seg->workers[owner].state, memory_order_acquire) ==
               SHM_SEG_WORKER_EMPTY;
}

const char *conn_table_addr_format(const struct conn_table_addr *a, char *out, size_t cap)
{
    char text[INET6_ADDRSTRLEN];
    if (a->family == AF_INET && inet_ntop(AF_INET, a->addr, text, sizeof(text)) != NULL)
        snprintf(out, cap, "%s:%u", text, a->port);
    else if (a->family == AF_INET6 && inet_ntop(AF_INET6, a->addr, text, sizeof(text)) != NULL)
        snprintf(out, cap, "[%s]:%u", text, a->port);
    else
        snprintf(out, cap, "-");
    return out;
}

/* ---- connections per address (lock held) ---- */

static uint32_t ip_home(const struct shm_seg *seg, uint16_t family, const uint8_t addr[16])
{
    unsigned char in[18], out[crypto_shorthash_BYTES];
    uint64_t h;

    memcpy(in, &family, 2);
    memcpy(in + 2, addr, 16);
    crypto_shorthash(out, in, sizeof(in), seg->conn_hdr->ip_key);
    memcpy(&h, out, sizeof(h));
    return (uint32_t)h & (seg->hdr->ips_cap - 1);
}

/* The entry of (family, addr), or the empty entry where it would go; NULL when a full
 * scan finds neither (only a corrupted table). */
static struct conn_table_ip *ip_find_locked(struct shm_seg *seg, uint16_t family,
                                            const uint8_t addr[16])
{
    uint32_t cap = seg->hdr->ips_cap, i = ip_home(seg, family, addr);

    for (uint32_t n = 0; n < cap; n++, i = (i + 1) & (cap - 1)) {
        struct conn_table_ip *e = &seg->ips[i];

        if (e->family == 0 || (e->family == family && memcmp(e->addr, addr, 16) == 0))
            return e;
    }
    return NULL;
}

/* Counts one connection of (family, addr) in e, the entry ip_find_locked() returned. */
static void ip_count_locked(struct conn_table_ip *e, uint16_t family, const uint8_t addr[16])
{
    if (e->family == 0) {
        memcpy(e->addr, addr, 16);
        e->family = family;
    }
    e->count++;
}

static int ip_add_locked(struct shm_seg *seg, uint16_t family, const uint8_t addr[16])
{
    struct conn_table_ip *e = ip_find_locked(seg, family, addr);

    if (e == NULL)
        return WSD_EBROKEN;
    ip_count_locked(e, family, addr);
    return 0;
}

/* Empties entry e and moves later entries of its run back into the hole. */
static void ip_remove_locked(struct shm_seg *seg, struct conn_table_ip *e)
{
    uint32_t mask = seg->hdr->ips_cap - 1, hole = (uint32_t)(e - seg->ips);

    for (uint32_t j = (hole + 1) & mask; seg->ips[j].family != 0; j = (j + 1) & mask) {
        struct conn_table_ip *n = &seg->ips[j];
        uint32_t home = ip_home(seg, n->family, n->addr);

        if (((j - home) & mask) >= ((j - hole) & mask)) { /* home not in (hole, j] */
            seg->ips[hole] = *n;
            hole = j;
        }
    }
    memset(&seg->ips[hole], 0, sizeof(seg->ips[hole]));
}

static void ip_drop_locked(struct shm_seg *seg, const struct conn_table_slot *s)
{
    struct conn_table_ip *e;

    if (s->family == 0 || (e = ip_find_locked(seg, s->family, s->addr)) == NULL ||
        e->family == 0)
        return;
    if (--e->count == 0)
        ip_remove_locked(seg, e);
}

/*
 * Runs under the lock after its holder died: rebuilds free list, in-use count, the
 * workers' connection counts and the address table from the slot states below the
 * high-water mark.
 */
static int table_repair(void *ctx)
{
    struct shm_seg *seg = ctx;
    struct conn_table_header *h = seg->conn_hdr;
    uint32_t hw = atomic_load_explicit(&h->high_water, memory_order_relaxed);
    uint32_t counts[SHM_SEG_WORKERS] = {0};
    uint32_t free_head = CONN_TABLE_INDEX_NONE, in_use = 0, i;

    if (h->count != seg->hdr->conn_count || hw > h->count)
        return WSD_EBROKEN;
    for (i = hw; i-- > 0;) {
        struct conn_table_slot *s = slot_at(seg, i);
        uint32_t st = slot_state(s), owner = slot_owner(s);

        if (st > CONN_TABLE_CLOSING)
            return WSD_EBROKEN;
        if (st != CONN_TABLE_FREE && owner_gone(seg, owner)) {
            atomic_store_explicit(&s->state, CONN_TABLE_FREE, memory_order_release);
            st = CONN_TABLE_FREE;
        }
        if (st == CONN_TABLE_FREE) {
            s->next_free = free_head;
            free_head = i;
        } else {
            in_use++;
            counts[owner]++;
        }
    }
    h->free_head = free_head;
    atomic_store_explicit(&h->in_use, in_use, memory_order_relaxed);
    for (i = 0; i < SHM_SEG_WORKERS; i++)
        atomic_store_explicit(&seg->workers[i].connections, counts[i], memory_order_relaxed);
    memset(seg->ips, 0, (size_t)seg->hdr->ips_cap * sizeof(seg->ips[0]));
    for (i = 0; i < hw; i++) {
        struct conn_table_slot *s = slot_at(seg, i);

        if (slot_state(s) != CONN_TABLE_FREE && s->family != 0 &&
            ip_add_locked(seg, s->family, s->addr) != 0)
            return WSD_EBROKEN;
    }
    return 0;
}

static int table_lock(struct shm_seg *seg)
{
    int rc = shm_lock(&seg->conn_hdr->lock, table_repair, seg);

    if (rc != 0)
        shm_seg_mark_broken(seg);
    return rc;
}

static void table_unlock(struct shm_seg *seg)
{
    shm_unlock(&seg->conn_hdr->lock);
}

int conn_table_init(struct shm_seg *seg)
{
    struct conn_table_header *h = seg->conn_hdr;

    if (shm_mutex_init(&h->lock) != 0 ||
        getrandom(h->ip_key, sizeof(h->ip_key), 0) != (ssize_t)sizeof(h->ip_key))
        return WSD_EIO;
    h->count = seg->hdr->conn_count;
    h->free_head = CONN_TABLE_INDEX_NONE;
    atomic_store_explicit(&h->high_water, 0, memory_order_relaxed);
    atomic_store_explicit(&h->in_use, 0, memory_order_relaxed);
    atomic_store_explicit(&h->allocs, 0, memory_order_relaxed);
    atomic_store_explicit(&h->releases, 0, memory_order_relaxed);
    atomic_store_explicit(&h->full, 0, memory_order_relaxed);
    return 0;
}

/* The slot the next allocation takes: free list first, then the high-water mark. */
static int pick_locked(struct shm_seg *seg, uint32_t *index)
{
    struct conn_table_header *h = seg->conn_hdr;
    uint32_t hw = atomic_load_explicit(&h->high_water, memory_order_relaxed);

    if (h->free_head != CONN_TABLE_INDEX_NONE) {
        if (h->free_head >= hw || slot_state(slot_at(seg, h->free_head)) != CONN_TABLE_FREE)
            return WSD_EBROKEN;
        *index = h->free_head;
        return 0;
    }
    if (hw >= h->count)
        return WSD_ENOSPC;
    *index = hw;
    return 0;
}

static void unlink_locked(struct shm_seg *seg, uint32_t index)
{
    struct conn_table_header *h = seg->conn_hdr;

    if (h->free_head == index)
        h->free_head = slot_at(seg, index)->next_free;
    else
        atomic_store_explicit(&h->high_water, index + 1, memory_order_release);
}

/* Bumps the generation (1..CONN_TABLE_GENERATION_MAX, then 1 again), then writes the
 * fields readers copy (seqlock order). */
static uint32_t fill_locked(struct conn_table_slot *s, uint32_t worker,
                            const struct conn_table_addr *remote, int64_t connect_wall_ms,
                            int64_t now_mono_ms)
{
    uint32_t gen = atomic_load_explicit(&s->generation, memory_order_relaxed) + 1;

    if (gen > CONN_TABLE_GENERATION_MAX)
        gen = 1;
    atomic_store_explicit(&s->generation, gen, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&s->owner, worker, memory_order_relaxed);
    s->family = remote != NULL ? remote->family : 0;
    s->port = remote != NULL ? remote->port : 0;
    if (remote != NULL)
        memcpy(s->addr, remote->addr, sizeof(s->addr));
    else
        memset(s->addr, 0, sizeof(s->addr));
    s->connect_wall_ms = connect_wall_ms;
    atomic_store_explicit(&s->close_request, 0, memory_order_relaxed);
    atomic_store_explicit(&s->user, CONN_TABLE_USER_NONE, memory_order_relaxed);
    atomic_store_explicit(&s->flags, 0, memory_order_relaxed);
    atomic_store_explicit(&s->last_seen_ms, now_mono_ms, memory_order_relaxed);
    atomic_store_explicit(&s->last_ping_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&s->rtt_us, 0, memory_order_relaxed);
    atomic_store_explicit(&s->missed_pings, 0, memory_order_relaxed);
    atomic_store_explicit(&s->bytes_in, 0, memory_order_relaxed);
    atomic_store_explicit(&s->bytes_out, 0, memory_order_relaxed);
    atomic_store_explicit(&s->msgs_in, 0, memory_order_relaxed);
    atomic_store_explicit(&s->msgs_out, 0, memory_order_relaxed);
    return gen;
}

int conn_table_alloc(struct shm_seg *seg, uint32_t worker, const struct conn_table_addr *remote,
                     uint32_t per_address_max, int64_t connect_wall_ms, int64_t now_mono_ms,
                     uint64_t *id_out)
{
    struct conn_table_header *h = seg->conn_hdr;
    struct conn_table_slot *s;
    struct conn_table_ip *ip = NULL;
    uint32_t index, gen;
    int rc;

    if (worker >= SHM_SEG_WORKERS)
        return WSD_EINVAL;
    rc = table_lock(seg);
    if (rc != 0)
        return rc;
    if (remote != NULL && remote->family != 0) {
        ip = ip_find_locked(seg, remote->family, remote->addr);
        if (ip == NULL) {
            table_unlock(seg);
            shm_seg_mark_broken(seg);
            return WSD_EBROKEN;
        }
        if (per_address_max > 0 && ip->count >= per_address_max) {
            table_unlock(seg);
            atomic_fetch_add_explicit(&h->per_address_refused, 1, memory_order_relaxed);
            return WSD_ETOOBIG;
        }
    }
    rc = pick_locked(seg, &index);
    if (rc != 0) {
        table_unlock(seg);
        if (rc == WSD_ENOSPC)
            atomic_fetch_add_explicit(&h->full, 1, memory_order_relaxed);
        else
            shm_seg_mark_broken(seg);
        return rc;
    }
    s = slot_at(seg, index);
    conn_table_test_hook(CONN_TABLE_STEP_ALLOC_PICKED);
    unlink_locked(seg, index);
    conn_table_test_hook(CONN_TABLE_STEP_ALLOC_UNLINKED);
    gen = fill_locked(s, worker, remote, connect_wall_ms, now_mono_ms);
    if (ip != NULL) /* the empty entry found above, or the address's own */
        ip_count_locked(ip, remote->family, remote->addr);
    atomic_fetch_add_explicit(&h->in_use, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&seg->workers[worker].connections, 1, memory_order_relaxed);
    conn_table_test_hook(CONN_TABLE_STEP_ALLOC_FILLED);
    atomic_store_explicit(&s->state, CONN_TABLE_CONNECTING, memory_order_release);
    conn_table_test_hook(CONN_TABLE_STEP_ALLOC_PUBLISHED);
    table_unlock(seg);
    atomic_fetch_add_explicit(&h->allocs, 1, memory_order_relaxed);
    *id_out = conn_table_make_id(gen, index);
    return 0;
}

/* State first, so a death after it leaves a FREE slot that the repair puts on the list. */
static void release_locked(struct shm_seg *seg, uint32_t index)
{
    struct conn_table_header *h = seg->conn_hdr;
    struct conn_table_slot *s = slot_at(seg, index);
    uint32_t owner = slot_owner(s);

    atomic_store_explicit(&s->state, CONN_TABLE_FREE, memory_order_release);
    conn_table_test_hook(CONN_TABLE_STEP_RELEASE_FREED);
    ip_drop_locked(seg, s);
    s->next_free = h->free_head;
    h->free_head = index;
    atomic_fetch_sub_explicit(&h->in_use, 1, memory_order_relaxed);
    if (owner < SHM_SEG_WORKERS)
        atomic_fetch_sub_explicit(&seg->workers[owner].connections, 1, memory_order_relaxed);
    conn_table_test_hook(CONN_TABLE_STEP_RELEASE_LINKED);
    atomic_fetch_add_explicit(&h->releases, 1, memory_order_relaxed);
}

static bool id_matches(const struct conn_table_slot *s, uint64_t id)
{
    return slot_state(s) != CONN_TABLE_FREE &&
           atomic_load_explicit(&s->generation, memory_order_acquire) ==
               conn_table_id_generation(id);
}

int conn_table_release(struct shm_seg *seg, uint64_t id)
{
    uint32_t index = conn_table_id_index(id);
    int rc;

    if (index >= seg->hdr->conn_count || conn_table_id_generation(id) == 0)
        return WSD_ENOENT;
    rc = table_lock(seg);
    if (rc != 0)
        return rc;
    if (!id_matches(slot_at(seg, index), id)) {
        table_unlock(seg);
        return WSD_ENOENT;
    }
    release_locked(seg, index);
    table_unlock(seg);
    return 0;
}

int conn_table_release_worker(struct shm_seg *seg, uint32_t worker)
{
    uint32_t hw, i;
    int freed = 0, rc;

    if (worker >= SHM_SEG_WORKERS)
        return WSD_EINVAL;
    hw = conn_table_high_water(seg);
    for (i = 0; i < hw; i++) {
        struct conn_table_slot *s = slot_at(seg, i);

        if (slot_state(s) == CONN_TABLE_FREE || slot_owner(s) != worker)
            continue;
        rc = table_lock(seg);
        if (rc != 0)
            return rc;
        if (slot_state(s) != CONN_TABLE_FREE && slot_owner(s) == worker) {
            release_locked(seg, i);
            freed++;
        }
        table_unlock(seg);
    }
    return freed;
}

int64_t conn_table_address_count(struct shm_seg *seg, const struct conn_table_addr *remote)
{
    struct conn_table_ip *e;
    int64_t n = 0;
    int rc;

    if (remote == NULL || remote->family == 0)
        return 0;
    rc = table_lock(seg);
    if (rc != 0)
        return rc;
    e = ip_find_locked(seg, remote->family, remote->addr);
    if (e == NULL)
        n = WSD_EBROKEN;
    else if (e->family != 0)
        n = e->count;
    table_unlock(seg);
    return n;
}

struct conn_table_slot *conn_table_get(const struct shm_seg *seg, uint64_t id)
{
    uint32_t index = conn_table_id_index(id);
    struct conn_table_slot *s;

    if (index >= seg->hdr->conn_count || conn_table_id_generation(id) == 0)
        return NULL;
    s = slot_at(seg, index);
    return id_matches(s, id) ? s : NULL;
}

int conn_table_set_state(struct conn_table_slot *slot, enum conn_table_state state)
{
    if (state != CONN_TABLE_CONNECTING && state != CONN_TABLE_CONNECTED &&
        state != CONN_TABLE_CLOSING)
        return WSD_EINVAL;
    atomic_store_explicit(&slot->state, (uint32_t)state, memory_order_release);
    return 0;
}

int conn_table_request_close(struct shm_seg *seg, uint64_t id, uint16_t code)
{
    struct conn_table_slot *s;
    uint64_t req = (id & ~(uint64_t)UINT32_MAX) | code;

    if (code == 0)
        return WSD_EINVAL;
    s = conn_table_get(seg, id);
    if (s == NULL)
        return WSD_ENOENT;
    atomic_store_explicit(&s->close_request, req, memory_order_release);
    return 0;
}

/* The pending close code of a request word, if it was made for the current occupant. */
static uint16_t request_code(const struct conn_table_slot *s, uint64_t req)
{
    if (req == 0 || (uint32_t)(req >> 32) != atomic_load_explicit(&s->generation,
                                                                  memory_order_acquire))
        return 0;
    return (uint16_t)req;
}

uint16_t conn_table_take_close_request(struct conn_table_slot *slot)
{
    uint64_t req = atomic_exchange_explicit(&slot->close_request, 0, memory_order_acq_rel);

    return request_code(slot, req);
}

/* Copies every field of a used slot; the caller validates the copy afterwards. */
static void copy_slot(const struct conn_table_slot *s, struct conn_table_info *out)
{
    out->owner = slot_owner(s);
    out->remote.family = s->family;
    out->remote.port = s->port;
    memcpy(out->remote.addr, s->addr, sizeof(out->remote.addr));
    out->connect_wall_ms = s->connect_wall_ms;
    out->last_seen_ms = atomic_load_explicit(&s->last_seen_ms, memory_order_relaxed);
    out->last_ping_ms = atomic_load_explicit(&s->last_ping_ms, memory_order_relaxed);
    out->rtt_us = atomic_load_explicit(&s->rtt_us, memory_order_relaxed);
    out->missed_pings = atomic_load_explicit(&s->missed_pings, memory_order_relaxed);
    out->user = atomic_load_explicit(&s->user, memory_order_relaxed);
    out->flags = atomic_load_explicit(&s->flags, memory_order_relaxed);
    out->close_request =
        request_code(s, atomic_load_explicit(&s->close_request, memory_order_relaxed));
    out->bytes_in = atomic_load_explicit(&s->bytes_in, memory_order_relaxed);
    out->bytes_out = atomic_load_explicit(&s->bytes_out, memory_order_relaxed);
    out->msgs_in = atomic_load_explicit(&s->msgs_in, memory_order_relaxed);
    out->msgs_out = atomic_load_explicit(&s->msgs_out, memory_order_relaxed);
}

int conn_table_snapshot(const struct shm_seg *seg, uint32_t index, struct conn_table_info *out)
{
    const struct conn_table_slot *s;
    uint32_t gen, state;

    if (index >= seg->hdr->conn_count)
        return WSD_ENOENT;
    s = slot_at(seg, index);
    gen = atomic_load_explicit(&s->generation, memory_order_acquire);
    state = slot_state(s);
    if (state == CONN_TABLE_FREE)
        return WSD_ENOENT;
    copy_slot(s, out);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->generation, memory_order_relaxed) != gen ||
        atomic_load_explicit(&s->state, memory_order_relaxed) == CONN_TABLE_FREE)
        return WSD_EAGAIN;
    out->id = conn_table_make_id(gen, index);
    out->state = state;
    return 0;
}

uint32_t conn_table_in_use(const struct shm_seg *seg)
{
    return atomic_load_explicit(&seg->conn_hdr->in_use, memory_order_relaxed);
}

uint32_t conn_table_capacity(const struct shm_seg *seg)
{
    return seg->hdr->conn_count;
}

uint32_t conn_table_high_water(const struct shm_seg *seg)
{
    uint32_t hw = atomic_load_explicit(&seg->conn_hdr->high_water, memory_order_acquire);

    return WSD_MIN(hw, seg->hdr->conn_count);
}

/* Length of the free list, or WSD_EBROKEN when it leaves [0, hw), cycles or holds a used slot. */
static int64_t free_list_len_locked(const struct shm_seg *seg, uint32_t hw)
{
    uint32_t index = seg->conn_hdr->free_head;
    int64_t n = 0;

    while (index != CONN_TABLE_INDEX_NONE) {
        if (index >= hw || n >= hw || slot_state(slot_at(seg, index)) != CONN_TABLE_FREE)
            return WSD_EBROKEN;
        n++;
        index = slot_at(seg, index)->next_free;
    }
    return n;
}

/* Every used slot's address has an entry, and the entries' counts add up to them. */
static int verify_ips_locked(struct shm_seg *seg, uint32_t hw)
{
    uint64_t want = 0, have = 0;
    uint32_t i;

    for (i = 0; i < hw; i++) {
        const struct conn_table_slot *s = slot_at(seg, i);
        const struct conn_table_ip *e;

        if (slot_state(s) == CONN_TABLE_FREE || s->family == 0)
            continue;
        e = ip_find_locked(seg, s->family, s->addr);
        if (e == NULL || e->family == 0)
            return WSD_EBROKEN;
        want++;
    }
    for (i = 0; i < seg->hdr->ips_cap; i++) {
        if (seg->ips[i].family == 0)
            continue;
        if (seg->ips[i].count == 0)
            return WSD_EBROKEN;
        have += seg->ips[i].count;
    }
    return want == have ? 0 : WSD_EBROKEN;
}

static int verify_locked(struct shm_seg *seg)
{
    uint32_t hw = atomic_load_explicit(&seg->conn_hdr->high_water, memory_order_relaxed);
    uint32_t counts[SHM_SEG_WORKERS] = {0};
    uint32_t used = 0, i;
    int64_t nfree;

    if (hw > seg->conn_hdr->count)
        return WSD_EBROKEN;
    nfree = free_list_len_locked(seg, hw);
    if (nfree < 0)
        return WSD_EBROKEN;
    for (i = 0; i < hw; i++) {
        const struct conn_table_slot *s = slot_at(seg, i);
        uint32_t st = slot_state(s), owner = slot_owner(s);

        if (st == CONN_TABLE_FREE)
            continue;
        if (st > CONN_TABLE_CLOSING || owner >= SHM_SEG_WORKERS)
            return WSD_EBROKEN;
        used++;
        counts[owner]++;
    }
    if (used + (uint64_t)nfree != hw || used != conn_table_in_use(seg))
        return WSD_EBROKEN;
    for (i = 0; i < SHM_SEG_WORKERS; i++)
        if (atomic_load_explicit(&seg->workers[i].connections, memory_order_relaxed) !=
            counts[i])
            return WSD_EBROKEN;
    return verify_ips_locked(seg, hw);
}

int conn_table_verify(struct shm_seg *seg)
{
    int rc = table_lock(seg);

    if (rc != 0)
        return rc;
    rc = verify_locked(seg);
    table_unlock(seg);
    return rc;
}
