/*
 * strmap.h - a process-local hash map from byte strings to pointers (a worker's index of
 * its own groups and users). Open addressing with linear probing and backward-shift
 * deletion; keys are copied into the map.
 */
#ifndef WSD_CORE_STRMAP_H
#define WSD_CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
    uint64_t hash; /* 0 = empty */
    char *key;
    size_t key_len;
    void *value;
};

struct strmap {
    struct strmap_slot *slots;
    size_t cap;    /* power of two, or 0 */
    size_t count;
};

void strmap_init(struct strmap *m);
/* Frees the map and its keys (not the values). */
void strmap_fini(struct strmap *m);

/* The value under key, or NULL. */
void *strmap_get(const struct strmap *m, const void *key, size_t len);

/* Sets key to value (value must not be NULL). Returns 0 or WSD_ENOMEM. */
int strmap_put(struct strmap *m, const void *key, size_t len, void *value);

/* Removes key; returns its value or NULL when absent. */
void *strmap_del(struct strmap *m, const void *key, size_t len);

/* Calls fn for every entry; fn must not change the map. */
typedef void (*strmap_fn)(void *ctx, const char *key, size_t len, void *value);
void strmap_foreach(const struct strmap *m, strmap_fn fn, void *ctx);

#endif
