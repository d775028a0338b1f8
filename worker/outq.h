/*
 * outq.h - a connection's output queue: references to blocks (shared, reference-counted
 * frames) with a read offset into the first, flushed with writev.
 *
 * The common case never queues: outq_send() first writes straight to the socket and only
 * copies what the kernel did not take. Entries live in a small ring that grows by
 * doubling; once the queue empties a ring of up to OUTQ_KEEP entries stays for the next
 * burst (fan-out deliveries then allocate nothing), a bigger one is freed. A connection
 * that never queued holds no output memory: 16 bytes in struct conn.
 *
 * Every write takes the connection's TLS session (worker/tls.h), NULL on plain sockets:
 * the queue then holds plaintext and the session encrypts as it writes. A record the
 * socket did not take stays in the session, and the bytes it came from stay at the head
 * of the queue until it has gone (tls_write() wants them offered again).
 */
#ifndef WSD_WORKER_OUTQ_H
#define WSD_WORKER_OUTQ_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct ssl_st;

struct outq_ent {
    struct block *blk;
    uint32_t off;
};

/* The entries, in one allocation with their ring indexes. */
struct outq_ring {
    uint32_t head;
    uint32_t count;
    uint32_t cap; /* power of two */
    struct outq_ent ents[];
};

struct outq {
    struct outq_ring *ring; /* NULL while nothing is or was recently queued */
    uint64_t bytes;         /* bytes queued and not yet written */
};

void outq_init(struct outq *q);
/* Drops every reference and frees the ring. */
void outq_fini(struct outq *q);

static inline bool outq_is_empty(const struct outq *q)
{
    return q->ring == NULL || q->ring->count == 0;
}

/*
 * Sends the concatenation of iov[0..iovcnt) on fd: written directly when the queue is
 * empty; whatever is left (or everything, when the queue already holds data) is copied
 * into one new block and queued. Returns the number of bytes written now (>= 0),
 * WSD_ENOMEM, or WSD_EIO when the socket failed (errno set; the connection is dead).
 */
int64_t outq_send(struct outq *q, int fd, struct ssl_st *tls, const struct iovec *iov,
                  int iovcnt);

/* Queues a reference to blk (taking one) without writing. Returns 0 or WSD_ENOMEM. */
int outq_push_block(struct outq *q, struct block *blk);

/*
 * Writes queued data with writev until the queue is empty, the socket would block, or
 * budget bytes were written. Returns bytes written (>= 0) or WSD_EIO.
 */
int64_t outq_flush(struct outq *q, int fd, struct ssl_st *tls, size_t budget);

#endif
