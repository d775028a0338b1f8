/*
 * buf.h - a growable byte buffer, and a reference-counted immutable block for output
 * shared by many connections (a fan-out frame is encoded once and queued everywhere).
 */
#ifndef WSD_CORE_BUF_H
#define WSD_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

/* An empty buffer owns no memory; buf_fini() releases it and leaves it empty. */
void buf_init(struct buf *b);
void buf_fini(struct buf *b);

/* Makes room for extra more bytes. Returns 0 or WSD_ENOMEM (the buffer is unchanged). */
int buf_reserve(struct buf *b, size_t extra);

/* Appends len bytes. Returns 0 or WSD_ENOMEM (the buffer is unchanged). */
int buf_append(struct buf *b, const void *p, size_t len);

/* Drops the first n bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/*
 * A block: refs, length and the bytes themselves in one allocation. Created with one
 * reference owned by the caller; each queue that holds it takes a reference.
 */
struct block {
    uint32_t refs;
    uint32_t len;
    uint8_t data[];
};

/* Returns a block of len bytes (uninitialised) with refs == 1, or NULL. */
struct block *block_new(size_t len);
static inline struct block *block_ref(struct block *b)
{
    b->refs++;
    return b;
}
/* Drops one reference; frees the block at zero. */
void block_unref(struct block *b);

#endif
