/*
 * utf8.h - streaming UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF). Fails at the first byte that cannot start or continue a valid
 * sequence, so a bad text message is rejected as soon as the offending byte arrives,
 * even in the middle of a fragment.
 */
#ifndef WSD_PROTO_UTF8_H
#define WSD_PROTO_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct utf8_state {
    uint32_t state; /* 0 = at a character boundary */
};

void utf8_init(struct utf8_state *s);

/*
 * Feeds len bytes. Returns 0 when every byte so far can still be part of valid UTF-8
 * (a sequence may be open at the end), WSD_EUTF8 at the first impossible byte; once
 * failed, the state stays failed.
 */
int utf8_feed(struct utf8_state *s, const uint8_t *p, size_t len);

/* True when the input fed so far ends on a character boundary (and has not failed). */
bool utf8_is_complete(const struct utf8_state *s);

/* Whole-buffer check: true when p[0..len) is complete, valid UTF-8. */
bool utf8_is_valid(const uint8_t *p, size_t len);

#endif
