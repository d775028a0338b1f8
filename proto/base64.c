/* base64.c - RFC 4648 base64, standard and URL-safe alphabets, strict decoding. */
#include "proto/base64.h"
#include "core/wsd.h"

static const char base64_std_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char base64_url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64_encoded_len(size_t len, bool pad)
{
    size_t full = len / 3 * 4;
    size_t rest = len % 3;
    if (rest == 0)
        return full;
    return full + (pad ? 4 : rest + 1);
}

size_t base64_encode(char *out, const uint8_t *in, size_t len, enum base64_alphabet alphabet,
                     bool pad)
{
    const char *tab = alphabet == BASE64_URL ? base64_url_chars : base64_std_chars;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    return o;
}

size_t base64_decoded_max(size_t len)
{
    return len / 4 * 3 + (len % 4 ? 2 : 0);
}

/* Value of one alphabet character, or -1. */
static int base64_value(unsigned char c, enum base64_alphabet alphabet)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (alphabet == BASE64_URL)
        return c == '-' ? 62 : c == '_' ? 63 : -1;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Length of in without its padding, or (size_t)-1 when the padding is not allowed. */
static size_t base64_strip_padding(const char *in, size_t len, enum base64_padding padding)
{
    size_t pads = 0;
    while (pads < 2 && pads < len && in[len - 1 - pads] == '=')
        pads++;
    if (pads > 0 && (padding == BASE64_PAD_NONE || len % 4 != 0))
        return (size_t)-1;
    if (padding == BASE64_PAD_REQUIRED && len % 4 != 0)
        return (size_t)-1;
    return len - pads;
}

long base64_decode(uint8_t *out, size_t cap, const char *in, size_t len,
                   enum base64_alphabet alphabet, enum base64_padding padding)
{
    size_t n = base64_strip_padding(in, len, padding);
    if (n == (size_t)-1 || n % 4 == 1 || (n != len && n % 4 == 0))
        return WSD_EINVAL;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return WSD_ETOOBIG;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = base64_value((unsigned char)in[i], alphabet);
        if (v < 0)
            return WSD_EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return WSD_EINVAL; /* non-zero unused bits: not the canonical encoding */
    return (long)o;
}
