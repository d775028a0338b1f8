/* strmap.c - process-local string -> pointer hash map. */
#include "core/strmap.h"
#include "core/wsd.h"

#include <stdlib.h>
#include <string.h>

void strmap_init(struct strmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void strmap_fini(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].hash)
            free(m->slots[i].key);
    }
    free(m->slots);
    strmap_init(m);
}

static uint64_t strmap_hash(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h ? h : 1;
}

static size_t strmap_find(const struct strmap *m, const void *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct strmap_slot *s = &m->slots[i];
        if (s->hash == 0)
            return i;
        if (s->hash == h && s->key_len == len && memcmp(s->key, key, len) == 0)
            return i;
    }
}

void *strmap_get(const struct strmap *m, const void *key, size_t len)
{
    if (m->count == 0)
        return NULL;
    uint64_t h = strmap_hash(key, len);
    const struct strmap_slot *s = &m->slots[strmap_find(m, key, len, h)];
    return s->hash ? s->value : NULL;
}

static int strmap_grow(struct strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    struct strmap_slot *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return WSD_ENOMEM;
    struct strmap old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        struct strmap_slot *s = &old.slots[i];
        if (s->hash)
            m->slots[strmap_find(m, s->key, s->key_len, s->hash)] = *s;
    }
    free(old.slots);
    return 0;
}

int strmap_put(struct strmap *m, const void *key, size_t len, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3 && strmap_grow(m) < 0)
        return WSD_ENOMEM;
    uint64_t h = strmap_hash(key, len);
    struct strmap_slot *s = &m->slots[strmap_find(m, key, len, h)];
    if (s->hash) {
        s->value = value;
        return 0;
    }
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return WSD_ENOMEM;
    memcpy(copy, key, len);
    *s = (struct strmap_slot){h, copy, len, value};
    m->count++;
    return 0;
}

void *strmap_del(struct strmap *m, const void *key, size_t len)
{
    if (m->count == 0)
        return NULL;
    uint64_t h = strmap_hash(key, len);
    size_t mask = m->cap - 1, i = strmap_find(m, key, len, h);
    if (m->slots[i].hash == 0)
        return NULL;
    void *value = m->slots[i].value;
    free(m->slots[i].key);
    m->slots[i] = (struct strmap_slot){0};
    m->count--;
    /* Backward shift: pull later entries of the cluster into the hole. */
    for (size_t j = (i + 1) & mask; m->slots[j].hash; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            m->slots[j] = (struct strmap_slot){0};
            i = j;
        }
    }
    return value;
}

void strmap_foreach(const struct strmap *m, strmap_fn fn, void *ctx)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].hash)
            fn(ctx, m->slots[i].key, m->slots[i].key_len, m->slots[i].value);
    }
}
