/* pool.c - fixed-size objects from mmap'd chunks with a free list. */
#include "core/pool.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Under AddressSanitizer a freed object is poisoned, so a use after free still reports. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct pool_chunk {
    struct pool_chunk *next;
    size_t bytes;
};

/* The chunk header takes the first cache line; objects follow, so an object whose size
   is a multiple of 64 starts on a line of its own. */
#define POOL_HDR 64
_Static_assert(sizeof(struct pool_chunk) <= POOL_HDR, "chunk header fits");

void pool_init(struct pool *p, size_t obj_size, size_t chunk_bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    memset(p, 0, sizeof(*p));
    p->obj_size = (obj_size + 15) & ~(size_t)15;
    if (chunk_bytes < POOL_HDR + p->obj_size)
        chunk_bytes = POOL_HDR + p->obj_size;
    chunk_bytes = (chunk_bytes + page - 1) / page * page;
    p->per_chunk = (chunk_bytes - POOL_HDR) / p->obj_size;
}

void pool_fini(struct pool *p)
{
    while (p->chunks) {
        struct pool_chunk *c = p->chunks;
        POOL_UNPOISON(c, c->bytes);
        p->chunks = c->next;
        munmap(c, c->bytes);
    }
    size_t obj = p->obj_size, per = p->per_chunk;
    memset(p, 0, sizeof(*p));
    p->obj_size = obj;
    p->per_chunk = per;
}

static int pool_grow(struct pool *p)
{
    size_t bytes = POOL_HDR + p->per_chunk * p->obj_size;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    struct pool_chunk *c = m;
    c->bytes = bytes;
    c->next = p->chunks;
    p->chunks = c;
    p->fresh = (uint8_t *)m + POOL_HDR;
    p->fresh_end = p->fresh + p->per_chunk * p->obj_size;
    p->num_chunks++;
    return 0;
}

void *pool_alloc(struct pool *p)
{
    void *obj;
    if (p->free != NULL) {
        obj = p->free;
        POOL_UNPOISON(obj, p->obj_size);
        memcpy(&p->free, obj, sizeof(void *));
        memset(obj, 0, p->obj_size);
    } else {
        if (p->fresh == p->fresh_end && pool_grow(p) < 0)
            return NULL;
        obj = p->fresh; /* fresh anonymous memory is already zero */
        p->fresh += p->obj_size;
    }
    p->in_use++;
    return obj;
}

void pool_free(struct pool *p, void *obj)
{
    memcpy(obj, &p->free, sizeof(void *));
    p->free = obj;
    p->in_use--;
    POOL_POISON(obj, p->obj_size);
}
