/*
 * base64.h - RFC 4648 base64 with the standard (section 4) and the URL-safe (section 5)
 * alphabets: encoding, and strict decoding (no whitespace, no characters outside the
 * alphabet, padding only where the caller allows it, and unused trailing bits zero, so
 * every accepted input has exactly one encoding). No allocation.
 */
#ifndef WSD_PROTO_BASE64_H
#define WSD_PROTO_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum base64_alphabet {
    BASE64_STD, /* A-Z a-z 0-9 + / */
    BASE64_URL, /* A-Z a-z 0-9 - _ */
};

enum base64_padding {
    BASE64_PAD_OPTIONAL, /* decode: "=" padding accepted and not required */
    BASE64_PAD_REQUIRED, /* decode: length a multiple of 4, padded */
    BASE64_PAD_NONE,     /* decode: "=" rejected */
};

/* Length of the encoding of len bytes, with or without padding. */
size_t base64_encoded_len(size_t len, bool pad);

/*
 * Encodes in[0..len) into out, which has room for base64_encoded_len(len, pad) bytes
 * (no NUL is written). Returns the number of characters written.
 */
size_t base64_encode(char *out, const uint8_t *in, size_t len, enum base64_alphabet alphabet,
                     bool pad);

/* Upper bound of the decoded length of len characters. */
size_t base64_decoded_max(size_t len);

/*
 * Decodes in[0..len) into out[0..cap). Rejects characters outside the alphabet
 * (whitespace included), padding other than the mode allows, a final group of one
 * character, and non-zero unused bits in the final group.
 * Returns the decoded length (>= 0), WSD_EINVAL for malformed input, or WSD_ETOOBIG when
 * the result does not fit cap (base64_decoded_max(len) always fits). out may equal in
 * (decoding in place).
 */
long base64_decode(uint8_t *out, size_t cap, const char *in, size_t len,
                   enum base64_alphabet alphabet, enum base64_padding padding);

#endif
