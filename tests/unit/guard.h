/*
 * guard.h - test inputs that end right before an inaccessible page, so a parser that
 * reads one byte past its input crashes instead of passing by luck.
 */
#ifndef WSD_TESTS_UNIT_GUARD_H
#define WSD_TESTS_UNIT_GUARD_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Copies p to the very end of a page followed by an inaccessible page. */
struct guarded {
    uint8_t *map;
    size_t map_len;
    uint8_t *p;
};

static inline void guarded_init(struct guarded *g, const void *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    g->map_len = pages * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(g->map != MAP_FAILED);
    cr_assert_eq(mprotect(g->map + (pages - 1) * page, page, PROT_NONE), 0);
    g->p = g->map + (pages - 1) * page - len;
    memcpy(g->p, p, len);
}

static inline void guarded_fini(struct guarded *g)
{
    munmap(g->map, g->map_len);
}

#endif
