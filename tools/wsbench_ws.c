/* wsbench_ws.c - client-side WebSocket pieces for the load generator. */
#include "tools/wsbench_ws.h"

#include "core/wsd.h"
#include "proto/base64.h"
#include "proto/handshake.h"
#include "proto/jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define RESPONSE_MAX 8192
#define KEEP_DEFAULT_MAX (16u << 20)

/* Base64 of in[0..len) into out (NUL-terminated); padded unless url. Returns its length. */
static size_t b64_encode(const uint8_t *in, size_t len, char *out, bool url)
{
    size_t n = base64_encode(out, in, len, url ? BASE64_URL : BASE64_STD, !url);
    out[n] = '\0';
    return n;
}

/* Decodes standard or url base64 (padding optional). Returns the length or WSD_EINVAL. */
static int b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    long n = base64_decode(out, cap, in, len, BASE64_STD, BASE64_PAD_OPTIONAL);
    if (n < 0)
        n = base64_decode(out, cap, in, len, BASE64_URL, BASE64_PAD_OPTIONAL);
    return n < 0 ? WSD_EINVAL : (int)n;
}

static int parse_port(const char *s, size_t len, uint16_t *port)
{
    if (len == 0 || len > 5)
        return WSD_EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return WSD_EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return WSD_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int wsbench_ws_parse_url(const char *url, struct wsbench_url *u)
{
    const char *rest;
    memset(u, 0, sizeof(*u));
    if (strncmp(url, "ws://", 5) == 0)
        rest = url + 5;
    else if (strncmp(url, "wss://", 6) == 0)
        rest = url + 6, u->tls = true;
    else if (strncmp(url, "tcp://", 6) == 0)
        rest = url + 6;
    else
        return WSD_EINVAL;
    size_t auth_len = strcspn(rest, "/?");
    const char *colon = memchr(rest, ':', auth_len);
    size_t host_len = colon ? (size_t)(colon - rest) : auth_len;
    if (host_len == 0 || host_len >= sizeof(u->host))
        return WSD_EINVAL;
    memcpy(u->host, rest, host_len);
    u->port = u->tls ? 443 : 80;
    if (colon && parse_port(colon + 1, auth_len - host_len - 1, &u->port) != 0)
        return WSD_EINVAL;
    const char *target = rest + auth_len;
    int n = snprintf(u->target, sizeof(u->target), "%s%s", *target == '/' ? "" : "/", target);
    if (n < 0 || (size_t)n >= sizeof(u->target))
        return WSD_EINVAL;
    return 0;
}

void wsbench_ws_make_key(char key[WSBENCH_WS_KEY_LEN + 1])
{
    uint8_t raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)key;
        for (size_t i = 0; i < sizeof(raw); i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            raw[i] = (uint8_t)(seed >> 56);
        }
    }
    b64_encode(raw, sizeof(raw), key, false);
}

void wsbench_ws_accept(const char *key, char out[WSBENCH_WS_ACCEPT_LEN + 1])
{
    hs_accept_key(key, strlen(key), out);
}

int wsbench_ws_request(char *out, size_t cap, const struct wsbench_url *u, const char *key,
                       const char *token)
{
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     u->target, u->host, (unsigned)u->port, key,
                     token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap)
        return WSD_ETOOBIG;
    return n;
}

/* True when the header line [p, p+len) is "Sec-WebSocket-Accept: <accept>". */
static bool line_is_accept(const char *p, size_t len, const char *accept)
{
    static const char name[] = "sec-websocket-accept:";
    size_t nl = sizeof(name) - 1;
    if (len < nl || strncasecmp(p, name, nl) != 0)
        return false;
    p += nl;
    len -= nl;
    while (len > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    return len == strlen(accept) && memcmp(p, accept, len) == 0;
}

int wsbench_ws_check_response(const char *buf, size_t len, const char *accept, int *status)
{
    size_t scan = WSD_MIN(len, (size_t)RESPONSE_MAX);
    const char *end = memmem(buf, scan, "\r\n\r\n", 4);
    *status = 0;
    if (!end)
        return len >= RESPONSE_MAX ? WSD_ETOOBIG : WSD_EAGAIN;
    size_t head_len = (size_t)(end - buf) + 4;
    if (head_len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return WSD_EPROTO;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return WSD_EPROTO;
        *status = *status * 10 + (buf[i] - '0');
    }
    if (*status != 101)
        return WSD_EPROTO;
    const char *line = memchr(buf, '\n', head_len) + 1;
    while (line < end) {
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
        if (line_is_accept(line, (size_t)(eol - line), accept))
            return (int)head_len;
        line = eol + 2;
    }
    return WSD_EPROTO;
}

size_t wsbench_ws_encode(uint8_t *out, uint8_t opcode, const void *payload, size_t len,
                         const uint8_t key[4])
{
    size_t h = 0;
    out[h++] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = 0x80 | 127;
        for (int s = 56; s >= 0; s -= 8)
            out[h++] = (uint8_t)((uint64_t)len >> s);
    }
    memcpy(out + h, key, 4);
    h += 4;
    const uint8_t *src = payload;
    for (size_t i = 0; i < len; i++)
        out[h + i] = src[i] ^ key[i & 3];
    return h + len;
}

int wsbench_ws_append(struct buf *b, uint8_t opcode, const void *payload, size_t len,
                      const uint8_t key[4])
{
    int rc = buf_reserve(b, len + WSBENCH_WS_MAX_HDR);
    if (rc != 0)
        return rc;
    b->len += wsbench_ws_encode(b->data + b->len, opcode, payload, len, key);
    return 0;
}

void wsbench_rx_init(struct wsbench_rx *rx, bool keep)
{
    memset(rx, 0, sizeof(*rx));
    rx->keep = keep;
    rx->max_keep = KEEP_DEFAULT_MAX;
    buf_init(&rx->msg);
}

void wsbench_rx_fini(struct wsbench_rx *rx)
{
    buf_fini(&rx->msg);
}

/* Header length announced by the first bytes h[0..have), have >= 2. */
static size_t header_len(const uint8_t *h)
{
    size_t n = 2;
    uint8_t l7 = h[1] & 0x7f;
    if (l7 == 126)
        n += 2;
    else if (l7 == 127)
        n += 8;
    if (h[1] & 0x80)
        n += 4;
    return n;
}

static size_t rx_fail(struct wsbench_rx *rx, struct wsbench_rx_event *ev, const char *why,
                      size_t used)
{
    rx->failed = true;
    ev->type = WSBENCH_RX_ERROR;
    ev->error = why;
    return used;
}

/* Checks a complete header and enters its payload. Returns NULL or why it is invalid. */
static const char *rx_start_frame(struct wsbench_rx *rx, const uint8_t *h)
{
    uint8_t l7 = h[1] & 0x7f;
    uint64_t len = l7;
    if (h[0] & 0x70)
        return "reserved bits set";
    if (h[1] & 0x80)
        return "masked server frame";
    if (l7 == 126)
        len = (uint64_t)h[2] << 8 | h[3];
    else if (l7 == 127)
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
    if (len >> 63)
        return "frame length too big";
    rx->opcode = h[0] & 0x0f;
    rx->fin = (h[0] & 0x80) != 0;
    rx->left = len;
    if (rx->opcode >= 0x8) {
        if (rx->opcode > 0xA)
            return "reserved opcode";
        if (!rx->fin || len > 125)
            return "bad control frame";
        rx->ctl_len = 0;
        return NULL;
    }
    if (rx->opcode == 0x0) {
        if (!rx->in_msg)
            return "continuation without a message";
    } else if (rx->opcode <= 0x2) {
        if (rx->in_msg)
            return "data frame inside a fragmented message";
        rx->in_msg = true;
        rx->msg_opcode = rx->opcode;
        rx->msg_len = 0;
        rx->msg.len = 0;
    } else {
        return "reserved opcode";
    }
    if (rx->keep && rx->msg_len + len > rx->max_keep)
        return "message too big";
    return NULL;
}

/* Takes header bytes from p; returns bytes used, sets *done when the header is whole. */
static size_t rx_header(struct wsbench_rx *rx, const uint8_t *p, size_t len,
                        const uint8_t **h, bool *done)
{
    *done = false;
    if (rx->hdr_have == 0 && len >= 2 && len >= header_len(p)) {
        *h = p;
        *done = true;
        return header_len(p);
    }
    size_t used = 0;
    while (used < len) {
        rx->hdr[rx->hdr_have++] = p[used++];
        if (rx->hdr_have >= 2 && rx->hdr_have == header_len(rx->hdr)) {
            rx->hdr_have = 0;
            *h = rx->hdr;
            *done = true;
            break;
        }
    }
    return used;
}

/* Consumes control-frame payload; reports the frame when it is complete. */
static size_t rx_control(struct wsbench_rx *rx, const uint8_t *p, size_t len,
                         struct wsbench_rx_event *ev)
{
    size_t take = (size_t)WSD_MIN(rx->left, (uint64_t)len);
    memcpy(rx->ctl + rx->ctl_len, p, take);
    rx->ctl_len = (uint8_t)(rx->ctl_len + take);
    rx->left -= take;
    if (rx->left == 0) {
        ev->type = WSBENCH_RX_CONTROL;
        ev->opcode = rx->opcode;
        ev->data = rx->ctl;
        ev->len = rx->ctl_len;
    }
    return take;
}

static void rx_message_done(struct wsbench_rx *rx, struct wsbench_rx_event *ev,
                            const uint8_t *data)
{
    rx->in_msg = false;
    ev->type = WSBENCH_RX_MESSAGE;
    ev->opcode = rx->msg_opcode;
    ev->data = data;
    ev->len = (size_t)rx->msg_len;
}

/* Consumes data-frame payload: a view when the message is whole in p, else gathered. */
static size_t rx_data(struct wsbench_rx *rx, const uint8_t *p, size_t len,
                      struct wsbench_rx_event *ev, bool *oom)
{
    size_t take = (size_t)WSD_MIN(rx->left, (uint64_t)len);
    bool last = take == rx->left && rx->fin;
    const uint8_t *view = NULL;
    if (rx->keep) {
        if (last && rx->msg_len == 0) {
            view = p;
        } else if (buf_append(&rx->msg, p, take) != 0) {
            *oom = true;
            return 0;
        } else {
            view = rx->msg.data;
        }
    }
    rx->left -= take;
    rx->msg_len += take;
    if (last)
        rx_message_done(rx, ev, view);
    return take;
}

size_t wsbench_rx_feed(struct wsbench_rx *rx, const uint8_t *p, size_t len,
                       struct wsbench_rx_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (rx->failed)
        return rx_fail(rx, ev, "reader failed before", 0);
    size_t used = 0;
    if (rx->left == 0) {
        const uint8_t *h = NULL;
        bool done;
        used = rx_header(rx, p, len, &h, &done);
        if (!done)
            return used;
        const char *why = rx_start_frame(rx, h);
        if (why)
            return rx_fail(rx, ev, why, used);
        if (rx->left == 0) {
            if (rx->opcode >= 0x8)
                rx_control(rx, p + used, 0, ev);
            else if (rx->fin)
                rx_message_done(rx, ev, rx->keep ? (rx->msg.len ? rx->msg.data : p + used)
                                                 : NULL);
            return used;
        }
    }
    if (used == len)
        return used;
    if (rx->opcode >= 0x8)
        return used + rx_control(rx, p + used, len - used, ev);
    bool oom = false;
    size_t n = rx_data(rx, p + used, len - used, ev, &oom);
    if (oom)
        return rx_fail(rx, ev, "out of memory", used);
    return used + n;
}

enum wsbench_op wsbench_ws_json_op(const uint8_t *p, size_t len)
{
    static const struct {
        const char *name;
        enum wsbench_op op;
    } ops[] = {{"msg", WSBENCH_OP_MSG},         {"reply", WSBENCH_OP_REPLY},
               {"error", WSBENCH_OP_ERROR},     {"welcome", WSBENCH_OP_WELCOME},
               {"pong", WSBENCH_OP_PONG}};
    const uint8_t *k = memmem(p, len, "\"op\"", 4);
    if (!k)
        return WSBENCH_OP_OTHER;
    const uint8_t *end = p + len;
    const uint8_t *v = k + 4;
    while (v < end && (*v == ' ' || *v == ':' || *v == '\t'))
        v++;
    if (v >= end || *v != '"')
        return WSBENCH_OP_OTHER;
    v++;
    const uint8_t *q = memchr(v, '"', (size_t)(end - v));
    if (!q)
        return WSBENCH_OP_OTHER;
    for (size_t i = 0; i < WSD_ARRAY_LEN(ops); i++)
        if (strlen(ops[i].name) == (size_t)(q - v) && memcmp(v, ops[i].name, (size_t)(q - v)) == 0)
            return ops[i].op;
    return WSBENCH_OP_OTHER;
}

/* Parses an integer at v (after optional blanks and a colon). Returns 0 or WSD_ENOENT. */
static int parse_member_int(const uint8_t *v, const uint8_t *end, int64_t *out)
{
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    if (v >= end || *v != ':')
        return WSD_ENOENT;
    v++;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    bool neg = v < end && *v == '-';
    if (neg)
        v++;
    if (v >= end || *v < '0' || *v > '9')
        return WSD_ENOENT;
    int64_t n = 0;
    while (v < end && *v >= '0' && *v <= '9' && n < INT64_MAX / 10)
        n = n * 10 + (*v++ - '0');
    *out = neg ? -n : n;
    return 0;
}

int wsbench_ws_json_int(const uint8_t *p, size_t len, const char *key, bool in_data,
                        int64_t *out)
{
    char needle[72];
    int nl = snprintf(needle, sizeof(needle), "\"%s\"", key);
    if (nl < 0 || (size_t)nl >= sizeof(needle))
        return WSD_ENOENT;
    const uint8_t *end = p + len;
    if (in_data) {
        const uint8_t *d = memmem(p, len, "\"data\"", 6);
        if (d)
            p = d + 6;
    }
    while (p < end) {
        const uint8_t *k = memmem(p, (size_t)(end - p), needle, (size_t)nl);
        if (!k)
            return WSD_ENOENT;
        if (parse_member_int(k + nl, end, out) == 0)
            return 0;
        p = k + nl;
    }
    return WSD_ENOENT;
}

/* Decodes a "base64:" secret or copies a raw one. Returns its length or WSD_EINVAL. */
static int jwt_secret(const char *secret, uint8_t *out, size_t cap)
{
    if (strncmp(secret, "base64:", 7) == 0)
        return b64_decode(secret + 7, strlen(secret + 7), out, cap);
    size_t n = strlen(secret);
    if (n > cap)
        return WSD_EINVAL;
    memcpy(out, secret, n);
    return (int)n;
}

int wsbench_ws_jwt(char *out, size_t cap, const char *secret, const char *sub, int64_t exp)
{
    char claims[512];
    uint8_t key[512];
    int key_len = jwt_secret(secret, key, sizeof(key));
    if (key_len < 0)
        return WSD_EINVAL;
    int cl = snprintf(claims, sizeof(claims),
                      "{\"sub\":\"%s\",\"join\":[\"*\"],\"pub\":[\"*\"],\"exp\":%lld}", sub,
                      (long long)exp);
    if (cl < 0 || (size_t)cl >= sizeof(claims))
        return WSD_ETOOBIG;
    long n = jwt_sign_hs256(out, cap, claims, (size_t)cl, key, (size_t)key_len);
    return (int)n;
}

int wsbench_ws_jwt_sub(const char *token, char *out, size_t cap)
{
    uint8_t claims[2048];
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2)
        return WSD_EINVAL;
    int n = b64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), claims, sizeof(claims));
    if (n < 0)
        return WSD_EINVAL;
    const uint8_t *end = claims + n;
    const uint8_t *k = memmem(claims, (size_t)n, "\"sub\"", 5);
    if (!k)
        return WSD_EINVAL;
    const uint8_t *v = k + 5;
    while (v < end && (*v == ' ' || *v == ':' || *v == '\t'))
        v++;
    if (v >= end || *v != '"')
        return WSD_EINVAL;
    v++;
    const uint8_t *q = memchr(v, '"', (size_t)(end - v));
    if (!q || memchr(v, '\\', (size_t)(q - v)) || (size_t)(q - v) >= cap)
        return WSD_EINVAL;
    memcpy(out, v, (size_t)(q - v));
    out[q - v] = '\0';
    return (int)(q - v);
}
