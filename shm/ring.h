/*
 * ring.h - multi-producer single-consumer byte rings: a worker's inbound queue.
 *
 * Every worker slot has one ring in the segment. Any process (other workers, the
 * master) pushes variable-length records; the slot's worker consumes them. After that
 * worker died the master may drain its ring; there is never more than one consumer at a
 * time. The ring is only memory: waking the consumer (eventfd) is the caller's job.
 *
 * Positions head and tail are 64-bit byte counters that never wrap in practice; the
 * offset in the data area is pos & (size - 1). Records start 8-byte aligned:
 *
 *   +------------------+------------------+---------------------------+---------+
 *   | word (atomic u32)| len (u32)        | payload: len bytes        | to 8    |
 *   | state|prod|type  | payload bytes    |                           | aligned |
 *   +------------------+------------------+---------------------------+---------+
 *   word = state (bits 0-7) | producer (bits 8-15) | type (bits 16-31)
 *   state RING_REC_RESERVED, then RING_REC_COMMITTED (release store by the producer)
 *
 * A record never wraps: when it would not fit before the end of the data area the
 * producer writes a committed padding record (type RING_TYPE_PAD) up to the end and puts
 * the record at offset 0. Padding and skipped records are consumed silently.
 *
 * Producers: ring_reserve() takes the ring's robust lock for a few stores: it checks the
 * space, writes the padding header and the record header (producer id, length, type,
 * state RESERVED) and only then advances head with a release store. The caller copies
 * the payload without the lock and ring_commit() publishes it (release store of the
 * word). A full ring returns WSD_ENOSPC at once; nothing waits for space.
 *
 * Consumer: ring_peek() loads head (acquire) and the word of the record at tail
 * (acquire); it stops at the first record not yet committed, so records come out in
 * reservation order (per producer: push order). ring_pop() frees it (release store of
 * tail). Delivery to the consumer is at least once: a consumer that dies between using
 * a record and popping it sees it again.
 *
 * Dead producer rule. Because the header is complete before head covers it, a process
 * killed anywhere in ring_reserve() leaves either no record or a RESERVED record that
 * names it; the lock's repair only checks the head/tail invariant. A producer killed
 * between ring_reserve() and ring_commit() leaves a RESERVED record that stops the
 * consumer. The master, after reaping worker w and before forking its replacement into
 * slot w, calls ring_skip_dead(ring, w) on every ring: each RESERVED record of producer
 * w is committed as type RING_TYPE_SKIP, and the consumer moves past it.
 *
 * struct ring (256 bytes, followed by `size` data bytes):
 *   line 0   magic, size, consumer          set by ring_init, read-only afterwards
 *   line 1   lock (robust), head            producers, under the lock
 *   line 2   tail                           consumer
 *   line 3   records, full, skipped         statistics (relaxed)
 */
#ifndef WSD_SHM_RING_H
#define WSD_SHM_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/wsd.h"
#include "shm/lock.h"

#define RING_MAGIC UINT64_C(0x57534452494e4731) /* "WSDRING1" */
#define RING_MIN_BYTES 64u
#define RING_MAX_BYTES (UINT64_C(1) << 30)
#define RING_ALIGN 8u
#define RING_REC_HDR_LEN 8u

#define RING_TYPE_MAX 0xfeffu  /* record types of callers: 0..RING_TYPE_MAX */
#define RING_TYPE_SKIP 0xfffeu /* a dead producer's record, skipped */
#define RING_TYPE_PAD 0xffffu  /* filler up to the end of the data area */

#define RING_PRODUCER_MASTER 0xffu /* producer id of the master; workers use their slot */

enum ring_rec_state {
    RING_REC_RESERVED = 1,
    RING_REC_COMMITTED = 2,
};

struct ring_rec {
    _Atomic uint32_t word;
    uint32_t len;
};

_Static_assert(sizeof(struct ring_rec) == RING_REC_HDR_LEN, "record header is 8 bytes");

struct ring {
    alignas(WSD_CACHELINE) uint64_t magic;
    uint64_t size; /* data bytes, power of two */
    uint32_t consumer;
    uint32_t reserved0;
    alignas(WSD_CACHELINE) struct shm_mutex lock;
    _Atomic uint64_t head; /* next byte to reserve; written under the lock */
    alignas(WSD_CACHELINE) _Atomic uint64_t tail; /* first byte not consumed */
    alignas(WSD_CACHELINE) _Atomic uint64_t records; /* records reserved */
    _Atomic uint64_t full;    /* reservations refused with WSD_ENOSPC */
    _Atomic uint64_t skipped; /* records of dead producers skipped */
};

_Static_assert(sizeof(struct shm_mutex) + sizeof(uint64_t) <= WSD_CACHELINE,
               "lock and head share one cache line");
_Static_assert(offsetof(struct ring, lock) == 1 * WSD_CACHELINE, "ring layout");
_Static_assert(offsetof(struct ring, tail) == 2 * WSD_CACHELINE, "ring layout");
_Static_assert(offsetof(struct ring, records) == 3 * WSD_CACHELINE, "ring layout");
_Static_assert(sizeof(struct ring) == 4 * WSD_CACHELINE, "ring header is 256 bytes");

/* A reservation: the caller writes len bytes at data, then calls ring_commit(). */
struct ring_resv {
    void *data;
    uint64_t pos;
    uint32_t len;
    uint16_t type;
    uint8_t producer;
};

/* A record seen by the consumer; data points into the ring until ring_pop(). */
struct ring_msg {
    const void *data;
    uint32_t len;
    uint16_t type;
    uint8_t producer;
};

/* Bytes a ring of `size` data bytes occupies (header included). */
size_t ring_footprint(uint64_t size);

/*
 * Initialises a ring in place at r (64-byte aligned, ring_footprint(size) bytes, data
 * left untouched) consumed by worker slot `consumer`. Returns 0; WSD_EINVAL when size is
 * not a power of two in RING_MIN_BYTES..RING_MAX_BYTES; WSD_EIO when the lock could not
 * be initialised.
 */
int ring_init(struct ring *r, uint64_t size, uint32_t consumer);

/* Largest payload a record may carry: half the ring minus the header. */
uint32_t ring_max_payload(const struct ring *r);

/*
 * Reserves room for a record of `len` payload bytes of `type` pushed by `producer`
 * (worker slot or RING_PRODUCER_MASTER) and fills *out. The caller must ring_commit()
 * it; until then the consumer waits at it (see the dead producer rule).
 * Returns 0; WSD_EINVAL for a type above RING_TYPE_MAX; WSD_ETOOBIG when len exceeds
 * ring_max_payload(); WSD_ENOSPC when the ring is full now (counted in `full`; retry
 * after the consumer made room); WSD_EBROKEN when the ring could not be repaired.
 */
int ring_reserve(struct ring *r, uint16_t type, uint8_t producer, uint32_t len,
                 struct ring_resv *out);

/* Publishes a reserved record to the consumer. */
void ring_commit(struct ring *r, const struct ring_resv *resv);

/*
 * Reserves, copies the iovcnt buffers of iov (their total is the payload) and commits.
 * Returns what ring_reserve() returns; WSD_EINVAL also for iovcnt < 0 or a total
 * beyond 4 GiB.
 */
int ring_push(struct ring *r, uint16_t type, uint8_t producer, const struct iovec *iov,
              int iovcnt);

/*
 * Consumer: the oldest committed record, without removing it (padding and skipped
 * records in front of it are consumed). Returns 0 with *out filled; WSD_EAGAIN when the
 * ring is empty or its oldest record is not yet committed; WSD_EBROKEN when a record
 * header is inconsistent with head.
 */
int ring_peek(struct ring *r, struct ring_msg *out);

/*
 * Consumer: removes the record ring_peek() returned; its data is no longer valid.
 * Returns 0, WSD_EAGAIN when there is no committed record, or WSD_EBROKEN.
 */
int ring_pop(struct ring *r);

/*
 * Master, after reaping `producer` and before a new process uses that producer id:
 * commits every record it reserved but never committed as RING_TYPE_SKIP. Takes the
 * ring lock. Returns how many records it skipped, or WSD_EBROKEN.
 */
int ring_skip_dead(struct ring *r, uint8_t producer);

/* Bytes between tail and head (records, headers and padding), for fill reporting. */
uint64_t ring_used_bytes(const struct ring *r);

/* Data bytes of the ring. */
uint64_t ring_size(const struct ring *r);

/* Points in ring_reserve() for ring_test_hook(), all with the ring lock held. */
enum ring_step {
    RING_STEP_HEADER_WRITTEN, /* headers written, head not yet advanced */
    RING_STEP_HEAD_ADVANCED,  /* head advanced, lock still held */
};

/*
 * Called at each enum ring_step. The library's definition is a weak no-op; a test binary
 * defines its own to stop a producer mid-reservation.
 */
void ring_test_hook(enum ring_step step);

#endif
