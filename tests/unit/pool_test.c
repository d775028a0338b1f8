/* pool_test.c - the fixed-size object pool behind struct conn. */
#include "core/pool.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

Test(pool, objects_are_zeroed_aligned_distinct_and_reused)
{
    struct pool p;
    pool_init(&p, 100, 4096);
    cr_assert_eq(p.obj_size, 112);
    cr_assert_eq(p.per_chunk, (4096 - 64) / 112);
    enum { N = 1000 };
    static uint8_t *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = pool_alloc(&p);
        cr_assert_not_null(objs[i]);
        cr_assert_eq((uintptr_t)objs[i] % 16, 0);
        for (size_t k = 0; k < 100; k++)
            cr_assert_eq(objs[i][k], 0);
        memset(objs[i], 0xA5, 100);
    }
    cr_assert_eq(p.in_use, N);
    cr_assert_eq(p.num_chunks, (N + p.per_chunk - 1) / p.per_chunk);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N && j < i + 40; j++)
            cr_assert(objs[i] + 112 <= objs[j] || objs[j] + 112 <= objs[i]);
    for (int i = 0; i < N; i += 2)
        pool_free(&p, objs[i]);
    cr_assert_eq(p.in_use, N / 2);
    size_t chunks = p.num_chunks;
    for (int i = 0; i < N; i += 2) {
        uint8_t *o = pool_alloc(&p);
        cr_assert_not_null(o);
        for (size_t k = 0; k < 100; k++)
            cr_assert_eq(o[k], 0, "a reused object is zeroed");
    }
    cr_assert_eq(p.num_chunks, chunks, "freed objects are used before a new chunk");
    pool_fini(&p);
    cr_assert_eq(p.num_chunks, 0);
    cr_assert_eq(p.in_use, 0);
}

Test(pool, objects_of_whole_cache_lines_are_line_aligned)
{
    struct pool p;
    pool_init(&p, 128, 8192);
    for (int i = 0; i < 200; i++)
        cr_assert_eq((uintptr_t)pool_alloc(&p) % 64, 0);
    pool_fini(&p);
}

Test(pool, an_object_bigger_than_the_chunk_size_still_fits)
{
    struct pool p;
    pool_init(&p, 10000, 1);
    cr_assert_geq(p.per_chunk, 1);
    void *a = pool_alloc(&p), *b = pool_alloc(&p);
    cr_assert(a && b && a != b);
    pool_free(&p, a);
    pool_free(&p, b);
    pool_fini(&p);
}
