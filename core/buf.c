/* buf.c - growable byte buffers and reference-counted blocks. */
#include "core/buf.h"
#include "core/wsd.h"

#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_fini(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return WSD_ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL)
        return WSD_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t len)
{
    if (len == 0)
        return 0;
    int rc = buf_reserve(b, len);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

struct block *block_new(size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    struct block *b = malloc(sizeof(*b) + len);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)len;
    return b;
}

void block_unref(struct block *b)
{
    if (--b->refs == 0)
        free(b);
}
