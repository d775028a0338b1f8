/* strmap_test.c - the process-local string map. */
#include "core/strmap.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

Test(strmap, puts_gets_and_deletes_many_keys)
{
    struct strmap m;
    strmap_init(&m);
    static int vals[5000];
    char key[32];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "key-%d", i);
        cr_assert_eq(strmap_put(&m, key, (size_t)n, &vals[i]), 0);
    }
    cr_assert_eq(m.count, 5000);
    /* delete every third key, in an order that exercises backward shifts */
    for (int i = 0; i < 5000; i += 3) {
        int n = snprintf(key, sizeof(key), "key-%d", i);
        cr_assert_eq(strmap_del(&m, key, (size_t)n), &vals[i]);
        cr_assert_null(strmap_del(&m, key, (size_t)n));
    }
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "key-%d", i);
        void *v = strmap_get(&m, key, (size_t)n);
        if (i % 3 == 0)
            cr_assert_null(v, "key %d should be gone", i);
        else
            cr_assert_eq(v, &vals[i], "key %d lost", i);
    }
    strmap_fini(&m);
}

Test(strmap, replaces_value_of_existing_key_and_handles_binary_keys)
{
    struct strmap m;
    strmap_init(&m);
    int a, b;
    cr_assert_eq(strmap_put(&m, "a\0b", 3, &a), 0);
    cr_assert_eq(strmap_put(&m, "a\0b", 3, &b), 0);
    cr_assert_eq(m.count, 1);
    cr_assert_eq(strmap_get(&m, "a\0b", 3), &b);
    cr_assert_null(strmap_get(&m, "a", 1));
    cr_assert_null(strmap_get(&m, "", 0));
    strmap_fini(&m);
}
