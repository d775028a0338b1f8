/*
 * envelope.c - libFuzzer target for the envelope codec.
 *
 * The first byte picks the encoding (bit 0: MessagePack) and the data limit (bits 1-2);
 * the rest is the message. Whatever parses must be usable: strings copy, since maps walk
 * to their end, an error or reply with the id encodes, and the data value re-encodes as a
 * msg in both encodings that parses back (as a syntactically valid envelope with op
 * "msg"), and inside a broadcast that parses back without error. Transcoding must settle
 * after one round trip: data in encoding A -> B -> A -> B -> A gives the same bytes in A
 * after the first and the second round (the first may change the form: float32 becomes
 * float64, bin becomes a base64 string, JSON number spellings become canonical).
 */
#include "proto/envelope.h"
#include "core/buf.h"
#include "core/wsd.h"
#include "proto/json.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                   \
    do {                                                                                 \
        if (!(cond))                                                                     \
            abort();                                                                     \
    } while (0)

static const uint64_t fz_limits[4] = {0, 16, 1024, 65536};

static void fz_strings(const struct envelope *env)
{
    const struct envelope_str *s[] = {&env->op_name, &env->token, &env->session,
                                      &env->group,   &env->user,  &env->mid};
    uint8_t out[256];
    for (size_t i = 0; i < WSD_ARRAY_LEN(s); i++) {
        size_t n = 0;
        int rc = envelope_str_copy(s[i], out, sizeof(out), &n);
        FZ_CHECK(rc == 0 || rc == WSD_ENOENT || (rc == WSD_ETOOBIG && s[i]->len > sizeof(out)));
        FZ_CHECK(rc != 0 || n == s[i]->len);
    }
}

static void fz_since(const struct envelope *env)
{
    struct envelope_since pos;
    if (env->since.p == NULL)
        return;
    if (env->op == ENVELOPE_OP_JOIN) {
        FZ_CHECK(envelope_since_read(&env->since, &pos) == 0);
        return;
    }
    struct envelope_since_iter it;
    struct envelope_str ch;
    int rc;
    envelope_since_iter_init(&it, &env->since);
    while ((rc = envelope_since_iter_next(&it, &ch, &pos)) == 1)
        FZ_CHECK(ch.len > 0 && ch.len <= ENVELOPE_MAX_NAME_LEN);
    FZ_CHECK(rc == 0);
}

/* Transcodes p from src to dst into out (cleared first). */
static void fz_transcode(struct buf *out, enum envelope_encoding dst,
                         enum envelope_encoding src, const uint8_t *p, size_t len)
{
    out->len = 0;
    FZ_CHECK(envelope_encode_data(out, dst, src, p, len) == 0);
}

static void fz_settles(const struct envelope_value *d)
{
    enum envelope_encoding src = d->enc;
    enum envelope_encoding other = src == ENVELOPE_JSON ? ENVELOPE_MSGPACK : ENVELOPE_JSON;
    struct buf a, b, c, e;
    buf_init(&a);
    buf_init(&b);
    buf_init(&c);
    buf_init(&e);
    fz_transcode(&a, other, src, d->p, d->len);
    fz_transcode(&b, src, other, a.data, a.len);
    fz_transcode(&c, other, src, b.data, b.len);
    fz_transcode(&e, src, other, c.data, c.len);
    FZ_CHECK(b.len == e.len && memcmp(b.data, e.data, b.len) == 0);
    buf_fini(&a);
    buf_fini(&b);
    buf_fini(&c);
    buf_fini(&e);
}

static void fz_msg(const struct envelope *env)
{
    static const struct envelope_msg m = {.ch = "room", .ch_len = 4, .has_off = true, .off = 3,
                                          .mid = "m", .mid_len = 1, .from = "u", .from_len = 1,
                                          .ts_ms = 1};
    for (int enc = ENVELOPE_JSON; enc <= ENVELOPE_MSGPACK; enc++) {
        struct buf out;
        struct envelope back;
        buf_init(&out);
        FZ_CHECK(envelope_encode_msg(&out, enc, &m, env->data.enc, env->data.p,
                                     env->data.len) == 0);
        envelope_parse(&back, enc, out.data, out.len, 0);
        FZ_CHECK(back.error == ENVELOPE_ERR_UNKNOWN_OP);
        if (enc == ENVELOPE_JSON)
            FZ_CHECK(json_validate(out.data, out.len, NULL) == 0);
        out.len = 0;
        struct envelope_writer w;
        envelope_writer_init(&w, &out, enc);
        envelope_w_map(&w, 2);
        envelope_w_key(&w, "op");
        envelope_w_cstr(&w, "broadcast");
        envelope_w_key(&w, "data");
        envelope_w_data(&w, env->data.enc, env->data.p, env->data.len);
        envelope_w_map_end(&w);
        FZ_CHECK(envelope_writer_finish(&w) == 0);
        FZ_CHECK(envelope_parse(&back, enc, out.data, out.len, 0) == 0);
        buf_fini(&out);
    }
}

static void fz_replies(const struct envelope *env)
{
    for (int enc = ENVELOPE_JSON; enc <= ENVELOPE_MSGPACK; enc++) {
        struct buf out;
        buf_init(&out);
        FZ_CHECK(envelope_encode_error(&out, enc, &env->id, envelope_error_code(env->error),
                                       env->message) == 0);
        FZ_CHECK(envelope_encode_pong(&out, enc, &env->id) == 0);
        buf_fini(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope env;
    if (size < 1)
        return 0;
    enum envelope_encoding enc = (data[0] & 1) ? ENVELOPE_MSGPACK : ENVELOPE_JSON;
    uint64_t limit = fz_limits[(data[0] >> 1) & 3];
    int rc = envelope_parse(&env, enc, data + 1, size - 1, limit);
    FZ_CHECK((rc == 0) == (env.error == ENVELOPE_OK));
    fz_replies(&env);
    if (rc != 0)
        return 0;
    fz_strings(&env);
    fz_since(&env);
    if (env.data.p != NULL) {
        FZ_CHECK(limit == 0 || env.data.len <= limit);
        fz_msg(&env);
        fz_settles(&env.data);
    }
    return 0;
}
