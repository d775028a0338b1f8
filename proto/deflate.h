/*
 * deflate.h - permessage-deflate (RFC 7692) for the server side: offer negotiation and
 * per-message compression and decompression with zlib.
 *
 * Inflation is bounded: the caller says how many output bytes it accepts in all, and a
 * message that would inflate past it fails with WSD_ETOOBIG (close 1009) without ever
 * allocating more than that bound. No I/O; zlib only.
 */
#ifndef WSD_PROTO_DEFLATE_H
#define WSD_PROTO_DEFLATE_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* What the server is willing to do (from the config). */
struct pmd_config {
    bool enabled;
    int level;                 /* zlib level 0..9 for outgoing messages */
    size_t min_size;           /* outgoing messages shorter than this are sent uncompressed */
    int max_window_bits;       /* largest server window the server will use, 9..15 */
    bool server_no_context_takeover; /* always reset the server's compressor per message */
    bool client_no_context_takeover; /* ask clients to reset theirs (saves our memory) */
    int mem_level;             /* zlib memLevel for the compressor, 1..9 */
};

/* What was agreed for one connection. */
struct pmd_params {
    bool server_no_context_takeover;
    bool client_no_context_takeover;
    int server_max_window_bits; /* 8..15: the window the server compresses with */
    int client_max_window_bits; /* 8..15: the window the client compresses with */
    bool client_max_window_bits_sent; /* answer names client_max_window_bits */
    bool server_max_window_bits_sent; /* answer names server_max_window_bits */
};

/*
 * Negotiates from the values of every Sec-WebSocket-Extensions header of the request
 * (values[i] of lens[i] bytes, each a comma-separated list of offers). Takes the first
 * permessage-deflate offer the server can honour under cfg, per RFC 7692 section 7.1:
 * unknown parameters, repeated parameters or invalid values make that offer unacceptable
 * (the next one is tried); server_max_window_bits below what zlib can produce (8) makes
 * it unacceptable too. Returns 1 and fills out when an offer was accepted, 0 when none
 * was (no extension in the response), WSD_EINVAL when the header cannot be parsed at all
 * (the handshake fails with 400).
 */
int pmd_negotiate(const char *const *values, const size_t *lens, size_t n,
                  const struct pmd_config *cfg, struct pmd_params *out);

/* Writes the Sec-WebSocket-Extensions response value for p. Returns length or
 * WSD_ETOOBIG. */
int pmd_response_value(const struct pmd_params *p, char *out, size_t cap);

/* One connection's compression state. Streams are created lazily on first use. */
struct pmd_stream {
    struct pmd_params params;
    int level;
    int mem_level;
    bool inflate_ready;
    bool deflate_ready;
    z_stream inflater;
    z_stream deflater;
};

void pmd_stream_init(struct pmd_stream *s, const struct pmd_params *p, int level,
                     int mem_level);
void pmd_stream_fini(struct pmd_stream *s);

/*
 * Inflates one chunk of a compressed message's payload and appends the output to out.
 * Call with fin set on the message's last chunk (the 0x00 0x00 0xff 0xff tail is added
 * then). limit is the total decompressed size allowed for the whole message: when out
 * would pass it, returns WSD_ETOOBIG. Returns 0, WSD_EINVAL on corrupt data, WSD_ENOMEM.
 * On fin the context is reset when client_no_context_takeover was agreed.
 */
int pmd_inflate(struct pmd_stream *s, const uint8_t *in, size_t len, bool fin,
                struct buf *out, size_t limit);

/*
 * Compresses one whole message into out (appending), without the 0x00 0x00 0xff 0xff tail
 * (RFC 7692 7.2.1). Resets the context afterwards when server_no_context_takeover was
 * agreed. Returns 0 or WSD_ENOMEM.
 */
int pmd_deflate(struct pmd_stream *s, const uint8_t *in, size_t len, struct buf *out);

#endif
