/*
 * delivery.h - the records that travel through the per-worker inbound rings.
 *
 * A producer (a worker, or the master for system messages and operator actions) writes
 * one record per target worker: a fixed header followed by the variable parts in this
 * order: channel, mid, from, data. The receiving worker encodes the WebSocket frame once
 * per encoding and queues it on every local target connection.
 *
 *   0   type         u16   enum delivery_type (the ring record type)
 *   2   data_enc     u8    encoding of data: 0 JSON, 1 MessagePack
 *   3   flags        u8    DELIVERY_F_*
 *   4   ch_len       u16   channel: group name, user id, or empty for broadcast
 *   6   mid_len      u16
 *   8   from_len     u16
 *   10  close_code   u16   DELIVERY_KICK: the close code
 *   12  data_len     u32
 *   16  offset       u64   offset in the channel; 0 for broadcast
 *   24  ts_ms        i64   acceptance time (wall clock)
 *   32  exclude      u64   connection id that must not receive it (the publisher); 0 none
 *   40  epoch        char[16]  the channel's epoch (not NUL-terminated)
 *   56  ...variable parts
 */
#ifndef WSD_SHM_DELIVERY_H
#define WSD_SHM_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

enum delivery_type {
    DELIVERY_GROUP = 1,     /* a publish to group `channel` */
    DELIVERY_USER = 2,      /* a send to user `channel` (personal channel "@") */
    DELIVERY_BROADCAST = 3, /* to every application connection */
    DELIVERY_KICK_USER = 4, /* close every connection of user `channel` with close_code */
    DELIVERY_PRESENCE_Q = 5, /* who of group `channel` is here? offset = query number,
                                close_code = asking worker, exclude = asking connection */
    DELIVERY_PRESENCE_A = 6, /* answer: offset = query number, close_code = connections,
                                data = the distinct user ids, each ended by a NUL byte */
    DELIVERY_SYSTEM = 7,     /* operator's system message: mid = kind ("all", "group",
                                "user"), channel = target, data = the message data; the
                                receiving worker publishes, sends or broadcasts it */
    DELIVERY_KICK_SESSION = 8, /* close connections attached to session `channel`, except
                                  `exclude`, with close_code (4011: taken over) */
};

#define DELIVERY_F_SYS 0x01 /* a system message: "sys": true, from "" */

struct delivery_hdr {
    uint16_t type;
    uint8_t data_enc;
    uint8_t flags;
    uint16_t ch_len;
    uint16_t mid_len;
    uint16_t from_len;
    uint16_t close_code;
    uint32_t data_len;
    uint64_t offset;
    int64_t ts_ms;
    uint64_t exclude;
    char epoch[16];
};

_Static_assert(sizeof(struct delivery_hdr) == 56, "delivery header layout");
_Static_assert(offsetof(struct delivery_hdr, offset) == 16, "delivery header layout");
_Static_assert(offsetof(struct delivery_hdr, epoch) == 40, "delivery header layout");

/* Views of a record's variable parts (into the ring). */
struct delivery_view {
    const struct delivery_hdr *hdr;
    const char *ch;
    const char *mid;
    const char *from;
    const uint8_t *data;
    size_t len;       /* the whole record */
    uint8_t producer; /* the ring record's producer (set by the consumer) */
};

/*
 * Splits a record of len bytes into its parts. Returns 0, or -1 when the lengths do not
 * add up (a corrupt record is dropped by the caller).
 */
static inline int delivery_view(const void *rec, size_t len, struct delivery_view *v)
{
    if (len < sizeof(struct delivery_hdr))
        return -1;
    const struct delivery_hdr *h = rec;
    size_t need = sizeof(*h) + (size_t)h->ch_len + h->mid_len + h->from_len + h->data_len;
    if (need != len)
        return -1;
    const char *p = (const char *)rec + sizeof(*h);
    v->hdr = h;
    v->ch = p;
    v->mid = p + h->ch_len;
    v->from = v->mid + h->mid_len;
    v->data = (const uint8_t *)v->from + h->from_len;
    v->len = len;
    return 0;
}

#endif
