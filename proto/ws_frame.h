/*
 * ws_frame.h - RFC 6455 section 5 framing: an incremental reader that turns the bytes a
 * client sends into message events, and the frame header encoder.
 *
 * The reader is a state machine over a byte stream. It unmasks payload in place in the
 * caller's buffer and hands back views into it; it never allocates. It enforces every
 * framing MUST of the RFC for a server endpoint: masking, reserved bits (RSV1 only when
 * permessage-deflate was negotiated, and only on the first frame of a data message),
 * reserved opcodes, control frames of at most 125 bytes that are never fragmented,
 * continuation rules, close payload rules, and max_message_size against each frame's
 * declared length and the message's accumulated length. For uncompressed text messages
 * it validates UTF-8 as the bytes arrive (fail fast). Compressed text is validated by the
 * caller after inflating (the reader cannot see the text).
 */
#ifndef WSD_PROTO_WS_FRAME_H
#define WSD_PROTO_WS_FRAME_H

#include "proto/utf8.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close status codes used by the framing layer (RFC 6455 section 7.4.1). */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never sent: "close frame had no code" */
    WS_CLOSE_ABNORMAL = 1006,  /* never sent: "connection dropped" */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

enum ws_event_type {
    WS_EV_NONE = 0,    /* consumed bytes, nothing to report yet (need more input) */
    WS_EV_DATA,        /* a chunk of a data message's payload (may be empty) */
    WS_EV_CONTROL,     /* a whole ping, pong or close frame */
    WS_EV_ERROR,       /* protocol violation: close with ev->close_code */
};

struct ws_event {
    enum ws_event_type type;
    uint8_t opcode;       /* DATA: TEXT or BINARY (the message's); CONTROL: PING/PONG/CLOSE */
    bool compressed;      /* DATA: the message has RSV1 set (permessage-deflate) */
    bool first;           /* DATA: first chunk of the message */
    bool fin;             /* DATA: last chunk of the message */
    const uint8_t *data;  /* DATA, CONTROL: unmasked payload view (into the caller's
                             buffer, or into the reader for a control frame) */
    size_t len;
    uint16_t close_code;  /* CONTROL close: received code (1005 if none);
                             ERROR: the code to close with */
    const uint8_t *reason; /* CONTROL close: reason bytes (valid UTF-8), may be empty */
    size_t reason_len;
    const char *error;    /* ERROR: short static description for logs */
};

struct ws_reader {
    /* configuration, set before the first feed */
    uint64_t max_message_size; /* 0 = unlimited */
    bool allow_rsv1;           /* permessage-deflate negotiated */
    bool require_mask;         /* server side: true */

    /* private state */
    uint8_t state;
    uint8_t hdr[14];
    uint8_t hdr_have;
    uint8_t hdr_need;
    uint8_t frame_opcode;
    bool frame_fin;
    bool frame_rsv1;
    uint8_t mask[4];
    bool masked;
    uint64_t frame_left;       /* payload bytes of the current frame still to come */
    uint64_t frame_pos;        /* payload bytes of the current frame already seen */
    bool in_message;           /* a fragmented data message is open */
    uint8_t msg_opcode;
    bool msg_compressed;
    bool msg_first_pending;    /* next DATA event is the message's first */
    uint64_t msg_len;          /* payload bytes of the open message so far */
    struct utf8_state utf8;
    uint8_t ctl[125];          /* control frame payload being gathered */
    uint8_t ctl_len;
    bool failed;
    uint16_t fail_code;        /* close code reported again after a failure */
    const char *fail_error;
};

/* Resets the reader to the start of a stream; configuration fields are kept. */
void ws_reader_init(struct ws_reader *r, uint64_t max_message_size, bool allow_rsv1,
                    bool require_mask);

/*
 * True when the reader is between frames with no fragmented message open and has not
 * failed: its state is then the same as a fresh reader's with the same configuration,
 * so one reader can serve many streams (see worker/conn.h) and is copied only when a
 * read ends inside a frame.
 */
bool ws_reader_is_idle(const struct ws_reader *r);

/*
 * Feeds up to len bytes of buf (mutable: payload is unmasked in place). Consumes bytes up
 * to and including the next event and stores it in ev; returns the number of bytes
 * consumed (0 is possible only when len is 0 or the reader has failed). Call again with
 * the rest of the buffer until it is used up. ev->type is WS_EV_NONE when the bytes were
 * consumed without a complete event (a partial header or a partial control frame is held
 * in the reader, so the caller may discard consumed bytes). Bytes not consumed are left
 * as they were (still masked).
 *
 * Every frame produces at least one event: an empty data frame gives a DATA event of
 * length 0. With require_mask false, masked and unmasked frames are both accepted.
 * max_message_size applies to data frames only (control frames are bounded at 125).
 *
 * An error is detected at one byte of the stream, the same however the input is split:
 * every payload byte before it has been delivered in DATA events, and the ERROR event
 * consumes that byte. For a text message whose last frame ends inside a UTF-8 sequence,
 * that byte is the message's last byte. After WS_EV_ERROR the reader stays failed: every
 * later call consumes nothing and reports the same error again.
 */
size_t ws_reader_feed(struct ws_reader *r, uint8_t *buf, size_t len, struct ws_event *ev);

/* Unmasks/masks len bytes in place; offset is the payload position of p[0]. */
void ws_mask(uint8_t *p, size_t len, const uint8_t key[4], uint64_t offset);

/*
 * Encodes a frame header into out (room for 14 bytes) and returns its length: FIN and
 * RSV1 as given, opcode, the shortest length form, and a mask key when mask is not NULL
 * (client side; the caller masks the payload). Servers pass NULL. len must be below 2^63.
 */
size_t ws_frame_header(uint8_t out[14], uint8_t opcode, bool fin, bool rsv1, uint64_t len,
                       const uint8_t *mask);

/* True for a close code that may appear on the wire (RFC 6455 7.4.1 and 7.4.2). */
bool ws_close_code_is_valid(uint32_t code);

/*
 * Builds a close frame payload (code, then reason truncated at a UTF-8 boundary to fit
 * 125 bytes) into out[125]. Returns its length. The reason (NULL for none) is cut before
 * any byte that is not valid UTF-8. Code 1005 (or 0) gives an empty payload: a close
 * frame without a status code.
 */
size_t ws_close_payload(uint8_t out[125], uint16_t code, const char *reason);

#endif
