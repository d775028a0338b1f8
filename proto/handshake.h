/*
 * handshake.h - the server's side of the RFC 6455 opening handshake (section 4.2):
 * validates an upgrade request and builds the 101 response.
 *
 * It checks, in order: method GET (405), HTTP/1.1 or later (400), Host present (400),
 * Upgrade holds "websocket" and Connection holds "upgrade" (426 when this is not an
 * upgrade request at all, 400 when it is half of one), Sec-WebSocket-Version is 13 (426
 * with "Sec-WebSocket-Version: 13"), Sec-WebSocket-Key is one header that base64-decodes
 * to exactly 16 bytes (400), Origin against the allowed list (403). It then picks a
 * subprotocol from the client's list and a permessage-deflate configuration from the
 * client's offers (see deflate.h).
 */
#ifndef WSD_PROTO_HANDSHAKE_H
#define WSD_PROTO_HANDSHAKE_H

#include "proto/deflate.h"
#include "proto/http.h"

#include <stdbool.h>
#include <stddef.h>

#define HS_ACCEPT_LEN 28

struct hs_options {
    /* Allowed Origin values; NULL or empty means any origin (and requests without Origin
       are always allowed: they do not come from a browser). An entry "*" allows any;
       a scheme followed by "*." and a domain (https, colon, two slashes, "*.example.com")
       allows any subdomain of that domain; otherwise exact, case-insensitive. */
    const char *const *allowed_origins;
    size_t num_allowed_origins;
    /* Subprotocols the server speaks, in its order of preference; may be empty. */
    const char *const *subprotocols;
    size_t num_subprotocols;
    /* permessage-deflate settings; NULL or !enabled = never negotiated. */
    const struct pmd_config *deflate;
};

struct hs_result {
    int status;              /* 101 on success, else the HTTP status to answer with */
    const char *error;       /* why, when status != 101 (static text for logs and body) */
    char accept[HS_ACCEPT_LEN + 1];
    int subprotocol;         /* index into hs_options.subprotocols, -1 for none */
    bool deflate;            /* permessage-deflate negotiated */
    struct pmd_params pmd;   /* negotiated parameters when deflate */
};

/* True when the request asks for an upgrade to websocket (Upgrade header names it). */
bool hs_is_upgrade(const struct http_request *req);

/*
 * Validates req as an opening handshake. Fills res (status 101 or the error status) and
 * returns 0, or the negative WSD_EINVAL matching res->status != 101.
 */
int hs_check(const struct http_request *req, const struct hs_options *opt,
             struct hs_result *res);

/*
 * Computes Sec-WebSocket-Accept for a key (as sent, base64 text): base64(SHA-1(key +
 * GUID)). out receives 28 characters and a NUL. Keys longer than 64 bytes (a valid key
 * has 24) are hashed through an EVP context; if that cannot be allocated, out is "".
 */
void hs_accept_key(const char *key, size_t key_len, char out[HS_ACCEPT_LEN + 1]);

/*
 * Writes the 101 response for res (Upgrade, Connection, Sec-WebSocket-Accept, the chosen
 * Sec-WebSocket-Protocol and Sec-WebSocket-Extensions). Returns its length or
 * WSD_ETOOBIG.
 */
int hs_write_response(const struct hs_result *res, const struct hs_options *opt, char *out,
                      size_t cap);

/*
 * The parts of the error response for a failed res, for http_write_head() and friends:
 * the extra header lines (the upgrade offer with "Sec-WebSocket-Version: 13" for 426,
 * Allow for 405; NULL for none), and the text/plain body written into body[cap] (the
 * reason and a newline; cap at least 2). Returns the body's length.
 */
const char *hs_error_headers(const struct hs_result *res);
size_t hs_error_body(const struct hs_result *res, char *body, size_t cap);

#endif
