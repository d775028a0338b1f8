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

/* Longest value pmd_response_value() can write, with its NUL. */
#define PMD_RESPONSE_MAX 160

/* Writes the Sec-WebSocket-Extensions response value for p, NUL-terminated, e.g.
 * "permessage-deflate; server_no_context_takeover; client_max_window_bits=10" (the window
 * parameters only when their _sent flag is set). Returns the length without the NUL, or
 * WSD_ETOOBIG when cap cannot hold it and the NUL (PMD_RESPONSE_MAX always can). */
int pmd_response_value(const struct pmd_params *p, char *out, size_t cap);

/* One connection's compression state. Streams are created lazily on first use. */
struct pmd_stream {
    struct pmd_params params;
    int level;
    int mem_level;
    bool inflate_ready;
    bool deflate_ready;
    size_t msg_len;            /* bytes inflated so far for the current message */
    bool inflate_ended;        /* the peer's DEFLATE stream ended (a BFINAL block) */
    z_stream inflater;
    z_stream deflater;
};

/*
 * Prepares s for the agreed parameters p (copied) with a zlib level (clamped to 0..9, -1 is
 * zlib's default) and memLevel (clamped to 1..9). Allocates nothing: the inflater (about
 * 8 KiB plus the client window) and the deflater (about 2^(window+2) + 2^(mem_level+9)
 * bytes, 256 KiB at window 15, memLevel 8) are created on first use.
 */
void pmd_stream_init(struct pmd_stream *s, const struct pmd_params *p, int level,
                     int mem_level);
/* Frees whichever zlib streams exist. s can be initialised again or finished again. */
void pmd_stream_fini(struct pmd_stream *s);

/*
 * Inflates one chunk of a compressed message's payload and appends the output to out.
 * Call with fin set on the message's last chunk (the 0x00 0x00 0xff 0xff tail is added
 * then). limit is the total decompressed size allowed for the whole message, counted by
 * s across the message's chunks (msg_len): when it would be passed, returns WSD_ETOOBIG.
 * out grows in bounded steps and by at most limit + 1 bytes per message, so a caller that
 * passes one buffer, empty at the message start, never holds more than limit + 1 bytes.
 * A message whose data does not end on a DEFLATE block boundary once the tail is added is
 * corrupt. Returns 0, WSD_EINVAL on corrupt data, WSD_ETOOBIG, WSD_ENOMEM. On fin the
 * context is reset when client_no_context_takeover was agreed. After an error the
 * inflater is reset and out holds partial output: the connection is to be closed.
 */
int pmd_inflate(struct pmd_stream *s, const uint8_t *in, size_t len, bool fin,
                struct buf *out, size_t limit);

/*
 * Compresses one whole message into out (appending), without the 0x00 0x00 0xff 0xff tail
 * (RFC 7692 7.2.1); an empty message is the single byte 0x00 (7.2.3.6). Resets the
 * context afterwards when server_no_context_takeover was agreed. Returns 0 or WSD_ENOMEM
 * (out is then as it was and the context is reset, which the peer can still follow).
 */
int pmd_deflate(struct pmd_stream *s, const uint8_t *in, size_t len, struct buf *out);

#endif
