/*
 * pool.h - a pool of fixed-size objects for one process (one worker's connections).
 *
 * Objects are carved from chunks mapped with mmap and kept on a free list, so an object
 * costs its size rounded up to 16 bytes and nothing else: no allocator header, no
 * fragmentation between objects of other sizes. Objects of a multiple of 64 bytes are
 * cache-line aligned. Chunks stay mapped until pool_fini();
 * a page of a chunk is touched only when an object in it is first handed out.
 */
#ifndef WSD_CORE_POOL_H
#define WSD_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct pool_chunk;

struct pool {
    size_t obj_size;         /* rounded up to 16 */
    size_t per_chunk;        /* objects in one chunk */
    void *free;              /* free list threaded through freed objects */
    struct pool_chunk *chunks;
    uint8_t *fresh;          /* next never-used object of the newest chunk */
    uint8_t *fresh_end;
    size_t in_use;
    size_t num_chunks;
};

/* obj_size > 0; chunk_bytes is rounded up to whole pages and holds at least one object. */
void pool_init(struct pool *p, size_t obj_size, size_t chunk_bytes);
/* Unmaps every chunk (objects still in use become invalid). */
void pool_fini(struct pool *p);

/* Returns a zeroed object, or NULL when no memory can be mapped. */
void *pool_alloc(struct pool *p);
/* Returns obj (from this pool) to the free list. */
void pool_free(struct pool *p, void *obj);

#endif
