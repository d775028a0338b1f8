/* outq.c - output queues of blocks, written with writev. */
#include "worker/outq.h"
#include "core/wsd.h"
#include "worker/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OUTQ_IOV_MAX 64
#define OUTQ_JOIN_MAX 2048 /* two-part writes up to this size are joined into one send */
#define OUTQ_KEEP 4 /* entries kept allocated between bursts (80 bytes with the indexes) */

void outq_init(struct outq *q)
{
    memset(q, 0, sizeof(*q));
}

void outq_fini(struct outq *q)
{
    struct outq_ring *r = q->ring;
    if (r != NULL) {
        for (uint32_t i = 0; i < r->count; i++)
            block_unref(r->ents[(r->head + i) & (r->cap - 1)].blk);
        free(r);
    }
    outq_init(q);
}

static int outq_push(struct outq *q, struct block *blk, uint32_t off)
{
    struct outq_ring *r = q->ring;
    if (r == NULL || r->count == r->cap) {
        uint32_t cap = r ? r->cap * 2 : OUTQ_KEEP;
        struct outq_ring *n = malloc(sizeof(*n) + sizeof(n->ents[0]) * cap);
        if (n == NULL)
            return WSD_ENOMEM;
        n->head = 0;
        n->count = r ? r->count : 0;
        n->cap = cap;
        for (uint32_t i = 0; i < n->count; i++)
            n->ents[i] = r->ents[(r->head + i) & (r->cap - 1)];
        free(r);
        q->ring = r = n;
    }
    r->ents[(r->head + r->count) & (r->cap - 1)] = (struct outq_ent){blk, off};
    r->count++;
    q->bytes += blk->len - off;
    return 0;
}

/* Writes iov once (through the TLS session when there is one), retrying on EINTR.
 * Returns bytes written, 0 when it would block. */
static int64_t write_iov(int fd, struct ssl_st *tls, const struct iovec *iov, int iovcnt)
{
    if (tls != NULL)
        return tls_write(tls, iov, iovcnt);
    /* A small frame in two parts is joined: send() costs less than sendmsg(). */
    uint8_t small[OUTQ_JOIN_MAX];
    struct iovec one;
    if (iovcnt == 2 && iov[0].iov_len + iov[1].iov_len <= sizeof(small)) {
        memcpy(small, iov[0].iov_base, iov[0].iov_len);
        memcpy(small + iov[0].iov_len, iov[1].iov_base, iov[1].iov_len);
        one = (struct iovec){small, iov[0].iov_len + iov[1].iov_len};
        iov = &one;
        iovcnt = 1;
    }
    for (;;) {
        ssize_t n;
        if (iovcnt == 1) {
            n = send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
            n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return WSD_EIO;
    }
}

int64_t outq_send(struct outq *q, int fd, struct ssl_st *tls, const struct iovec *iov,
                  int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    int64_t written = 0;
    if (outq_is_empty(q)) {
        written = write_iov(fd, tls, iov, iovcnt);
        if (written < 0 || (size_t)written == total)
            return written;
    }
    struct block *blk = block_new(total - (size_t)written);
    if (blk == NULL)
        return WSD_ENOMEM;
    size_t skip = (size_t)written, pos = 0;
    for (int i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len;
        const uint8_t *p = iov[i].iov_base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(blk->data + pos, p + skip, len - skip);
        pos += len - skip;
        skip = 0;
    }
    int rc = outq_push(q, blk, 0);
    if (rc < 0) {
        block_unref(blk);
        return rc;
    }
    return written;
}

int outq_push_block(struct outq *q, struct block *blk)
{
    int rc = outq_push(q, block_ref(blk), 0);
    if (rc < 0)
        block_unref(blk);
    return rc;
}

/* Drops n written bytes from the front of the queue. */
static void outq_advance(struct outq *q, size_t n)
{
    struct outq_ring *r = q->ring;
    q->bytes -= n;
    while (n > 0) {
        struct outq_ent *e = &r->ents[r->head];
        size_t left = e->blk->len - e->off;
        if (n < left) {
            e->off += (uint32_t)n;
            return;
        }
        n -= left;
        block_unref(e->blk);
        r->head = (r->head + 1) & (r->cap - 1);
        r->count--;
    }
}

int64_t outq_flush(struct outq *q, int fd, struct ssl_st *tls, size_t budget)
{
    struct outq_ring *r = q->ring;
    int64_t total = 0;
    while (r != NULL && r->count > 0 && (size_t)total < budget) {
        struct iovec iov[OUTQ_IOV_MAX];
        int n = 0;
        size_t want = 0;
        for (uint32_t i = 0; i < r->count && n < OUTQ_IOV_MAX; i++) {
            struct outq_ent *e = &r->ents[(r->head + i) & (r->cap - 1)];
            iov[n].iov_base = e->blk->data + e->off;
            iov[n].iov_len = e->blk->len - e->off;
            want += iov[n].iov_len;
            n++;
        }
        int64_t w = write_iov(fd, tls, iov, n);
        if (w < 0)
            return w;
        if (w == 0)
            break;
        outq_advance(q, (size_t)w);
        total += w;
        if ((size_t)w < want)
            break;
    }
    if (r != NULL && r->count == 0 && r->cap > OUTQ_KEEP) {
        free(r); /* a burst grew it: an idle connection keeps at most OUTQ_KEEP */
        q->ring = NULL;
    }
    return total;
}
