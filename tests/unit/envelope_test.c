/*
 * envelope_test.c - envelope parsing in JSON and MessagePack (every op, every field error,
 * id kinds, the same verdicts in both encodings), since maps, the encoders (checked by
 * re-parsing JSON with the scanner and MessagePack with msgpack_unpack), and transcoding.
 */
#include "proto/envelope.h"
#include "core/buf.h"
#include "core/wsd.h"
#include "proto/json.h"

#include <criterion/criterion.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_DATA 100

#include "tests/unit/guard.h"

/* Parses a copy that ends at a guard page; env views point into it until it is freed. */
static int parse_at_guard(struct envelope *env, enum envelope_encoding enc, const void *p,
                          size_t len, struct guarded *g)
{
    guarded_init(g, p, len);
    return envelope_parse(env, enc, g->p, len, MAX_DATA);
}

static int parse_json(struct envelope *env, const char *text)
{
    return envelope_parse(env, ENVELOPE_JSON, (const uint8_t *)text, strlen(text), MAX_DATA);
}

/* JSON text -> MessagePack bytes with the transcoder (checked on its own below). */
static void to_msgpack(const char *text, struct buf *out)
{
    out->len = 0;
    cr_assert_eq(envelope_encode_data(out, ENVELOPE_MSGPACK, ENVELOPE_JSON,
                                      (const uint8_t *)text, strlen(text)),
                 0, "transcoding %s", text);
}

static char *buf_cstr(struct buf *b)
{
    cr_assert_eq(buf_append(b, "", 1), 0);
    b->len--;
    return (char *)b->data;
}

enum id_want { NO_ID, STR_ID, INT_ID };

struct env_case {
    const char *text;
    enum envelope_error error;
    enum id_want id;
};

#define LONG64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LONG128 LONG64 LONG64

static const struct env_case cases[] = {
    /* syntax and shape */
    {"{\"op\":\"ping\"", ENVELOPE_ERR_BAD_JSON, NO_ID},
    {"{\"op\":\"ping\",}", ENVELOPE_ERR_BAD_JSON, NO_ID},
    {"{\"op\":\"ping\"} x", ENVELOPE_ERR_BAD_JSON, NO_ID},
    {"[1,2", ENVELOPE_ERR_BAD_JSON, NO_ID},
    {"", ENVELOPE_ERR_BAD_JSON, NO_ID},
    {"[{\"op\":\"ping\"}]", ENVELOPE_ERR_BAD_ENVELOPE, NO_ID},
    {"\"ping\"", ENVELOPE_ERR_BAD_ENVELOPE, NO_ID},
    {"42", ENVELOPE_ERR_BAD_ENVELOPE, NO_ID},
    {"null", ENVELOPE_ERR_BAD_ENVELOPE, NO_ID},
    {"{\"op\":\"ping\",\"op\":\"ping\"}", ENVELOPE_ERR_BAD_ENVELOPE, NO_ID},
    {"{\"op\":\"ping\",\"\\u006fp\":\"ping\"}", ENVELOPE_ERR_BAD_ENVELOPE, NO_ID},
    {"{\"x\":1,\"op\":\"ping\",\"x\":2}", ENVELOPE_ERR_BAD_ENVELOPE, NO_ID},
    {"{\"x\\u00e9\":1,\"op\":\"ping\",\"x\xc3\xa9\":2}", ENVELOPE_ERR_BAD_ENVELOPE, NO_ID},
    {"{\"id\":\"r\",\"op\":\"ping\",\"x\":1,\"x\":2}", ENVELOPE_ERR_BAD_ENVELOPE, STR_ID},
    {"{\"op\":\"ping\",\"x\":1,\"y\":2,\"data\":{\"x\":1,\"x\":1}}", ENVELOPE_OK, NO_ID},
    /* id */
    {"{\"op\":\"ping\",\"id\":\"abc\"}", ENVELOPE_OK, STR_ID},
    {"{\"op\":\"ping\",\"id\":\"\"}", ENVELOPE_OK, STR_ID},
    {"{\"op\":\"ping\",\"id\":\"" LONG64 "\"}", ENVELOPE_OK, STR_ID},
    {"{\"op\":\"ping\",\"id\":\"" LONG64 "a\"}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ping\",\"id\":7}", ENVELOPE_OK, INT_ID},
    {"{\"op\":\"ping\",\"id\":-7}", ENVELOPE_OK, INT_ID},
    {"{\"op\":\"ping\",\"id\":9223372036854775807}", ENVELOPE_OK, INT_ID},
    {"{\"op\":\"ping\",\"id\":9223372036854775808}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ping\",\"id\":1.5}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ping\",\"id\":1e2}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ping\",\"id\":true}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ping\",\"id\":null}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ping\",\"id\":[1]}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ping\",\"id\":{}}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    /* op */
    {"{}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    {"{\"id\":1}", ENVELOPE_ERR_MISSING_FIELD, INT_ID},
    {"{\"op\":5,\"id\":1}", ENVELOPE_ERR_BAD_FIELD, INT_ID},
    {"{\"op\":null}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"pong\",\"id\":\"x\"}", ENVELOPE_ERR_UNKNOWN_OP, STR_ID},
    {"{\"op\":\"PING\"}", ENVELOPE_ERR_UNKNOWN_OP, NO_ID},
    {"{\"op\":\"\"}", ENVELOPE_ERR_UNKNOWN_OP, NO_ID},
    {"{\"op\":\"p\\u0069ng\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"ping\",\"group\":5,\"data\":\"ignored\"}", ENVELOPE_OK, NO_ID},
    /* auth */
    {"{\"op\":\"auth\",\"token\":\"t\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"auth\",\"id\":2}", ENVELOPE_ERR_MISSING_FIELD, INT_ID},
    {"{\"op\":\"auth\",\"token\":5,\"id\":\"a\"}", ENVELOPE_ERR_BAD_FIELD, STR_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"session\":\"s\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"session\":1}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"session\":\"" LONG128 "\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"session\":\"" LONG128 "a\"}", ENVELOPE_ERR_TOO_LARGE,
     NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"since\":{}}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"since\":{\"g\":3,\"@\":{\"offset\":4,\"epoch\":\"e\"}}}",
     ENVELOPE_OK, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"since\":5}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"since\":[1]}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"since\":{\"g\":\"1\"}}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"since\":{\"g\":-1}}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"since\":{\"g\":{\"epoch\":\"e\"}}}",
     ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"since\":{\"\":1}}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"auth\",\"token\":\"t\",\"since\":{\"" LONG128 "a\":1}}", ENVELOPE_ERR_BAD_FIELD,
     NO_ID},
    /* join */
    {"{\"op\":\"join\",\"group\":\"g\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"join\",\"id\":\"r1\"}", ENVELOPE_ERR_MISSING_FIELD, STR_ID},
    {"{\"op\":\"join\",\"group\":5,\"id\":7}", ENVELOPE_ERR_BAD_FIELD, INT_ID},
    {"{\"op\":\"join\",\"group\":\"\"}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"join\",\"group\":\"" LONG128 "\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"join\",\"group\":\"" LONG128 "a\"}", ENVELOPE_ERR_TOO_LARGE, NO_ID},
    {"{\"op\":\"join\",\"group\":\"" LONG64 LONG64 "\\u00e9\"}", ENVELOPE_ERR_TOO_LARGE, NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":12}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":{\"offset\":1,\"epoch\":\"e\"}}", ENVELOPE_OK,
     NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":{\"offset\":1}}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":{\"offset\":1,\"x\":[]}}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":-1}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":1.5}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":\"1\"}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":{\"epoch\":\"e\"}}", ENVELOPE_ERR_BAD_FIELD,
     NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":{\"offset\":1,\"epoch\":5}}",
     ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":{\"offset\":1,\"offset\":2}}",
     ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"join\",\"group\":\"g\",\"since\":{\"offset\":1,\"epoch\":\"" LONG64 "a\"}}",
     ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"join\",\"since\":-1}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    /* leave, presence */
    {"{\"op\":\"leave\",\"group\":\"g\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"leave\"}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    {"{\"op\":\"leave\",\"group\":[\"g\"]}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"leave\",\"group\":\"" LONG128 "a\"}", ENVELOPE_ERR_TOO_LARGE, NO_ID},
    {"{\"op\":\"presence\",\"group\":\"g\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"presence\"}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    {"{\"op\":\"presence\",\"group\":true}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"presence\",\"group\":\"" LONG128 "a\"}", ENVELOPE_ERR_TOO_LARGE, NO_ID},
    /* publish */
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":{\"a\":[1,2]}}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":null}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"publish\",\"data\":1}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\"}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    {"{\"op\":\"publish\",\"group\":1,\"data\":1}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"" LONG128 "a\",\"data\":1}", ENVELOPE_ERR_TOO_LARGE, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":\"" LONG64 LONG64 "\"}", ENVELOPE_ERR_TOO_LARGE,
     NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":\"" LONG64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":[1e400]}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":[1e300,-1e-400]}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":1,\"mid\":\"m\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":1,\"mid\":5}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":1,\"mid\":\"\"}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"publish\",\"group\":\"g\",\"data\":1,\"mid\":\"" LONG128 "a\"}",
     ENVELOPE_ERR_TOO_LARGE, NO_ID},
    /* send */
    {"{\"op\":\"send\",\"user\":\"u\",\"data\":\"hi\",\"mid\":\"m\"}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"send\",\"data\":1}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    {"{\"op\":\"send\",\"user\":\"u\"}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    {"{\"op\":\"send\",\"user\":{},\"data\":1}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"send\",\"user\":\"\",\"data\":1}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"send\",\"user\":\"" LONG128 "a\",\"data\":1}", ENVELOPE_ERR_TOO_LARGE, NO_ID},
    {"{\"op\":\"send\",\"user\":\"u\",\"data\":1,\"mid\":false}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    /* broadcast */
    {"{\"op\":\"broadcast\",\"data\":[true]}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"broadcast\"}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    {"{\"op\":\"broadcast\",\"data\":[1e999]}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    /* ack */
    {"{\"op\":\"ack\",\"offset\":0}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"ack\",\"offset\":18446744073709551615}", ENVELOPE_OK, NO_ID},
    {"{\"op\":\"ack\"}", ENVELOPE_ERR_MISSING_FIELD, NO_ID},
    {"{\"op\":\"ack\",\"offset\":-1}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ack\",\"offset\":1.5}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ack\",\"offset\":\"1\"}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    {"{\"op\":\"ack\",\"offset\":18446744073709551616}", ENVELOPE_ERR_BAD_FIELD, NO_ID},
    /* ping */
    {"{\"op\":\"ping\"}", ENVELOPE_OK, NO_ID},
    {" \t\r\n{ \"op\" : \"ping\" , \"id\" : 3 } \n", ENVELOPE_OK, INT_ID},
};

static void check_case(const struct env_case *c, enum envelope_encoding enc,
                       const struct envelope *env, int rc)
{
    const char *name = enc == ENVELOPE_JSON ? "json" : "msgpack";
    cr_assert_eq(env->error, c->error, "%s: %s: got %s (%s)", name, c->text,
                 envelope_error_code(env->error), env->message);
    cr_assert_eq(rc, c->error == ENVELOPE_OK ? 0 : WSD_EINVAL, "%s: %s", name, c->text);
    enum envelope_id_kind want = c->id == STR_ID   ? ENVELOPE_ID_STRING
                                 : c->id == INT_ID ? ENVELOPE_ID_INT
                                                   : ENVELOPE_ID_NONE;
    cr_assert_eq(env->id.kind, want, "%s: id of %s", name, c->text);
    if (c->error != ENVELOPE_OK)
        cr_assert(env->message[0] != '\0', "%s: no message for %s", name, c->text);
}

Test(envelope, json_cases_give_the_expected_verdicts)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(cases); i++) {
        struct envelope env;
        struct guarded g;
        int rc = parse_at_guard(&env, ENVELOPE_JSON, cases[i].text, strlen(cases[i].text), &g);
        check_case(&cases[i], ENVELOPE_JSON, &env, rc);
        guarded_fini(&g);
    }
}

/* The same envelopes as MessagePack give the same verdicts (syntax errors aside). */
Test(envelope, msgpack_cases_give_the_same_verdicts_as_json)
{
    struct buf mp;
    buf_init(&mp);
    for (size_t i = 0; i < WSD_ARRAY_LEN(cases); i++) {
        const struct env_case *c = &cases[i];
        struct json_value v;
        if (json_validate((const uint8_t *)c->text, strlen(c->text), &v) < 0)
            continue;
        if (strstr(c->text, "1e400") || strstr(c->text, "1e999"))
            continue; /* not representable in MessagePack */
        to_msgpack(c->text, &mp);
        struct envelope env;
        struct guarded g;
        int rc = parse_at_guard(&env, ENVELOPE_MSGPACK, mp.data, mp.len, &g);
        check_case(c, ENVELOPE_MSGPACK, &env, rc);
        guarded_fini(&g);
    }
    buf_fini(&mp);
}

static void check_fields_equal(const struct envelope *a, const struct envelope *b)
{
    const struct envelope_str *sa[] = {&a->token, &a->session, &a->group, &a->user, &a->mid};
    const struct envelope_str *sb[] = {&b->token, &b->session, &b->group, &b->user, &b->mid};
    cr_assert_eq(a->op, b->op);
    cr_assert_eq(a->id.kind, b->id.kind);
    cr_assert_eq(a->id.num, b->id.num);
    cr_assert_eq(a->id.len, b->id.len);
    cr_assert(memcmp(a->id.str, b->id.str, a->id.len) == 0);
    for (size_t i = 0; i < WSD_ARRAY_LEN(sa); i++) {
        char x[200], y[200];
        size_t xl = 0, yl = 0;
        cr_assert_eq(sa[i]->raw == NULL, sb[i]->raw == NULL);
        if (sa[i]->raw == NULL)
            continue;
        cr_assert_eq(envelope_str_copy(sa[i], x, sizeof(x), &xl), 0);
        cr_assert_eq(envelope_str_copy(sb[i], y, sizeof(y), &yl), 0);
        cr_assert(xl == yl && memcmp(x, y, xl) == 0);
    }
    cr_assert_eq(a->has_offset, b->has_offset);
    cr_assert_eq(a->offset, b->offset);
    cr_assert_eq(a->data.type, b->data.type);
    cr_assert_eq(a->since.type, b->since.type);
}

Test(envelope, json_and_msgpack_give_identical_fields)
{
    static const char *const docs[] = {
        "{\"op\":\"auth\",\"id\":\"a\\u00e9\",\"token\":\"t.k.n\",\"session\":\"s1\"}",
        "{\"op\":\"join\",\"id\":-4,\"group\":\"room:\\\"1\\\"\",\"since\":{\"offset\":9}}",
        "{\"op\":\"publish\",\"group\":\"g\",\"data\":[1,\"x\"],\"mid\":\"m-1\"}",
        "{\"op\":\"send\",\"user\":\"bob\",\"data\":{\"k\":null}}",
        "{\"op\":\"ack\",\"offset\":77,\"id\":9223372036854775807}",
        "{\"op\":\"presence\",\"group\":\"lobby\",\"extra\":[1,2,3]}",
    };
    struct buf mp;
    buf_init(&mp);
    for (size_t i = 0; i < WSD_ARRAY_LEN(docs); i++) {
        struct envelope a, b;
        cr_assert_eq(parse_json(&a, docs[i]), 0, "%s: %s", docs[i], a.message);
        to_msgpack(docs[i], &mp);
        cr_assert_eq(envelope_parse(&b, ENVELOPE_MSGPACK, mp.data, mp.len, MAX_DATA), 0,
                     "%s: %s", docs[i], b.message);
        check_fields_equal(&a, &b);
    }
    buf_fini(&mp);
}

Test(envelope, keeps_the_id_when_a_later_field_is_bad)
{
    struct envelope env;
    cr_assert_eq(parse_json(&env, "{\"op\":\"join\",\"group\":5,\"id\":\"req-7\"}"), WSD_EINVAL);
    cr_assert_eq(env.error, ENVELOPE_ERR_BAD_FIELD);
    cr_assert_eq(env.id.kind, ENVELOPE_ID_STRING);
    cr_assert(env.id.len == 5 && memcmp(env.id.str, "req-7", 5) == 0);
    cr_assert_eq(parse_json(&env, "{\"id\":-12,\"op\":\"nope\"}"), WSD_EINVAL);
    cr_assert_eq(env.error, ENVELOPE_ERR_UNKNOWN_OP);
    cr_assert_eq(env.id.kind, ENVELOPE_ID_INT);
    cr_assert_eq(env.id.num, -12);
}

Test(envelope, decodes_escaped_id_and_string_fields)
{
    struct envelope env;
    cr_assert_eq(parse_json(&env, "{\"op\":\"publish\",\"id\":\"\\u00e9\\n\",\"group\":"
                                  "\"r\\u00f6\\ud83d\\ude00m\",\"data\":0}"),
                 0);
    cr_assert_eq(env.id.len, 3);
    cr_assert(memcmp(env.id.str, "\xc3\xa9\n", 3) == 0);
    char out[32];
    size_t n;
    const uint8_t *view;
    cr_assert(!envelope_str_view(&env.group, &view, &n));
    cr_assert_eq(env.group.len, 8);
    cr_assert_eq(envelope_str_copy(&env.group, out, sizeof(out), &n), 0);
    cr_assert(n == 8 && memcmp(out, "r\xc3\xb6\xf0\x9f\x98\x80m", 8) == 0);
    cr_assert_eq(envelope_str_copy(&env.group, out, 7, &n), WSD_ETOOBIG);
    cr_assert_eq(envelope_str_copy(&env.user, out, sizeof(out), &n), WSD_ENOENT);
    cr_assert(envelope_str_equal(&env.group, "r\xc3\xb6\xf0\x9f\x98\x80m", 8));
    cr_assert_eq(env.op, ENVELOPE_OP_PUBLISH);
}

Test(envelope, gives_a_view_of_plain_strings)
{
    struct envelope env;
    const char *text = "{\"op\":\"leave\",\"group\":\"room:42\"}";
    cr_assert_eq(parse_json(&env, text), 0);
    const uint8_t *p;
    size_t n;
    cr_assert(envelope_str_view(&env.group, &p, &n));
    cr_assert(n == 7 && memcmp(p, "room:42", 7) == 0);
    cr_assert_eq((const char *)p, text + 23);
}

Test(envelope, records_the_exact_span_of_data)
{
    struct envelope env;
    const char *text = "{ \"data\" :  {\"a\" : [1, 2.50]} , \"op\":\"broadcast\"}";
    cr_assert_eq(parse_json(&env, text), 0);
    cr_assert_eq(env.data.type, ENVELOPE_T_OBJECT);
    cr_assert_eq(env.data.enc, ENVELOPE_JSON);
    cr_assert_eq(env.data.len, strlen("{\"a\" : [1, 2.50]}"));
    cr_assert(memcmp(env.data.p, "{\"a\" : [1, 2.50]}", env.data.len) == 0);
}

Test(envelope, limits_data_as_received_bytes)
{
    struct envelope env;
    const char *text = "{\"op\":\"broadcast\",\"data\":\"0123456789\"}";
    cr_assert_eq(envelope_parse(&env, ENVELOPE_JSON, (const uint8_t *)text, strlen(text), 12),
                 0);
    cr_assert_eq(envelope_parse(&env, ENVELOPE_JSON, (const uint8_t *)text, strlen(text), 11),
                 WSD_EINVAL);
    cr_assert_eq(env.error, ENVELOPE_ERR_TOO_LARGE);
    cr_assert_eq(envelope_parse(&env, ENVELOPE_JSON, (const uint8_t *)text, strlen(text), 0), 0);
}

Test(envelope, rejects_more_than_64_keys)
{
    char text[2048];
    size_t o = (size_t)sprintf(text, "{\"op\":\"ping\"");
    for (int i = 0; i < ENVELOPE_MAX_KEYS - 1; i++)
        o += (size_t)sprintf(text + o, ",\"k%d\":%d", i, i);
    strcpy(text + o, "}");
    struct envelope env;
    cr_assert_eq(parse_json(&env, text), 0);
    strcpy(text + o, ",\"one_more\":1}");
    cr_assert_eq(parse_json(&env, text), WSD_EINVAL);
    cr_assert_eq(env.error, ENVELOPE_ERR_BAD_ENVELOPE);
}

Test(envelope, limits_nesting_of_data)
{
    char text[512];
    size_t o = (size_t)sprintf(text, "{\"op\":\"broadcast\",\"data\":");
    size_t start = o;
    for (int i = 0; i < ENVELOPE_MAX_DEPTH - 1; i++)
        text[o++] = '[';
    for (int i = 0; i < ENVELOPE_MAX_DEPTH - 1; i++)
        text[o++] = ']';
    strcpy(text + o, "}");
    struct envelope env;
    size_t len = strlen(text);
    cr_assert_eq(envelope_parse(&env, ENVELOPE_JSON, (const uint8_t *)text, len, 0), 0, "%s",
                 env.message);
    memmove(text + start + 1, text + start, strlen(text + start) + 1);
    text[start] = '[';
    memmove(text + start + 2 * ENVELOPE_MAX_DEPTH - 1, text + start + 2 * ENVELOPE_MAX_DEPTH - 2,
            3);
    text[start + 2 * ENVELOPE_MAX_DEPTH - 2] = ']';
    len = strlen(text);
    cr_assert_eq(envelope_parse(&env, ENVELOPE_JSON, (const uint8_t *)text, len, 0), WSD_EINVAL);
    cr_assert_eq(env.error, ENVELOPE_ERR_BAD_JSON);
}

Test(envelope, every_truncation_is_bad_json_or_bad_msgpack)
{
    const char *text = "{\"op\":\"publish\",\"id\":\"x\",\"group\":\"g\",\"data\":{\"a\":[1,"
                       "2.5,\"s\",true,null]},\"mid\":\"m\"}";
    struct buf mp;
    buf_init(&mp);
    to_msgpack(text, &mp);
    for (size_t cut = 0; cut < strlen(text); cut++) {
        struct envelope env;
        struct guarded g;
        parse_at_guard(&env, ENVELOPE_JSON, text, cut, &g);
        cr_assert_eq(env.error, ENVELOPE_ERR_BAD_JSON, "json cut at %zu", cut);
        guarded_fini(&g);
    }
    for (size_t cut = 0; cut < mp.len; cut++) {
        struct envelope env;
        struct guarded g;
        parse_at_guard(&env, ENVELOPE_MSGPACK, mp.data, cut, &g);
        cr_assert_eq(env.error, ENVELOPE_ERR_BAD_MSGPACK, "msgpack cut at %zu", cut);
        guarded_fini(&g);
    }
    buf_fini(&mp);
}

/* ---- MessagePack-only cases ---- */

struct mp_builder {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void mb_init(struct mp_builder *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void mb_str(struct mp_builder *b, const char *s)
{
    msgpack_pack_str_with_body(&b->pk, s, strlen(s));
}

static enum envelope_error mb_parse(struct mp_builder *b, struct envelope *env)
{
    struct guarded g;
    parse_at_guard(env, ENVELOPE_MSGPACK, b->sb.data, b->sb.size, &g);
    guarded_fini(&g);
    msgpack_sbuffer_destroy(&b->sb);
    return env->error;
}

/* {"op":"broadcast","data": <what the callback packs>} */
static enum envelope_error mb_broadcast(void (*pack)(msgpack_packer *pk), struct envelope *env)
{
    struct mp_builder b;
    mb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    mb_str(&b, "op");
    mb_str(&b, "broadcast");
    mb_str(&b, "data");
    pack(&b.pk);
    return mb_parse(&b, env);
}

static void pack_ext(msgpack_packer *pk)
{
    msgpack_pack_ext_with_body(pk, "abcd", 4, 1);
}

static void pack_timestamp(msgpack_packer *pk)
{
    msgpack_timestamp ts = {.tv_sec = 1, .tv_nsec = 0};
    msgpack_pack_array(pk, 1);
    msgpack_pack_timestamp(pk, &ts);
}

static void pack_nan(msgpack_packer *pk)
{
    msgpack_pack_double(pk, NAN);
}

static void pack_inf32(msgpack_packer *pk)
{
    msgpack_pack_float(pk, INFINITY);
}

static void pack_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
}

static void pack_bad_utf8(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "\xc3\x28", 2);
}

static void pack_good(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    msgpack_pack_str_with_body(pk, "b", 1);
    msgpack_pack_bin_with_body(pk, "\x00\xff", 2);
    msgpack_pack_str_with_body(pk, "f", 1);
    msgpack_pack_float(pk, 1.5f);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_int64(pk, -5);
}

Test(envelope, msgpack_data_must_be_carriable_in_json)
{
    struct envelope env;
    cr_assert_eq(mb_broadcast(pack_ext, &env), ENVELOPE_ERR_BAD_FIELD);
    cr_assert_eq(mb_broadcast(pack_timestamp, &env), ENVELOPE_ERR_BAD_FIELD);
    cr_assert_eq(mb_broadcast(pack_nan, &env), ENVELOPE_ERR_BAD_FIELD);
    cr_assert_eq(mb_broadcast(pack_inf32, &env), ENVELOPE_ERR_BAD_FIELD);
    cr_assert_eq(mb_broadcast(pack_int_key, &env), ENVELOPE_ERR_BAD_FIELD);
    cr_assert_eq(mb_broadcast(pack_bad_utf8, &env), ENVELOPE_ERR_BAD_FIELD);
    cr_assert_eq(mb_broadcast(pack_good, &env), ENVELOPE_OK);
    cr_assert_eq(env.data.type, ENVELOPE_T_OBJECT);
}

Test(envelope, msgpack_top_level_must_be_a_map_with_string_keys)
{
    struct mp_builder b;
    struct envelope env;
    mb_init(&b);
    msgpack_pack_array(&b.pk, 1);
    mb_str(&b, "op");
    cr_assert_eq(mb_parse(&b, &env), ENVELOPE_ERR_BAD_ENVELOPE);
    mb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    mb_str(&b, "op");
    mb_str(&b, "ping");
    msgpack_pack_int(&b.pk, 1);
    msgpack_pack_int(&b.pk, 1);
    cr_assert_eq(mb_parse(&b, &env), ENVELOPE_ERR_BAD_ENVELOPE);
    mb_init(&b);
    msgpack_pack_map(&b.pk, 1);
    msgpack_pack_bin_with_body(&b.pk, "op", 2);
    mb_str(&b, "ping");
    cr_assert_eq(mb_parse(&b, &env), ENVELOPE_ERR_BAD_ENVELOPE);
}

Test(envelope, msgpack_rejects_malformed_input)
{
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\xc1", 1},                              /* never used */
        {"\x81\xa2op\xa4ping\x00", 10},            /* trailing byte */
        {"\x81\xa2op\xc1", 5},                    /* never used, nested */
        {"\xdf\xff\xff\xff\xff", 5},              /* map count far beyond the input */
        {"\x81\xa2op\xdb\xff\xff\xff\xff", 9},    /* str32 beyond the input */
        {"\x81\xa2op\xd9", 4},                    /* str8 without its length */
        {"", 0},
    };
    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++) {
        struct envelope env;
        struct guarded g;
        parse_at_guard(&env, ENVELOPE_MSGPACK, bad[i].bytes, bad[i].len, &g);
        cr_assert_eq(env.error, ENVELOPE_ERR_BAD_MSGPACK, "case %zu", i);
        guarded_fini(&g);
    }
}

Test(envelope, msgpack_ids_and_offsets_by_integer_format)
{
    struct mp_builder b;
    struct envelope env;
    mb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    mb_str(&b, "op");
    mb_str(&b, "ack");
    mb_str(&b, "id");
    msgpack_pack_fix_int64(&b.pk, 42); /* a signed format holding a positive value */
    mb_str(&b, "offset");
    msgpack_pack_fix_int8(&b.pk, 3);
    cr_assert_eq(mb_parse(&b, &env), ENVELOPE_OK, "%s", env.message);
    cr_assert_eq(env.id.kind, ENVELOPE_ID_INT);
    cr_assert_eq(env.id.num, 42);
    cr_assert_eq(env.offset, 3);
    mb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    mb_str(&b, "op");
    mb_str(&b, "ping");
    mb_str(&b, "id");
    msgpack_pack_uint64(&b.pk, UINT64_MAX);
    cr_assert_eq(mb_parse(&b, &env), ENVELOPE_ERR_BAD_FIELD);
    cr_assert_eq(env.id.kind, ENVELOPE_ID_NONE);
    mb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    mb_str(&b, "op");
    mb_str(&b, "ping");
    mb_str(&b, "id");
    msgpack_pack_double(&b.pk, 1.0);
    cr_assert_eq(mb_parse(&b, &env), ENVELOPE_ERR_BAD_FIELD);
    mb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    mb_str(&b, "op");
    mb_str(&b, "ack");
    mb_str(&b, "offset");
    msgpack_pack_int64(&b.pk, -1);
    cr_assert_eq(mb_parse(&b, &env), ENVELOPE_ERR_BAD_FIELD);
}

Test(envelope, msgpack_string_fields_must_be_utf8)
{
    struct mp_builder b;
    struct envelope env;
    mb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    mb_str(&b, "op");
    mb_str(&b, "join");
    mb_str(&b, "group");
    msgpack_pack_str_with_body(&b.pk, "\xff", 1);
    cr_assert_eq(mb_parse(&b, &env), ENVELOPE_ERR_BAD_FIELD);
    mb_init(&b);
    msgpack_pack_map(&b.pk, 2);
    mb_str(&b, "op");
    mb_str(&b, "join");
    mb_str(&b, "group");
    msgpack_pack_bin_with_body(&b.pk, "g", 1);
    cr_assert_eq(mb_parse(&b, &env), ENVELOPE_ERR_BAD_FIELD);
}

/* ---- since ---- */

struct since_seen {
    char ch[8][16];
    uint64_t off[8];
    char epoch[8][16];
    size_t n;
};

static void collect_since(const struct envelope *env, struct since_seen *s)
{
    struct envelope_since_iter it;
    struct envelope_str ch;
    struct envelope_since pos;
    int rc;
    memset(s, 0, sizeof(*s));
    envelope_since_iter_init(&it, &env->since);
    while ((rc = envelope_since_iter_next(&it, &ch, &pos)) == 1) {
        size_t n;
        cr_assert_lt(s->n, 8);
        cr_assert_eq(envelope_str_copy(&ch, s->ch[s->n], 15, &n), 0);
        s->off[s->n] = pos.offset;
        if (pos.epoch.raw != NULL)
            cr_assert_eq(envelope_str_copy(&pos.epoch, s->epoch[s->n], 15, &n), 0);
        s->n++;
    }
    cr_assert_eq(rc, 0);
}

Test(envelope, iterates_auth_since_maps_in_both_encodings)
{
    const char *text = "{\"op\":\"auth\",\"token\":\"t\",\"since\":{\"room:1\":5,\"@\":"
                       "{\"epoch\":\"E\\u0031\",\"offset\":7},\"g\\u00e9\":{\"offset\":0}}}";
    struct envelope env;
    struct since_seen a, b;
    struct buf mp;
    buf_init(&mp);
    cr_assert_eq(parse_json(&env, text), 0, "%s", env.message);
    collect_since(&env, &a);
    to_msgpack(text, &mp);
    cr_assert_eq(envelope_parse(&env, ENVELOPE_MSGPACK, mp.data, mp.len, 0), 0);
    collect_since(&env, &b);
    cr_assert_eq(a.n, 3);
    cr_assert_eq(b.n, 3);
    cr_assert_str_eq(a.ch[0], "room:1");
    cr_assert_eq(a.off[0], 5);
    cr_assert_str_eq(a.epoch[0], "");
    cr_assert_str_eq(a.ch[1], "@");
    cr_assert_eq(a.off[1], 7);
    cr_assert_str_eq(a.epoch[1], "E1");
    cr_assert_str_eq(a.ch[2], "g\xc3\xa9");
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(a.ch[i], b.ch[i]);
        cr_assert_eq(a.off[i], b.off[i]);
        cr_assert_str_eq(a.epoch[i], b.epoch[i]);
    }
    buf_fini(&mp);
}

Test(envelope, reads_join_since_positions)
{
    struct envelope env;
    struct envelope_since pos;
    cr_assert_eq(parse_json(&env, "{\"op\":\"join\",\"group\":\"g\",\"since\":41}"), 0);
    cr_assert_eq(env.since.type, ENVELOPE_T_NUMBER);
    cr_assert_eq(envelope_since_read(&env.since, &pos), 0);
    cr_assert_eq(pos.offset, 41);
    cr_assert_null(pos.epoch.raw);
    cr_assert_eq(parse_json(&env, "{\"op\":\"join\",\"group\":\"g\",\"since\":"
                                  "{\"offset\":3,\"epoch\":\"ab\"}}"),
                 0);
    cr_assert_eq(envelope_since_read(&env.since, &pos), 0);
    cr_assert_eq(pos.offset, 3);
    cr_assert(envelope_str_equal(&pos.epoch, "ab", 2));
    cr_assert_eq(parse_json(&env, "{\"op\":\"join\",\"group\":\"g\"}"), 0);
    cr_assert_null(env.since.p);
    cr_assert_eq(envelope_since_read(&env.since, &pos), WSD_EINVAL);
}

/* ---- encoders ---- */

/* Checks out holds exactly one MessagePack object and returns it as JSON text. */
static char *mp_as_json(struct buf *out, struct buf *json)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    cr_assert_eq(msgpack_unpack_next(&u, (const char *)out->data, out->len, &off),
                 MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(off, out->len);
    msgpack_unpacked_destroy(&u);
    json->len = 0;
    cr_assert_eq(envelope_encode_data(json, ENVELOPE_JSON, ENVELOPE_MSGPACK, out->data,
                                      out->len),
                 0);
    return buf_cstr(json);
}

static void check_json_text(struct buf *out, const char *want)
{
    cr_assert_str_eq(buf_cstr(out), want);
    cr_assert_eq(json_validate(out->data, out->len, NULL), 0);
}

typedef int (*encode_fn)(struct buf *out, enum envelope_encoding enc, const void *arg);

/* Encodes with fn in both encodings; both must read as want. */
static void check_both(encode_fn fn, const void *arg, const char *want)
{
    struct buf a, b, j;
    buf_init(&a);
    buf_init(&b);
    buf_init(&j);
    cr_assert_eq(fn(&a, ENVELOPE_JSON, arg), 0);
    check_json_text(&a, want);
    cr_assert_eq(fn(&b, ENVELOPE_MSGPACK, arg), 0);
    cr_assert_str_eq(mp_as_json(&b, &j), want);
    buf_fini(&a);
    buf_fini(&b);
    buf_fini(&j);
}

static int enc_reply(struct buf *out, enum envelope_encoding enc, const void *arg)
{
    return envelope_encode_reply(out, enc, arg);
}

static int enc_pong(struct buf *out, enum envelope_encoding enc, const void *arg)
{
    return envelope_encode_pong(out, enc, arg);
}

static int enc_error(struct buf *out, enum envelope_encoding enc, const void *arg)
{
    return envelope_encode_error(out, enc, arg, "bad_field", "group must be a \"string\"");
}

Test(envelope, encodes_reply_pong_and_error_with_the_id)
{
    struct envelope_id sid = {.kind = ENVELOPE_ID_STRING, .len = 3, .str = "r\"1"};
    struct envelope_id iid = {.kind = ENVELOPE_ID_INT, .num = -9};
    struct envelope_id none = {.kind = ENVELOPE_ID_NONE};
    check_both(enc_reply, &sid, "{\"op\":\"reply\",\"id\":\"r\\\"1\",\"ok\":true}");
    check_both(enc_reply, &iid, "{\"op\":\"reply\",\"id\":-9,\"ok\":true}");
    check_both(enc_reply, &none, "{\"op\":\"reply\",\"ok\":true}");
    check_both(enc_pong, &iid, "{\"op\":\"pong\",\"id\":-9}");
    check_both(enc_pong, NULL, "{\"op\":\"pong\"}");
    check_both(enc_error, &sid, "{\"op\":\"error\",\"code\":\"bad_field\",\"message\":"
                                "\"group must be a \\\"string\\\"\",\"id\":\"r\\\"1\"}");
    check_both(enc_error, NULL, "{\"op\":\"error\",\"code\":\"bad_field\",\"message\":"
                                "\"group must be a \\\"string\\\"\"}");
}

static int enc_reply_fields(struct buf *out, enum envelope_encoding enc, const void *arg)
{
    struct envelope_writer w;
    static const char *const users[] = {"ann", "b\xc3\xb6"};
    envelope_writer_init(&w, out, enc);
    envelope_w_reply_begin(&w, arg, 5);
    envelope_w_key(&w, "group");
    envelope_w_cstr(&w, "g");
    envelope_w_key(&w, "offset");
    envelope_w_uint(&w, UINT64_MAX);
    envelope_w_key(&w, "duplicate");
    envelope_w_bool(&w, false);
    envelope_w_key(&w, "users");
    envelope_w_array(&w, 2);
    for (size_t i = 0; i < 2; i++)
        envelope_w_cstr(&w, users[i]);
    envelope_w_array_end(&w);
    envelope_w_key(&w, "since");
    envelope_w_position(&w, 4, "ep", 2);
    envelope_w_map_end(&w);
    return envelope_writer_finish(&w);
}

Test(envelope, writer_builds_replies_with_extra_fields)
{
    struct envelope_id iid = {.kind = ENVELOPE_ID_INT, .num = 1};
    check_both(enc_reply_fields, &iid,
               "{\"op\":\"reply\",\"id\":1,\"ok\":true,\"group\":\"g\",\"offset\":"
               "18446744073709551615,\"duplicate\":false,\"users\":[\"ann\",\"b\xc3\xb6\"],"
               "\"since\":{\"offset\":4,\"epoch\":\"ep\"}}");
}

Test(envelope, writer_reports_misuse_and_bad_utf8)
{
    struct buf out;
    struct envelope_writer w;
    buf_init(&out);
    envelope_writer_init(&w, &out, ENVELOPE_JSON);
    envelope_w_map(&w, 1);
    envelope_w_key(&w, "a");
    envelope_w_str(&w, "\xff", 1);
    envelope_w_map_end(&w);
    cr_assert_eq(envelope_writer_finish(&w), WSD_EUTF8);
    out.len = 0;
    envelope_writer_init(&w, &out, ENVELOPE_MSGPACK);
    envelope_w_str(&w, "\xc0\x80", 2);
    cr_assert_eq(envelope_writer_finish(&w), WSD_EUTF8);
    out.len = 0;
    envelope_writer_init(&w, &out, ENVELOPE_JSON);
    envelope_w_map(&w, 1);
    cr_assert_eq(envelope_writer_finish(&w), WSD_EINVAL);
    envelope_w_map_end(&w);
    envelope_w_map_end(&w);
    cr_assert_eq(envelope_writer_finish(&w), WSD_EINVAL);
    buf_fini(&out);
}

static int enc_welcome(struct buf *out, enum envelope_encoding enc, const void *arg)
{
    static const struct envelope_group_pos groups[] = {
        {"room:\"1\"", 8, 10, "e1", 2},
        {"b", 1, 0, "e2", 2},
    };
    struct envelope_welcome wl = {
        .conn = 77,
        .user = "alice",
        .user_len = 5,
        .session = "s-1",
        .session_len = 3,
        .heartbeat = 30,
        .resumed = arg != NULL,
        .personal_offset = 5,
        .personal_epoch = "pe",
        .personal_epoch_len = 2,
        .recovered = true,
        .groups = groups,
        .num_groups = 2,
    };
    struct envelope_id id = {.kind = ENVELOPE_ID_STRING, .len = 1, .str = "a"};
    return envelope_encode_welcome(out, enc, arg ? &id : NULL, &wl);
}

Test(envelope, encodes_welcome_fresh_and_resumed)
{
    check_both(enc_welcome, NULL,
               "{\"op\":\"welcome\",\"conn\":77,\"user\":\"alice\",\"session\":\"s-1\","
               "\"heartbeat\":30,\"resumed\":false,\"personal\":{\"offset\":5,\"epoch\":\"pe\"}}");
    check_both(enc_welcome, "resumed",
               "{\"op\":\"welcome\",\"id\":\"a\",\"conn\":77,\"user\":\"alice\",\"session\":"
               "\"s-1\",\"heartbeat\":30,\"resumed\":true,\"personal\":{\"offset\":5,\"epoch\":"
               "\"pe\"},\"recovered\":true,\"groups\":{\"room:\\\"1\\\"\":{\"offset\":10,"
               "\"epoch\":\"e1\"},\"b\":{\"offset\":0,\"epoch\":\"e2\"}}}");
}

struct msg_arg {
    struct envelope_msg m;
    enum envelope_encoding src;
    const uint8_t *data;
    size_t len;
};

static int enc_msg(struct buf *out, enum envelope_encoding enc, const void *arg)
{
    const struct msg_arg *a = arg;
    return envelope_encode_msg(out, enc, &a->m, a->src, a->data, a->len);
}

Test(envelope, encodes_msg_around_data_in_both_encodings)
{
    const char *data = "{\"t\":\"hi\",\"n\":[1,-2,2.5]}";
    struct buf mp;
    buf_init(&mp);
    to_msgpack(data, &mp);
    struct msg_arg a = {
        .m = {.ch = "room", .ch_len = 4, .has_off = true, .off = 12, .mid = "m1", .mid_len = 2,
              .from = "bob", .from_len = 3, .ts_ms = 1700000000123ull},
        .src = ENVELOPE_JSON,
        .data = (const uint8_t *)data,
        .len = strlen(data),
    };
    const char *want = "{\"op\":\"msg\",\"ch\":\"room\",\"off\":12,\"mid\":\"m1\",\"from\":\"bob\","
                       "\"ts\":1700000000123,\"data\":{\"t\":\"hi\",\"n\":[1,-2,2.5]}}";
    check_both(enc_msg, &a, want);
    a.src = ENVELOPE_MSGPACK;
    a.data = mp.data;
    a.len = mp.len;
    check_both(enc_msg, &a, want);
    a.m = (struct envelope_msg){.ch = "*", .ch_len = 1, .mid = "x", .mid_len = 1, .from = "",
                                .from_len = 0, .ts_ms = 5, .sys = true};
    check_both(enc_msg, &a,
               "{\"op\":\"msg\",\"ch\":\"*\",\"mid\":\"x\",\"from\":\"\",\"ts\":5,\"sys\":true,"
               "\"data\":{\"t\":\"hi\",\"n\":[1,-2,2.5]}}");
    buf_fini(&mp);
}

Test(envelope, msg_prefix_data_suffix_equals_the_whole_msg)
{
    const char *data = "[true,{\"k\":\"\\u00e9\"}]";
    struct envelope_msg m = {.ch = "@", .ch_len = 1, .has_off = true, .off = 1, .mid = "q",
                             .mid_len = 1, .from = "u", .from_len = 1, .ts_ms = 9};
    for (int enc = ENVELOPE_JSON; enc <= ENVELOPE_MSGPACK; enc++) {
        struct buf whole, parts;
        buf_init(&whole);
        buf_init(&parts);
        cr_assert_eq(envelope_encode_msg(&whole, enc, &m, ENVELOPE_JSON,
                                         (const uint8_t *)data, strlen(data)),
                     0);
        cr_assert_eq(envelope_encode_msg_prefix(&parts, enc, &m), 0);
        cr_assert_eq(envelope_encode_data(&parts, enc, ENVELOPE_JSON, (const uint8_t *)data,
                                          strlen(data)),
                     0);
        cr_assert_eq(envelope_encode_msg_suffix(&parts, enc), 0);
        cr_assert_eq(whole.len, parts.len);
        cr_assert(memcmp(whole.data, parts.data, whole.len) == 0);
        buf_fini(&whole);
        buf_fini(&parts);
    }
}

Test(envelope, copies_data_verbatim_within_one_encoding)
{
    const char *data = "{ \"a\" :  [1.50, 1e2, \"\\u00e9\"] }";
    struct buf out;
    buf_init(&out);
    cr_assert_eq(envelope_encode_data(&out, ENVELOPE_JSON, ENVELOPE_JSON, (const uint8_t *)data,
                                      strlen(data)),
                 0);
    cr_assert_str_eq(buf_cstr(&out), data);
    buf_fini(&out);
}

/* ---- transcoding ---- */

static void round_trip(const char *json)
{
    struct buf mp, back;
    buf_init(&mp);
    buf_init(&back);
    to_msgpack(json, &mp);
    cr_assert_str_eq(mp_as_json(&mp, &back), json);
    buf_fini(&mp);
    buf_fini(&back);
}

Test(envelope, transcodes_canonical_json_through_msgpack_unchanged)
{
    round_trip("null");
    round_trip("[true,false,null]");
    round_trip("{\"a\":{\"b\":[1,-1,0,18446744073709551615,-9223372036854775808]}}");
    round_trip("[0.5,-2.25,1e+300,0.1,1.0]");
    round_trip("\"\\\"quote\\\\ \\n\\u0001 \xc3\xa9\xf0\x9f\x98\x80\"");
    round_trip("{}");
    round_trip("[]");
    round_trip("[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]");
}

Test(envelope, transcodes_json_numbers_by_kind)
{
    struct buf mp, back;
    buf_init(&mp);
    buf_init(&back);
    to_msgpack("[1,-1,2.5,18446744073709551616,1E2,\"\\u00e9\"]", &mp);
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    cr_assert_eq(msgpack_unpack_next(&u, (const char *)mp.data, mp.len, &off),
                 MSGPACK_UNPACK_SUCCESS);
    msgpack_object_array *a = &u.data.via.array;
    cr_assert_eq(a->size, 6);
    cr_assert_eq(a->ptr[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    cr_assert_eq(a->ptr[1].type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    cr_assert_eq(a->ptr[2].type, MSGPACK_OBJECT_FLOAT64);
    cr_assert_eq(a->ptr[3].type, MSGPACK_OBJECT_FLOAT64);
    cr_assert_eq(a->ptr[3].via.f64, 18446744073709551616.0);
    cr_assert_eq(a->ptr[4].type, MSGPACK_OBJECT_FLOAT64);
    cr_assert_eq(a->ptr[4].via.f64, 100.0);
    cr_assert_eq(a->ptr[5].type, MSGPACK_OBJECT_STR);
    cr_assert(a->ptr[5].via.str.size == 2 && memcmp(a->ptr[5].via.str.ptr, "\xc3\xa9", 2) == 0);
    msgpack_unpacked_destroy(&u);
    buf_fini(&mp);
    buf_fini(&back);
}

Test(envelope, transcodes_large_containers_with_the_right_counts)
{
    size_t counts[] = {15, 16, 65535, 65536};
    for (size_t c = 0; c < WSD_ARRAY_LEN(counts); c++) {
        size_t n = counts[c];
        char *json = malloc(n * 12 + 16);
        size_t o = 0;
        json[o++] = '{';
        for (size_t i = 0; i < n; i++)
            o += (size_t)sprintf(json + o, "%s\"%zx\":[]", i ? "," : "", i);
        json[o++] = '}';
        json[o] = '\0';
        struct buf mp, back;
        buf_init(&mp);
        buf_init(&back);
        to_msgpack(json, &mp);
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_unpacked_init(&u);
        cr_assert_eq(msgpack_unpack_next(&u, (const char *)mp.data, mp.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
        cr_assert_eq(u.data.type, MSGPACK_OBJECT_MAP);
        cr_assert_eq(u.data.via.map.size, n);
        cr_assert_eq(off, mp.len);
        msgpack_unpacked_destroy(&u);
        cr_assert_str_eq(mp_as_json(&mp, &back), json);
        free(json);
        buf_fini(&mp);
        buf_fini(&back);
    }
}

static void check_mp_to_json(void (*pack)(msgpack_packer *pk), const char *want)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct buf out;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack(&pk);
    buf_init(&out);
    cr_assert_eq(envelope_encode_data(&out, ENVELOPE_JSON, ENVELOPE_MSGPACK,
                                      (const uint8_t *)sb.data, sb.size),
                 0);
    check_json_text(&out, want);
    buf_fini(&out);
    msgpack_sbuffer_destroy(&sb);
}

static void pack_bins(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_bin_with_body(pk, "", 0);
    msgpack_pack_bin_with_body(pk, "f", 1);
    msgpack_pack_bin_with_body(pk, "fo", 2);
    msgpack_pack_bin_with_body(pk, "\xfb\xff\xbf", 3);
}

static void pack_floats(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_float(pk, 0.1f);
    msgpack_pack_double(pk, 0.1);
    msgpack_pack_double(pk, 3.0);
    msgpack_pack_float(pk, -1e10f);
}

static void pack_strings(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "k\"\n", 3);
    msgpack_pack_str_with_body(pk, "\x01/\xc3\xa9", 4);
}

Test(envelope, transcodes_msgpack_bin_floats_and_strings_to_json)
{
    check_mp_to_json(pack_bins, "[\"\",\"Zg==\",\"Zm8=\",\"+/+/\"]");
    check_mp_to_json(pack_floats, "[0.1,0.1,3.0,-1e+10]");
    check_mp_to_json(pack_strings, "{\"k\\\"\\n\":\"\\u0001/\xc3\xa9\"}");
    check_mp_to_json(pack_good, "{\"b\":\"AP8=\",\"f\":1.5,\"n\":-5}");
}

Test(envelope, refuses_to_transcode_what_json_cannot_carry)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct buf out;
    void (*bad[])(msgpack_packer *) = {pack_ext, pack_nan, pack_int_key, pack_bad_utf8};
    buf_init(&out);
    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        bad[i](&pk);
        cr_assert_eq(envelope_encode_data(&out, ENVELOPE_JSON, ENVELOPE_MSGPACK,
                                          (const uint8_t *)sb.data, sb.size),
                     WSD_EINVAL, "case %zu", i);
        msgpack_sbuffer_destroy(&sb);
    }
    cr_assert_eq(envelope_encode_data(&out, ENVELOPE_MSGPACK, ENVELOPE_JSON,
                                      (const uint8_t *)"[1e400]", 7),
                 WSD_EINVAL);
    cr_assert_eq(envelope_encode_data(&out, ENVELOPE_MSGPACK, ENVELOPE_JSON,
                                      (const uint8_t *)"[1,", 3),
                 WSD_EINVAL);
    buf_fini(&out);
}

Test(envelope, names_errors_and_ops)
{
    cr_assert_str_eq(envelope_error_code(ENVELOPE_ERR_BAD_JSON), "bad_json");
    cr_assert_str_eq(envelope_error_code(ENVELOPE_ERR_BAD_MSGPACK), "bad_msgpack");
    cr_assert_str_eq(envelope_error_code(ENVELOPE_ERR_BAD_ENVELOPE), "bad_envelope");
    cr_assert_str_eq(envelope_error_code(ENVELOPE_ERR_UNKNOWN_OP), "unknown_op");
    cr_assert_str_eq(envelope_error_code(ENVELOPE_ERR_MISSING_FIELD), "missing_field");
    cr_assert_str_eq(envelope_error_code(ENVELOPE_ERR_BAD_FIELD), "bad_field");
    cr_assert_str_eq(envelope_error_code(ENVELOPE_ERR_TOO_LARGE), "too_large");
    cr_assert_str_eq(envelope_op_name(ENVELOPE_OP_BROADCAST), "broadcast");
    cr_assert_str_eq(envelope_op_name(ENVELOPE_OP_UNKNOWN), "unknown");
}
