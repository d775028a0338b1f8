/* outq.c - output queues of blocks, written with writev. */
#include "worker/outq.h"
#include "core/wsd.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OUTQ_IOV_MAX 64
#define OUTQ_JOIN_MAX 2048 /* two-part writes up to this size are joined into one send */
#define OUTQ_KEEP 8 /* entries kept allocated between bursts (128 bytes) */

void outq_init(struct outq *q)
{
    memset(q, 0, sizeof(*q));
}

void outq_fini(struct outq *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        block_unref(q->ents[(q->head + i) & (q->cap - 1)].blk);
    free(q->ents);
    outq_init(q);
}

static int outq_push(struct outq *q, struct block *blk, uint32_t off)
{
    if (q->count == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 4;
        struct outq_ent *ents = malloc(sizeof(*ents) * cap);
        if (ents == NULL)
            return WSD_ENOMEM;
        for (uint32_t i = 0; i < q->count; i++)
            ents[i] = q->ents[(q->head + i) & (q->cap - 1)];
        free(q->ents);
        q->ents = ents;
        q->cap = cap;
        q->head = 0;
    }
    q->ents[(q->head + q->count) & (q->cap - 1)] = (struct outq_ent){blk, off};
    q->count++;
    q->bytes += blk->len - off;
    return 0;
}

/* Writes iov once, retrying on EINTR. Returns bytes written, 0 when it would block. */
static int64_t write_iov(int fd, const struct iovec *iov, int iovcnt)
{
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

int64_t outq_send(struct outq *q, int fd, const struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    int64_t written = 0;
    if (q->count == 0) {
        written = write_iov(fd, iov, iovcnt);
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

int64_t outq_send_block(struct outq *q, int fd, struct block *blk)
{
    int64_t written = 0;
    if (q->count == 0) {
        struct iovec iov = {blk->data, blk->len};
        written = write_iov(fd, &iov, 1);
        if (written < 0 || (uint64_t)written == blk->len)
            return written;
    }
    int rc = outq_push(q, block_ref(blk), (uint32_t)written);
    if (rc < 0) {
        block_unref(blk);
        return rc;
    }
    return written;
}

/* Drops n written bytes from the front of the queue. */
static void outq_advance(struct outq *q, size_t n)
{
    q->bytes -= n;
    while (n > 0) {
        struct outq_ent *e = &q->ents[q->head];
        size_t left = e->blk->len - e->off;
        if (n < left) {
            e->off += (uint32_t)n;
            return;
        }
        n -= left;
        block_unref(e->blk);
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
    }
}

int64_t outq_flush(struct outq *q, int fd, size_t budget)
{
    int64_t total = 0;
    while (q->count > 0 && (size_t)total < budget) {
        struct iovec iov[OUTQ_IOV_MAX];
        int n = 0;
        size_t want = 0;
        for (uint32_t i = 0; i < q->count && n < OUTQ_IOV_MAX; i++) {
            struct outq_ent *e = &q->ents[(q->head + i) & (q->cap - 1)];
            iov[n].iov_base = e->blk->data + e->off;
            iov[n].iov_len = e->blk->len - e->off;
            want += iov[n].iov_len;
            n++;
        }
        int64_t w = write_iov(fd, iov, n);
        if (w < 0)
            return w;
        if (w == 0)
            break;
        outq_advance(q, (size_t)w);
        total += w;
        if ((size_t)w < want)
            break;
    }
    if (q->count == 0 && q->cap > OUTQ_KEEP) {
        free(q->ents); /* a burst grew it: an idle connection keeps at most OUTQ_KEEP */
        outq_init(q);
    }
    return total;
}
