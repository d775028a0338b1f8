/* ring.c - multi-producer single-consumer byte rings in shared memory. */
#include "shm/ring.h"

#include <string.h>

#define REC_STATE_MASK 0xffu

static unsigned char *ring_data(const struct ring *r)
{
    return (unsigned char *)r + sizeof(*r);
}

static struct ring_rec *rec_at(const struct ring *r, uint64_t pos)
{
    return (struct ring_rec *)(ring_data(r) + (pos & (r->size - 1)));
}

static uint32_t rec_word(uint32_t state, uint8_t producer, uint16_t type)
{
    return state | (uint32_t)producer << 8 | (uint32_t)type << 16;
}

static uint32_t word_state(uint32_t w)
{
    return w & REC_STATE_MASK;
}

static uint8_t word_producer(uint32_t w)
{
    return (uint8_t)(w >> 8);
}

static uint16_t word_type(uint32_t w)
{
    return (uint16_t)(w >> 16);
}

/* Bytes a record with len payload bytes occupies, header and alignment included. */
static uint64_t rec_total(uint32_t len)
{
    return ((uint64_t)RING_REC_HDR_LEN + len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

__attribute__((weak)) void ring_test_hook(enum ring_step step)
{
    (void)step;
}

size_t ring_footprint(uint64_t size)
{
    return sizeof(struct ring) + (size_t)size;
}

int ring_init(struct ring *r, uint64_t size, uint32_t consumer)
{
    if (size < RING_MIN_BYTES || size > RING_MAX_BYTES || (size & (size - 1)) != 0)
        return WSD_EINVAL;
    memset(r, 0, sizeof(*r));
    if (shm_mutex_init(&r->lock) != 0)
        return WSD_EIO;
    r->size = size;
    r->consumer = consumer;
    atomic_store_explicit(&r->head, 0, memory_order_relaxed);
    atomic_store_explicit(&r->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&r->records, 0, memory_order_relaxed);
    atomic_store_explicit(&r->full, 0, memory_order_relaxed);
    atomic_store_explicit(&r->skipped, 0, memory_order_relaxed);
    r->magic = RING_MAGIC;
    return 0;
}

uint32_t ring_max_payload(const struct ring *r)
{
    return (uint32_t)(r->size / 2 - RING_REC_HDR_LEN);
}

uint64_t ring_size(const struct ring *r)
{
    return r->size;
}

/*
 * Repair after a producer died holding the lock. Headers are written before head moves
 * and head moves in one store, so the only thing to check is the head/tail invariant.
 */
static int ring_repair(void *ctx)
{
    struct ring *r = ctx;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

    if (head - tail > r->size || head % RING_ALIGN != 0)
        return WSD_EBROKEN;
    return 0;
}

/* With the lock held: writes the headers at head and advances it, or says the ring is full. */
static int reserve_locked(struct ring *r, uint32_t word, uint32_t len, struct ring_resv *out)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t need = rec_total(len);
    uint64_t off = head & (r->size - 1);
    uint64_t pad = need > r->size - off ? r->size - off : 0;
    struct ring_rec *rec;

    if (head + pad + need - tail > r->size)
        return WSD_ENOSPC;
    if (pad != 0) {
        rec = rec_at(r, head);
        rec->len = (uint32_t)(pad - RING_REC_HDR_LEN);
        atomic_store_explicit(&rec->word,
                              rec_word(RING_REC_COMMITTED, word_producer(word), RING_TYPE_PAD),
                              memory_order_relaxed);
    }
    rec = rec_at(r, head + pad);
    rec->len = len;
    atomic_store_explicit(&rec->word, word, memory_order_relaxed);
    ring_test_hook(RING_STEP_HEADER_WRITTEN);
    atomic_store_explicit(&r->head, head + pad + need, memory_order_release);
    ring_test_hook(RING_STEP_HEAD_ADVANCED);
    out->pos = head + pad;
    out->data = (unsigned char *)rec + RING_REC_HDR_LEN;
    return 0;
}

int ring_reserve(struct ring *r, uint16_t type, uint8_t producer, uint32_t len,
                 struct ring_resv *out)
{
    int rc;

    if (type > RING_TYPE_MAX)
        return WSD_EINVAL;
    if (len > ring_max_payload(r))
        return WSD_ETOOBIG;
    rc = shm_lock(&r->lock, ring_repair, r);
    if (rc != 0)
        return rc;
    rc = reserve_locked(r, rec_word(RING_REC_RESERVED, producer, type), len, out);
    shm_unlock(&r->lock);
    if (rc != 0) {
        atomic_fetch_add_explicit(&r->full, 1, memory_order_relaxed);
        return rc;
    }
    atomic_fetch_add_explicit(&r->records, 1, memory_order_relaxed);
    out->len = len;
    out->type = type;
    out->producer = producer;
    return 0;
}

void ring_commit(struct ring *r, const struct ring_resv *resv)
{
    struct ring_rec *rec = rec_at(r, resv->pos);

    atomic_store_explicit(&rec->word, rec_word(RING_REC_COMMITTED, resv->producer, resv->type),
                          memory_order_release);
}

int ring_push(struct ring *r, uint16_t type, uint8_t producer, const struct iovec *iov,
              int iovcnt)
{
    struct ring_resv resv;
    unsigned char *dst;
    uint64_t total = 0;
    int i, rc;

    if (iovcnt < 0)
        return WSD_EINVAL;
    for (i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total > UINT32_MAX)
        return WSD_EINVAL;
    rc = ring_reserve(r, type, producer, (uint32_t)total, &resv);
    if (rc != 0)
        return rc;
    dst = resv.data;
    for (i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len != 0)
            memcpy(dst, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
    ring_commit(r, &resv);
    return 0;
}

/*
 * Consumer: finds the oldest committed data record, consuming padding and skipped
 * records in front of it. On success *tail_out is its position and *word_out its word.
 */
static int front_record(struct ring *r, uint64_t *tail_out, uint32_t *word_out)
{
    /* acquire: the master may take over consuming from a worker that died */
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

    for (;;) {
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        struct ring_rec *rec;
        uint32_t w;

        if (tail == head)
            return WSD_EAGAIN;
        rec = rec_at(r, tail);
        w = atomic_load_explicit(&rec->word, memory_order_acquire);
        if (word_state(w) == RING_REC_RESERVED)
            return WSD_EAGAIN;
        if (word_state(w) != RING_REC_COMMITTED || rec_total(rec->len) > head - tail ||
            (tail & (r->size - 1)) + rec_total(rec->len) > r->size)
            return WSD_EBROKEN;
        if (word_type(w) != RING_TYPE_PAD && word_type(w) != RING_TYPE_SKIP) {
            *tail_out = tail;
            *word_out = w;
            return 0;
        }
        tail += rec_total(rec->len);
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
}

int ring_peek(struct ring *r, struct ring_msg *out)
{
    uint64_t tail;
    uint32_t w;
    int rc = front_record(r, &tail, &w);
    struct ring_rec *rec;

    if (rc != 0)
        return rc;
    rec = rec_at(r, tail);
    out->data = (const unsigned char *)rec + RING_REC_HDR_LEN;
    out->len = rec->len;
    out->type = word_type(w);
    out->producer = word_producer(w);
    return 0;
}

int ring_pop(struct ring *r)
{
    uint64_t tail;
    uint32_t w;
    int rc = front_record(r, &tail, &w);

    if (rc != 0)
        return rc;
    tail += rec_total(rec_at(r, tail)->len);
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    return 0;
}

/*
 * With the lock held no record can be reserved, so every header in [tail, head) stays
 * as it is while we walk (the consumer only moves tail; live producers only change the
 * words of their own records, from RESERVED to COMMITTED).
 */
static int skip_dead_locked(struct ring *r, uint8_t producer)
{
    uint64_t pos = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    int skipped = 0;

    while (pos != head) {
        struct ring_rec *rec = rec_at(r, pos);
        uint32_t w = atomic_load_explicit(&rec->word, memory_order_acquire);
        uint32_t skip = rec_word(RING_REC_COMMITTED, producer, RING_TYPE_SKIP);

        if (rec_total(rec->len) > head - pos)
            return WSD_EBROKEN;
        if (word_state(w) == RING_REC_RESERVED && word_producer(w) == producer &&
            atomic_compare_exchange_strong_explicit(&rec->word, &w, skip, memory_order_release,
                                                    memory_order_relaxed))
            skipped++;
        pos += rec_total(rec->len);
    }
    return skipped;
}

int ring_skip_dead(struct ring *r, uint8_t producer)
{
    int rc = shm_lock(&r->lock, ring_repair, r);

    if (rc != 0)
        return rc;
    rc = skip_dead_locked(r, producer);
    shm_unlock(&r->lock);
    if (rc > 0)
        atomic_fetch_add_explicit(&r->skipped, (uint64_t)rc, memory_order_relaxed);
    return rc;
}

uint64_t ring_used_bytes(const struct ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t used = head - tail;

    return used > r->size ? r->size : used;
}
