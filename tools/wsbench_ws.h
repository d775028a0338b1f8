/*
 * wsbench_ws.h - the client side of WebSocket for wsbench: URL parsing, the opening
 * handshake request and the check of its 101 answer, masked frame encoding, a zero-copy
 * reader of (unmasked) server frames, HS256 token minting and the few JSON probes the
 * load modes need. Pure code apart from getrandom() for keys; nothing here blocks.
 */
#ifndef WSD_TOOLS_WSBENCH_WS_H
#define WSD_TOOLS_WSBENCH_WS_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSBENCH_WS_KEY_LEN 24
#define WSBENCH_WS_ACCEPT_LEN 28
#define WSBENCH_WS_MAX_HDR 14

struct wsbench_url {
    char host[256];
    uint16_t port;
    bool tls; /* wss:// */
    char target[1024]; /* path and optional ?query, always starting with '/' */
};

/*
 * Parses "ws://HOST[:PORT][/PATH[?QUERY]]" (port 80 by default); "tcp://HOST:PORT" is
 * accepted too (target "/"). Rejects wss:// (no TLS here), a missing host, a bad port and
 * parts that do not fit. Returns 0 or WSD_EINVAL.
 */
int wsbench_ws_parse_url(const char *url, struct wsbench_url *u);

/* Fills key with a random Sec-WebSocket-Key (24 characters and a NUL). */
void wsbench_ws_make_key(char key[WSBENCH_WS_KEY_LEN + 1]);

/* Computes the Sec-WebSocket-Accept expected for key (28 characters and a NUL). */
void wsbench_ws_accept(const char *key, char out[WSBENCH_WS_ACCEPT_LEN + 1]);

/*
 * Writes the upgrade request for u with key, adding "Authorization: Bearer token" when
 * token is not NULL. Returns its length, or WSD_ETOOBIG when cap is too small.
 */
int wsbench_ws_request(char *out, size_t cap, const struct wsbench_url *u, const char *key,
                       const char *token);

/*
 * Checks the server's answer to the upgrade in buf[0..len): returns the length of the
 * response head when it is a complete "101" with the expected Sec-WebSocket-Accept;
 * WSD_EAGAIN while the head is incomplete (and shorter than 8 KiB); WSD_EPROTO for any
 * other status (*status receives it) or a wrong or missing accept value; WSD_ETOOBIG
 * for a head of 8 KiB or more.
 */
int wsbench_ws_check_response(const char *buf, size_t len, const char *accept, int *status);

/*
 * Encodes one final, masked frame (FIN set) into out, which must have room for
 * len + WSBENCH_WS_MAX_HDR bytes: header, mask key, then payload masked with key.
 * Returns the frame length.
 */
size_t wsbench_ws_encode(uint8_t *out, uint8_t opcode, const void *payload, size_t len,
                         const uint8_t key[4]);

/* Appends a masked frame to b. Returns 0 or WSD_ENOMEM. */
int wsbench_ws_append(struct buf *b, uint8_t opcode, const void *payload, size_t len,
                      const uint8_t key[4]);

enum wsbench_rx_type {
    WSBENCH_RX_NONE = 0, /* bytes consumed, no complete event yet */
    WSBENCH_RX_MESSAGE,  /* a whole data message */
    WSBENCH_RX_CONTROL,  /* a whole ping, pong or close frame */
    WSBENCH_RX_ERROR,    /* the server broke framing; close the connection */
};

struct wsbench_rx_event {
    enum wsbench_rx_type type;
    uint8_t opcode;      /* MESSAGE: text or binary; CONTROL: ping, pong or close */
    const uint8_t *data; /* MESSAGE with keep, CONTROL: payload view, valid until the next
                            feed; MESSAGE without keep: NULL */
    size_t len;          /* payload length of the message or control frame */
    const char *error;   /* ERROR: static description */
};

struct wsbench_rx {
    bool keep;        /* hand out message payloads (else they are only counted) */
    size_t max_keep;  /* limit for a kept message; 0 = 16 MiB */
    /* private state */
    uint8_t hdr[WSBENCH_WS_MAX_HDR];
    uint8_t hdr_have;
    uint8_t opcode;   /* current frame */
    bool fin;
    bool in_msg;      /* a data message is open (between its first and last frame) */
    bool failed;
    uint8_t msg_opcode;
    uint8_t ctl_len;
    uint64_t left;    /* payload bytes of the current frame still to come */
    uint64_t msg_len;
    struct buf msg;   /* kept payload of a message split over frames or reads */
    uint8_t ctl[125];
};

/* Starts a reader; keep chooses whether message payloads are handed out. */
void wsbench_rx_init(struct wsbench_rx *rx, bool keep);
/* Releases what the reader holds. */
void wsbench_rx_fini(struct wsbench_rx *rx);

/*
 * Feeds server bytes p[0..len): consumes up to and including the next event, stores it in
 * ev and returns the number of bytes consumed; call again with the rest. A message that
 * arrives in one frame inside p is handed out as a view into p (no copy); otherwise its
 * parts are gathered in the reader. Rejects masked server frames, reserved bits and
 * opcodes, bad fragmentation, long or fragmented control frames and kept messages over
 * max_keep (WSBENCH_RX_ERROR; afterwards the reader consumes nothing and repeats it).
 */
size_t wsbench_rx_feed(struct wsbench_rx *rx, const uint8_t *p, size_t len,
                       struct wsbench_rx_event *ev);

enum wsbench_op {
    WSBENCH_OP_OTHER = 0,
    WSBENCH_OP_MSG,
    WSBENCH_OP_REPLY,
    WSBENCH_OP_ERROR,
    WSBENCH_OP_WELCOME,
    WSBENCH_OP_PONG,
};

/* Classifies a JSON envelope by its "op" value; WSBENCH_OP_OTHER when absent or unknown. */
enum wsbench_op wsbench_ws_json_op(const uint8_t *p, size_t len);

/*
 * Finds the member "key" (searching from the "data" member on when there is one, so that
 * the publisher's fields win over the envelope's) and parses its integer value. Returns
 * 0, or WSD_ENOENT when there is no such member with an integer value.
 */
int wsbench_ws_json_int(const uint8_t *p, size_t len, const char *key, bool in_data,
                        int64_t *out);

/*
 * Mints an HS256 JWT for sub with join and pub claims ["*"] and the given exp (seconds
 * since the epoch). The secret is raw bytes, or base64 after a "base64:" prefix, as wsd
 * reads it. Returns the token length, WSD_EINVAL for a bad base64 secret or WSD_ETOOBIG
 * when cap is too small.
 */
int wsbench_ws_jwt(char *out, size_t cap, const char *secret, const char *sub, int64_t exp);

/*
 * Copies the "sub" claim of a JWT (not verified) into out. Returns its length, or
 * WSD_EINVAL when the token has no readable string "sub" that fits cap.
 */
int wsbench_ws_jwt_sub(const char *token, char *out, size_t cap);

#endif
