/* deflate_test.c - permessage-deflate negotiation, compression and bounded inflation. */
#include "proto/deflate.h"
#include "core/buf.h"
#include "core/wsd.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const struct pmd_config default_cfg = {
    .enabled = true,
    .level = 1,
    .min_size = 64,
    .max_window_bits = 15,
    .mem_level = 8,
};

/* ---- helpers ---- */

static int negotiate_one(const char *value, const struct pmd_config *cfg,
                         struct pmd_params *out)
{
    const char *values[1] = {value};
    size_t lens[1] = {strlen(value)};
    return pmd_negotiate(values, lens, 1, cfg, out);
}

/* Negotiates value and writes the response (or "" when declined) into resp. */
static int negotiate_response(const char *value, const struct pmd_config *cfg, char *resp,
                              size_t cap)
{
    struct pmd_params p;
    int rc = negotiate_one(value, cfg, &p);
    resp[0] = '\0';
    if (rc == 1)
        cr_assert_gt(pmd_response_value(&p, resp, cap), 0);
    return rc;
}

static uint32_t rng_next(uint32_t *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

static struct pmd_params params(bool snct, bool cnct, int sbits, int cbits)
{
    return (struct pmd_params){
        .server_no_context_takeover = snct,
        .client_no_context_takeover = cnct,
        .server_max_window_bits = sbits,
        .client_max_window_bits = cbits,
    };
}

/* A receiving stream matching what the sender s deflates with. */
static void peer_init(struct pmd_stream *peer, const struct pmd_params *sent)
{
    struct pmd_params p = params(false, sent->server_no_context_takeover, 15,
                                 sent->server_max_window_bits);
    pmd_stream_init(peer, &p, 1, 8);
}

static void deflate_msg(struct pmd_stream *s, const void *msg, size_t len, struct buf *out)
{
    out->len = 0;
    cr_assert_eq(pmd_deflate(s, msg, len, out), 0);
}

/* Inflates a whole message fed in chunks chosen by mode: 0 whole, 1 byte by byte, else
   random sizes seeded by mode. */
static int inflate_chunked(struct pmd_stream *s, const uint8_t *in, size_t len,
                           struct buf *out, size_t limit, uint32_t mode)
{
    size_t off = 0;
    out->len = 0;
    do {
        size_t n = len - off;
        if (mode == 1)
            n = WSD_MIN(n, (size_t)1);
        else if (mode > 1) {
            size_t r = rng_next(&mode) % 17;
            n = WSD_MIN(n, r);
        }
        bool fin = off + n == len;
        int rc = pmd_inflate(s, in + off, n, fin, out, limit);
        if (rc < 0)
            return rc;
        off += n;
        if (fin)
            return 0;
    } while (1);
}

static void expect_inflates_to(struct pmd_stream *s, const uint8_t *in, size_t len,
                               const char *text)
{
    struct buf out;
    buf_init(&out);
    cr_assert_eq(inflate_chunked(s, in, len, &out, 1 << 20, 0), 0);
    cr_assert_eq(out.len, strlen(text));
    cr_assert(out.len == 0 || memcmp(out.data, text, out.len) == 0);
    buf_fini(&out);
}

/* ---- negotiation ---- */

struct nego_case {
    const char *offer;
    int rc;
    const char *response; /* when rc == 1 */
};

static void run_nego_table(const struct nego_case *cases, size_t n,
                           const struct pmd_config *cfg)
{
    for (size_t i = 0; i < n; i++) {
        char resp[PMD_RESPONSE_MAX];
        int rc = negotiate_response(cases[i].offer, cfg, resp, sizeof(resp));
        cr_expect_eq(rc, cases[i].rc, "offer [%s]: rc %d, want %d", cases[i].offer, rc,
                     cases[i].rc);
        if (cases[i].rc == 1)
            cr_expect_str_eq(resp, cases[i].response, "offer [%s]", cases[i].offer);
    }
}

Test(pmd_negotiate, accepts_offers_of_real_clients)
{
    static const struct nego_case cases[] = {
        /* Chrome, node ws, python websockets */
        {"permessage-deflate; client_max_window_bits", 1, "permessage-deflate"},
        /* Firefox */
        {"permessage-deflate", 1, "permessage-deflate"},
        /* Safari / older Chrome */
        {"permessage-deflate; client_max_window_bits, x-webkit-deflate-frame", 1,
         "permessage-deflate"},
        /* python websockets with compression settings */
        {"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", 1,
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"},
    };
    run_nego_table(cases, WSD_ARRAY_LEN(cases), &default_cfg);
}

Test(pmd_negotiate, accepts_every_parameter_combination)
{
    static const struct nego_case cases[] = {
        {"permessage-deflate; server_no_context_takeover", 1,
         "permessage-deflate; server_no_context_takeover"},
        {"permessage-deflate; client_no_context_takeover", 1,
         "permessage-deflate; client_no_context_takeover"},
        {"permessage-deflate; server_max_window_bits=10", 1,
         "permessage-deflate; server_max_window_bits=10"},
        {"permessage-deflate; server_max_window_bits=9", 1,
         "permessage-deflate; server_max_window_bits=9"},
        {"permessage-deflate; server_max_window_bits=15", 1,
         "permessage-deflate; server_max_window_bits=15"},
        {"permessage-deflate; client_max_window_bits=10", 1,
         "permessage-deflate; client_max_window_bits=10"},
        /* 8 is never answered: zlib-based clients cannot compress with it */
        {"permessage-deflate; client_max_window_bits=8", 1, "permessage-deflate"},
        {"permessage-deflate; client_max_window_bits=9", 1,
         "permessage-deflate; client_max_window_bits=9"},
        {"permessage-deflate; client_max_window_bits=15", 1, "permessage-deflate"},
        {"permessage-deflate; client_no_context_takeover; server_no_context_takeover", 1,
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
        {"permessage-deflate; client_max_window_bits=11; server_max_window_bits=12; "
         "client_no_context_takeover; server_no_context_takeover",
         1,
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
         "server_max_window_bits=12; client_max_window_bits=11"},
        {"permessage-deflate; server_no_context_takeover; client_max_window_bits", 1,
         "permessage-deflate; server_no_context_takeover"},
    };
    run_nego_table(cases, WSD_ARRAY_LEN(cases), &default_cfg);
}

Test(pmd_negotiate, accepts_quoted_values_and_whitespace)
{
    static const struct nego_case cases[] = {
        {"permessage-deflate; server_max_window_bits=\"10\"", 1,
         "permessage-deflate; server_max_window_bits=10"},
        {"permessage-deflate; client_max_window_bits=\"1\\1\"", 1,
         "permessage-deflate; client_max_window_bits=11"},
        {"  permessage-deflate\t;  client_max_window_bits = 12 ,  foo ", 1,
         "permessage-deflate; client_max_window_bits=12"},
        {"permessage-deflate;server_max_window_bits=13;client_no_context_takeover", 1,
         "permessage-deflate; client_no_context_takeover; server_max_window_bits=13"},
        {", ,permessage-deflate,,", 1, "permessage-deflate"},
    };
    run_nego_table(cases, WSD_ARRAY_LEN(cases), &default_cfg);
}

Test(pmd_negotiate, declines_invalid_offers)
{
    static const struct nego_case cases[] = {
        {"permessage-deflate; foo", 0, NULL},
        {"permessage-deflate; foo=1", 0, NULL},
        {"permessage-deflate; Server_No_Context_Takeover", 0, NULL},
        {"permessage-deflate; client_max_window_bits; client_max_window_bits", 0, NULL},
        {"permessage-deflate; client_max_window_bits=10; client_max_window_bits=10", 0, NULL},
        {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", 0,
         NULL},
        {"permessage-deflate; client_no_context_takeover; client_no_context_takeover", 0,
         NULL},
        {"permessage-deflate; server_max_window_bits=10; server_max_window_bits=11", 0, NULL},
        {"permessage-deflate; server_no_context_takeover=1", 0, NULL},
        {"permessage-deflate; server_no_context_takeover=\"\"", 0, NULL},
        {"permessage-deflate; client_no_context_takeover=true", 0, NULL},
        {"permessage-deflate; server_max_window_bits", 0, NULL},
        {"permessage-deflate; server_max_window_bits=8", 0, NULL},
        {"permessage-deflate; server_max_window_bits=7", 0, NULL},
        {"permessage-deflate; server_max_window_bits=16", 0, NULL},
        {"permessage-deflate; server_max_window_bits=0", 0, NULL},
        {"permessage-deflate; server_max_window_bits=010", 0, NULL},
        {"permessage-deflate; server_max_window_bits=-10", 0, NULL},
        {"permessage-deflate; server_max_window_bits=1a", 0, NULL},
        {"permessage-deflate; server_max_window_bits=100", 0, NULL},
        {"permessage-deflate; server_max_window_bits=\"\"", 0, NULL},
        {"permessage-deflate; server_max_window_bits=\"1 0\"", 0, NULL},
        {"permessage-deflate; server_max_window_bits=\" 10\"", 0, NULL},
        {"permessage-deflate; client_max_window_bits=7", 0, NULL},
        {"permessage-deflate; client_max_window_bits=16", 0, NULL},
        {"permessage-deflate; client_max_window_bits=09", 0, NULL},
        {"permessage-deflate; client_max_window_bits=\"\"", 0, NULL},
        {"permessage-deflate; client_max_window_bits=99999999999999999999", 0, NULL},
        {"Permessage-Deflate", 0, NULL},
        {"x-webkit-deflate-frame", 0, NULL},
        {"permessage-deflate-x", 0, NULL},
        {"", 0, NULL},
        {" , ,", 0, NULL},
    };
    run_nego_table(cases, WSD_ARRAY_LEN(cases), &default_cfg);
}

Test(pmd_negotiate, falls_back_to_the_next_offer)
{
    static const struct nego_case cases[] = {
        {"permessage-deflate; server_max_window_bits=8, permessage-deflate; "
         "client_max_window_bits",
         1, "permessage-deflate"},
        {"permessage-deflate; foo, permessage-deflate; server_no_context_takeover", 1,
         "permessage-deflate; server_no_context_takeover"},
        {"permessage-deflate; server_max_window_bits=10, permessage-deflate", 1,
         "permessage-deflate; server_max_window_bits=10"},
        {"foo; bar=\"a b\", permessage-deflate; client_no_context_takeover", 1,
         "permessage-deflate; client_no_context_takeover"},
        {"permessage-deflate; a, permessage-deflate; b, permessage-deflate; c", 0, NULL},
    };
    run_nego_table(cases, WSD_ARRAY_LEN(cases), &default_cfg);
}

Test(pmd_negotiate, rejects_unparsable_headers)
{
    static const char *const bad[] = {
        "permessage-deflate;",
        "permessage-deflate; ",
        "permessage-deflate;;client_max_window_bits",
        "permessage-deflate; =10",
        "permessage-deflate; client_max_window_bits=",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate; client_max_window_bits=\"10\\",
        "permessage-deflate; client_max_window_bits=1=0",
        "permessage-deflate; client_max_window_bits=10 11",
        "permessage-deflate client_max_window_bits",
        "permessage-deflate; client_max_window_bits=\"1\"0",
        "permessage-deflate; a=\"\x01\"",
        "permessage-deflate; a=\"\\\x01\"",
        "@",
        "\"permessage-deflate\"",
        "permessage-deflate\x01",
        "permessage-deflate, ;",
        "; permessage-deflate",
        "permessage-deflate, foo bar",
        "per message-deflate",
    };
    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++) {
        struct pmd_params p;
        cr_expect_eq(negotiate_one(bad[i], &default_cfg, &p), WSD_EINVAL, "[%s]", bad[i]);
    }
}

Test(pmd_negotiate, answers_configured_window_and_context_takeover)
{
    struct pmd_config cfg = default_cfg;
    cfg.max_window_bits = 10;
    static const struct nego_case small_window[] = {
        {"permessage-deflate", 1, "permessage-deflate"},
        {"permessage-deflate; server_max_window_bits=12", 1,
         "permessage-deflate; server_max_window_bits=10"},
        {"permessage-deflate; server_max_window_bits=9", 1,
         "permessage-deflate; server_max_window_bits=9"},
        {"permessage-deflate; client_max_window_bits", 1,
         "permessage-deflate; client_max_window_bits=10"},
        {"permessage-deflate; client_max_window_bits=9", 1,
         "permessage-deflate; client_max_window_bits=9"},
        {"permessage-deflate; client_max_window_bits=14", 1,
         "permessage-deflate; client_max_window_bits=10"},
    };
    run_nego_table(small_window, WSD_ARRAY_LEN(small_window), &cfg);

    cfg = default_cfg;
    cfg.server_no_context_takeover = true;
    cfg.client_no_context_takeover = true;
    static const struct nego_case no_takeover[] = {
        {"permessage-deflate", 1,
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
        {"permessage-deflate; server_no_context_takeover", 1,
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
    };
    run_nego_table(no_takeover, WSD_ARRAY_LEN(no_takeover), &cfg);
}

Test(pmd_negotiate, fills_params_with_the_agreed_windows)
{
    struct pmd_config cfg = default_cfg;
    cfg.max_window_bits = 11;
    struct pmd_params p;
    cr_assert_eq(negotiate_one("permessage-deflate", &cfg, &p), 1);
    cr_expect_eq(p.server_max_window_bits, 11);
    cr_expect_not(p.server_max_window_bits_sent);
    cr_expect_eq(p.client_max_window_bits, 15);
    cr_expect_not(p.client_max_window_bits_sent);
    cr_expect_not(p.server_no_context_takeover);
    cr_expect_not(p.client_no_context_takeover);

    cr_assert_eq(negotiate_one("permessage-deflate; server_max_window_bits=14; "
                               "client_max_window_bits=9; server_no_context_takeover",
                               &default_cfg, &p),
                 1);
    cr_expect_eq(p.server_max_window_bits, 14);
    cr_expect(p.server_max_window_bits_sent);
    cr_expect_eq(p.client_max_window_bits, 9);
    cr_expect(p.client_max_window_bits_sent);
    cr_expect(p.server_no_context_takeover);
}

Test(pmd_negotiate, takes_offers_from_every_header_value)
{
    const char *values[] = {"foo", "permessage-deflate; server_max_window_bits=8",
                            "permessage-deflate; client_no_context_takeover"};
    size_t lens[3];
    for (size_t i = 0; i < 3; i++)
        lens[i] = strlen(values[i]);
    struct pmd_params p;
    cr_assert_eq(pmd_negotiate(values, lens, 3, &default_cfg, &p), 1);
    cr_expect(p.client_no_context_takeover);

    /* a later value that cannot be parsed fails the whole header, even after a match */
    values[2] = "permessage-deflate;";
    lens[2] = strlen(values[2]);
    values[1] = "permessage-deflate";
    lens[1] = strlen(values[1]);
    cr_expect_eq(pmd_negotiate(values, lens, 3, &default_cfg, &p), WSD_EINVAL);

    /* split offers give the same answer as the comma-joined list */
    const char *split[] = {"permessage-deflate; foo", "",
                           "permessage-deflate; server_max_window_bits=11"};
    size_t split_lens[] = {strlen(split[0]), 0, strlen(split[2])};
    cr_assert_eq(pmd_negotiate(split, split_lens, 3, &default_cfg, &p), 1);
    cr_expect_eq(p.server_max_window_bits, 11);
    cr_expect_eq(pmd_negotiate(NULL, NULL, 0, &default_cfg, &p), 0);
}

Test(pmd_negotiate, declines_everything_when_disabled)
{
    struct pmd_config cfg = default_cfg;
    cfg.enabled = false;
    struct pmd_params p = {.server_max_window_bits = 99};
    cr_expect_eq(negotiate_one("permessage-deflate", &cfg, &p), 0);
    cr_expect_eq(p.server_max_window_bits, 99, "out is left alone when declining");
}

/* Places value so that its last byte is the last readable byte before a PROT_NONE page. */
static const char *at_guard_page(const char *value, void **map, size_t *map_len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    *map_len = 2 * page;
    uint8_t *m = mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + page, page, PROT_NONE), 0);
    size_t len = strlen(value);
    memcpy(m + page - len, value, len);
    *map = m;
    return (const char *)(m + page - len);
}

Test(pmd_negotiate, never_reads_past_the_value)
{
    static const struct nego_case cases[] = {
        {"permessage-deflate; client_max_window_bits", 1, NULL},
        {"permessage-deflate; client_max_window_bits=1", 0, NULL},
        {"permessage-deflate; server_max_window_bits=\"10\"", 1, NULL},
        {"permessage-deflate; a=\"x", WSD_EINVAL, NULL},
        {"permessage-deflate; a=\"x\\", WSD_EINVAL, NULL},
        {"permessage-deflate; a=", WSD_EINVAL, NULL},
        {"permessage-deflate ", 1, NULL},
        {"permessage-deflate,", 1, NULL},
    };
    for (size_t i = 0; i < WSD_ARRAY_LEN(cases); i++) {
        void *map;
        size_t map_len;
        const char *v = at_guard_page(cases[i].offer, &map, &map_len);
        size_t len = strlen(cases[i].offer);
        struct pmd_params p;
        cr_expect_eq(pmd_negotiate(&v, &len, 1, &default_cfg, &p), cases[i].rc, "[%s]",
                     cases[i].offer);
        munmap(map, map_len);
    }
}

static bool same_params(const struct pmd_params *a, const struct pmd_params *b)
{
    return a->server_no_context_takeover == b->server_no_context_takeover &&
           a->client_no_context_takeover == b->client_no_context_takeover &&
           a->server_max_window_bits == b->server_max_window_bits &&
           a->client_max_window_bits == b->client_max_window_bits &&
           a->server_max_window_bits_sent == b->server_max_window_bits_sent &&
           a->client_max_window_bits_sent == b->client_max_window_bits_sent;
}

Test(pmd_negotiate, response_negotiates_back_to_the_same_params)
{
    static const char *const offers[] = {
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=8; server_max_window_bits=9",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
    };
    for (int bits = 9; bits <= 15; bits++) {
        struct pmd_config cfg = default_cfg;
        cfg.max_window_bits = bits;
        for (size_t i = 0; i < WSD_ARRAY_LEN(offers); i++) {
            struct pmd_params p, back;
            char resp[PMD_RESPONSE_MAX];
            cr_assert_eq(negotiate_one(offers[i], &cfg, &p), 1);
            cr_assert_gt(pmd_response_value(&p, resp, sizeof(resp)), 0);
            cr_assert_eq(negotiate_one(resp, &cfg, &back), 1, "[%s]", resp);
            cr_expect(same_params(&p, &back), "[%s] from [%s]", resp, offers[i]);
        }
    }
}

Test(pmd_response_value, reports_a_buffer_too_small)
{
    struct pmd_params p = params(true, true, 12, 10);
    p.server_max_window_bits_sent = true;
    p.client_max_window_bits_sent = true;
    const char *want = "permessage-deflate; server_no_context_takeover; "
                       "client_no_context_takeover; server_max_window_bits=12; "
                       "client_max_window_bits=10";
    char out[PMD_RESPONSE_MAX];
    size_t len = strlen(want);
    cr_assert_lt(len, sizeof(out));
    cr_expect_eq(pmd_response_value(&p, out, len + 1), (int)len);
    cr_expect_str_eq(out, want);
    cr_expect_eq(pmd_response_value(&p, out, len), WSD_ETOOBIG);
    cr_expect_eq(pmd_response_value(&p, out, 0), WSD_ETOOBIG);
    p = params(false, false, 15, 15);
    cr_expect_eq(pmd_response_value(&p, out, sizeof(out)), (int)strlen("permessage-deflate"));
    cr_expect_str_eq(out, "permessage-deflate");
}

/* ---- inflation: the RFC 7692 section 7.2.3 examples ---- */

Test(pmd_inflate, inflates_the_rfc_hello_example)
{
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    struct pmd_params p = params(false, false, 15, 15);
    for (uint32_t mode = 0; mode < 6; mode++) {
        struct pmd_stream s;
        pmd_stream_init(&s, &p, 1, 8);
        struct buf out;
        buf_init(&out);
        cr_assert_eq(inflate_chunked(&s, hello, sizeof(hello), &out, 100, mode), 0);
        cr_assert_eq(out.len, 5);
        cr_expect_eq(memcmp(out.data, "Hello", 5), 0);
        buf_fini(&out);
        pmd_stream_fini(&s);
    }
}

Test(pmd_inflate, inflates_the_rfc_shared_context_example)
{
    static const uint8_t first[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t second[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    struct pmd_params p = params(false, false, 15, 15);
    struct pmd_stream s;
    pmd_stream_init(&s, &p, 1, 8);
    expect_inflates_to(&s, first, sizeof(first), "Hello");
    expect_inflates_to(&s, second, sizeof(second), "Hello");
    pmd_stream_fini(&s);
}

Test(pmd_inflate, inflates_the_other_rfc_examples)
{
    /* 7.2.3.3 no compression, 7.2.3.4 BFINAL set, 7.2.3.5 two blocks, 7.2.3.6 empty */
    static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65,
                                     0x6c, 0x6c, 0x6f, 0x00};
    static const uint8_t bfinal[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t two[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                  0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t empty[] = {0x00};
    struct pmd_params p = params(false, false, 15, 15);
    struct pmd_stream s;
    pmd_stream_init(&s, &p, 1, 8);
    expect_inflates_to(&s, stored, sizeof(stored), "Hello");
    expect_inflates_to(&s, bfinal, sizeof(bfinal), "Hello");
    expect_inflates_to(&s, two, sizeof(two), "Hello");
    expect_inflates_to(&s, empty, sizeof(empty), "");
    pmd_stream_fini(&s);
}

Test(pmd_inflate, starts_a_new_stream_after_a_bfinal_block)
{
    /* "Hello" with BFINAL set, then more data in the same message and in the next one */
    static const uint8_t twice[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00,
                                    0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t bfinal[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    struct pmd_params p = params(false, false, 15, 15);
    for (uint32_t mode = 0; mode < 8; mode++) {
        struct pmd_stream s;
        pmd_stream_init(&s, &p, 1, 8);
        struct buf out;
        buf_init(&out);
        cr_assert_eq(inflate_chunked(&s, twice, sizeof(twice), &out, 100, mode), 0);
        cr_expect(out.len == 10 && memcmp(out.data, "HelloHello", 10) == 0, "mode %u", mode);
        cr_assert_eq(inflate_chunked(&s, bfinal, sizeof(bfinal), &out, 100, mode), 0);
        cr_expect(out.len == 5 && memcmp(out.data, "Hello", 5) == 0, "mode %u", mode);
        cr_assert_eq(inflate_chunked(&s, hello, sizeof(hello), &out, 100, mode), 0);
        cr_expect(out.len == 5 && memcmp(out.data, "Hello", 5) == 0, "mode %u", mode);
        buf_fini(&out);
        pmd_stream_fini(&s);
    }
}

Test(pmd_inflate, rejects_corrupt_data)
{
    static const struct {
        uint8_t data[8];
        size_t len;
    } bad[] = {
        {{0xff, 0xff, 0xff, 0xff}, 4},             /* reserved block type */
        {{0x06}, 1},                               /* BTYPE 11 */
        {{0x00, 0x0a, 0x00, 0xf5, 0xff, 0x48}, 6}, /* stored block cut short */
        {{0x00, 0x05, 0x00, 0x05, 0x00}, 5},       /* LEN and NLEN disagree */
        {{0xf2, 0x48, 0xcd}, 3},                   /* stops inside a block */
        {{0}, 0},                                  /* empty payload: needs 0x00 */
        {{0xf2, 0x00, 0x11, 0x00, 0x00}, 5},       /* refers to history it lacks */
    };
    struct pmd_params p = params(false, false, 15, 15);
    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++) {
        for (uint32_t mode = 0; mode < 3; mode++) {
            struct pmd_stream s;
            pmd_stream_init(&s, &p, 1, 8);
            struct buf out;
            buf_init(&out);
            cr_expect_eq(inflate_chunked(&s, bad[i].data, bad[i].len, &out, 1000, mode),
                         WSD_EINVAL, "case %zu mode %u", i, mode);
            /* the stream is reset and usable again */
            static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
            expect_inflates_to(&s, hello, sizeof(hello), "Hello");
            buf_fini(&out);
            pmd_stream_fini(&s);
        }
    }
}

/* ---- limits ---- */

Test(pmd_inflate, stops_a_compression_bomb_within_the_limit)
{
    size_t big = 10u << 20;
    uint8_t *zeros = calloc(1, big);
    cr_assert_not_null(zeros);
    struct pmd_params p = params(false, false, 15, 15);
    struct pmd_stream tx, rx;
    pmd_stream_init(&tx, &p, 9, 9);
    pmd_stream_init(&rx, &p, 1, 8);
    struct buf bomb, out;
    buf_init(&bomb);
    buf_init(&out);
    deflate_msg(&tx, zeros, big, &bomb);
    cr_assert_lt(bomb.len, 16u * 1024u, "bomb is %zu bytes", bomb.len);
    size_t limit = 1u << 20;
    int rc = 0;
    for (size_t off = 0; off < bomb.len && rc == 0; off += 1000) {
        size_t n = WSD_MIN((size_t)1000, bomb.len - off);
        rc = pmd_inflate(&rx, bomb.data + off, n, off + n == bomb.len, &out, limit);
    }
    cr_expect_eq(rc, WSD_ETOOBIG);
    cr_expect_leq(out.len, limit + 1);
    cr_expect_leq(out.cap, limit + 64u * 1024u, "cap %zu", out.cap);
    buf_fini(&out);
    buf_fini(&bomb);
    pmd_stream_fini(&tx);
    pmd_stream_fini(&rx);
    free(zeros);
}

Test(pmd_inflate, accepts_a_message_of_exactly_the_limit)
{
    uint8_t msg[3000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 % 13);
    struct pmd_params p = params(true, true, 15, 15);
    struct pmd_stream tx, rx;
    pmd_stream_init(&tx, &p, 6, 8);
    pmd_stream_init(&rx, &p, 1, 8);
    struct buf z, out;
    buf_init(&z);
    buf_init(&out);
    deflate_msg(&tx, msg, sizeof(msg), &z);
    for (uint32_t mode = 0; mode < 4; mode++) {
        cr_expect_eq(inflate_chunked(&rx, z.data, z.len, &out, sizeof(msg), mode), 0);
        cr_expect_eq(out.len, sizeof(msg));
        cr_expect_leq(out.cap, sizeof(msg) + 1);
        cr_expect_eq(inflate_chunked(&rx, z.data, z.len, &out, sizeof(msg) - 1, mode),
                     WSD_ETOOBIG);
        cr_expect_leq(out.len, sizeof(msg));
        cr_expect_eq(inflate_chunked(&rx, z.data, z.len, &out, 0, mode), WSD_ETOOBIG);
        buf_fini(&out);
    }
    buf_fini(&z);
    pmd_stream_fini(&tx);
    pmd_stream_fini(&rx);
}

Test(pmd_inflate, counts_the_limit_across_chunks)
{
    uint8_t msg[100];
    memset(msg, 'a', sizeof(msg));
    struct pmd_params p = params(true, true, 15, 15);
    struct pmd_stream tx, rx;
    pmd_stream_init(&tx, &p, 0, 8); /* stored: output follows input closely */
    pmd_stream_init(&rx, &p, 1, 8);
    struct buf z, out;
    buf_init(&z);
    buf_init(&out);
    deflate_msg(&tx, msg, sizeof(msg), &z);
    size_t half = z.len / 2;
    cr_assert_eq(pmd_inflate(&rx, z.data, half, false, &out, 60), 0);
    cr_expect_leq(out.len, 60);
    /* the caller may consume output between chunks: the count is the stream's */
    out.len = 0;
    cr_expect_eq(pmd_inflate(&rx, z.data + half, z.len - half, true, &out, 60), WSD_ETOOBIG);
    cr_expect_leq(out.len, 61);
    buf_fini(&z);
    buf_fini(&out);
    pmd_stream_fini(&tx);
    pmd_stream_fini(&rx);
}

/* ---- round trips ---- */

static const char *const texts[] = {
    "Hello",
    "{\"op\":\"publish\",\"group\":\"chat\",\"data\":{\"text\":\"hello there\"}}",
    "",
    "{\"op\":\"publish\",\"group\":\"chat\",\"data\":{\"text\":\"hello there\"}}",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "",
    "Hello",
};

static void round_trip(const struct pmd_params *p, int level, uint32_t mode)
{
    struct pmd_stream tx, rx;
    pmd_stream_init(&tx, p, level, 8);
    peer_init(&rx, p);
    struct buf z, out;
    buf_init(&z);
    buf_init(&out);
    for (size_t i = 0; i < WSD_ARRAY_LEN(texts); i++) {
        size_t len = strlen(texts[i]);
        deflate_msg(&tx, texts[i], len, &z);
        cr_assert_gt(z.len, 0);
        if (len == 0)
            cr_expect(z.len == 1 && z.data[0] == 0x00, "empty message is 0x00");
        cr_assert_eq(inflate_chunked(&rx, z.data, z.len, &out, 1 << 16, mode), 0,
                     "message %zu level %d sbits %d", i, level, p->server_max_window_bits);
        cr_assert_eq(out.len, len);
        cr_assert(len == 0 || memcmp(out.data, texts[i], len) == 0);
    }
    buf_fini(&z);
    buf_fini(&out);
    pmd_stream_fini(&tx);
    pmd_stream_fini(&rx);
}

Test(pmd_stream, round_trips_every_parameter_combination)
{
    static const int bits[] = {9, 10, 12, 15};
    static const int levels[] = {0, 1, 6, 9};
    for (int flags = 0; flags < 4; flags++) {
        for (size_t b = 0; b < WSD_ARRAY_LEN(bits); b++) {
            for (size_t l = 0; l < WSD_ARRAY_LEN(levels); l++) {
                struct pmd_params p = params(flags & 1, flags & 2, bits[b], 15);
                round_trip(&p, levels[l], (uint32_t)(flags + b + l) % 3);
            }
        }
    }
}

Test(pmd_stream, round_trips_whole_byte_by_byte_and_in_random_chunks)
{
    struct pmd_params p = params(false, false, 15, 15);
    for (uint32_t mode = 0; mode < 20; mode++)
        round_trip(&p, 1, mode);
}

Test(pmd_stream, round_trips_a_large_message)
{
    size_t len = 3u << 20;
    uint8_t *msg = malloc(len);
    cr_assert_not_null(msg);
    uint32_t r = 42;
    for (size_t i = 0; i < len; i++)
        msg[i] = (uint8_t)(i % 1000 < 500 ? rng_next(&r) : 'x');
    struct pmd_params p = params(false, false, 15, 15);
    struct pmd_stream tx, rx;
    pmd_stream_init(&tx, &p, 1, 8);
    pmd_stream_init(&rx, &p, 1, 8);
    struct buf z, out;
    buf_init(&z);
    buf_init(&out);
    deflate_msg(&tx, msg, len, &z);
    cr_assert_eq(inflate_chunked(&rx, z.data, z.len, &out, len, 0), 0);
    cr_assert_eq(out.len, len);
    cr_expect_eq(memcmp(out.data, msg, len), 0);
    buf_fini(&z);
    buf_fini(&out);
    pmd_stream_fini(&tx);
    pmd_stream_fini(&rx);
    free(msg);
}

/* Deflates the same message twice; returns the two compressed sizes. */
static void deflate_twice(const struct pmd_params *p, size_t sizes[2], struct buf z[2])
{
    static const char msg[] = "{\"op\":\"publish\",\"group\":\"room-42\",\"data\":{\"user\":"
                              "\"alice\",\"text\":\"the quick brown fox jumps over\"}}";
    struct pmd_stream tx;
    pmd_stream_init(&tx, p, 6, 8);
    for (int i = 0; i < 2; i++) {
        buf_init(&z[i]);
        deflate_msg(&tx, msg, sizeof(msg) - 1, &z[i]);
        sizes[i] = z[i].len;
    }
    pmd_stream_fini(&tx);
}

Test(pmd_deflate, reuses_context_unless_told_not_to)
{
    struct pmd_params p = params(false, false, 15, 15);
    size_t sizes[2];
    struct buf z[2];
    deflate_twice(&p, sizes, z);
    cr_expect_lt(sizes[1], sizes[0] / 2, "with takeover: %zu then %zu", sizes[0], sizes[1]);
    buf_fini(&z[0]);
    buf_fini(&z[1]);

    p.server_no_context_takeover = true;
    deflate_twice(&p, sizes, z);
    cr_expect_eq(sizes[1], sizes[0], "without takeover: %zu then %zu", sizes[0], sizes[1]);
    cr_expect_eq(memcmp(z[0].data, z[1].data, sizes[0]), 0);
    buf_fini(&z[0]);
    buf_fini(&z[1]);
}

Test(pmd_inflate, resets_after_each_message_with_client_no_context_takeover)
{
    struct pmd_params sender = params(false, false, 15, 15);
    size_t sizes[2];
    struct buf z[2];
    deflate_twice(&sender, sizes, z);
    cr_assert_lt(sizes[1], sizes[0]);

    struct pmd_params p = params(false, true, 15, 15);
    struct pmd_stream rx;
    pmd_stream_init(&rx, &p, 1, 8);
    struct buf out;
    buf_init(&out);
    cr_expect_eq(inflate_chunked(&rx, z[0].data, z[0].len, &out, 4096, 0), 0);
    /* the second message refers to the first, which the reset forgot */
    cr_expect_eq(inflate_chunked(&rx, z[1].data, z[1].len, &out, 4096, 0), WSD_EINVAL);

    p.client_no_context_takeover = false;
    pmd_stream_fini(&rx);
    pmd_stream_init(&rx, &p, 1, 8);
    cr_expect_eq(inflate_chunked(&rx, z[0].data, z[0].len, &out, 4096, 0), 0);
    cr_expect_eq(inflate_chunked(&rx, z[1].data, z[1].len, &out, 4096, 0), 0);
    buf_fini(&out);
    buf_fini(&z[0]);
    buf_fini(&z[1]);
    pmd_stream_fini(&rx);
}

Test(pmd_deflate, compresses_an_empty_message_to_one_zero_byte)
{
    struct pmd_params p = params(false, false, 15, 15);
    struct pmd_stream tx;
    pmd_stream_init(&tx, &p, 1, 8);
    struct buf z;
    buf_init(&z);
    deflate_msg(&tx, NULL, 0, &z);
    cr_expect(z.len == 1 && z.data[0] == 0x00);
    deflate_msg(&tx, "Hello", 5, &z);
    deflate_msg(&tx, NULL, 0, &z);
    cr_expect(z.len == 1 && z.data[0] == 0x00, "after a message too");
    deflate_msg(&tx, NULL, 0, &z);
    cr_expect(z.len == 1 && z.data[0] == 0x00, "and twice in a row");
    buf_fini(&z);
    pmd_stream_fini(&tx);
}

Test(pmd_deflate, appends_after_existing_output)
{
    struct pmd_params p = params(true, false, 15, 15);
    struct pmd_stream tx, rx;
    pmd_stream_init(&tx, &p, 1, 8);
    peer_init(&rx, &p);
    struct buf z, out;
    buf_init(&z);
    buf_init(&out);
    cr_assert_eq(buf_append(&z, "hdr", 3), 0);
    cr_assert_eq(pmd_deflate(&tx, (const uint8_t *)"Hello", 5, &z), 0);
    cr_expect_eq(memcmp(z.data, "hdr", 3), 0);
    cr_assert_eq(pmd_inflate(&rx, z.data + 3, z.len - 3, true, &out, 100), 0);
    cr_expect(out.len == 5 && memcmp(out.data, "Hello", 5) == 0);
    buf_fini(&z);
    buf_fini(&out);
    pmd_stream_fini(&tx);
    pmd_stream_fini(&rx);
}

Test(pmd_stream, creates_zlib_streams_only_when_used)
{
    struct pmd_params p = params(false, false, 15, 15);
    struct pmd_stream s;
    pmd_stream_init(&s, &p, 1, 8);
    cr_expect_not(s.inflate_ready);
    cr_expect_not(s.deflate_ready);
    struct buf z;
    buf_init(&z);
    deflate_msg(&s, "Hello", 5, &z);
    cr_expect(s.deflate_ready);
    cr_expect_not(s.inflate_ready);
    pmd_stream_fini(&s);
    cr_expect_not(s.deflate_ready);
    pmd_stream_fini(&s); /* finishing twice is harmless */
    buf_fini(&z);
}

Test(pmd_stream, honours_small_agreed_windows)
{
    /* server window 9: the peer inflates with 9 bits and follows every back-reference */
    size_t len = 20000;
    uint8_t *msg = malloc(len);
    cr_assert_not_null(msg);
    uint32_t r = 7;
    for (size_t i = 0; i < len; i++)
        msg[i] = i < 1000 ? (uint8_t)rng_next(&r) : msg[i - 1000 + (rng_next(&r) % 5)];
    for (int bits = 9; bits <= 15; bits++) {
        struct pmd_params p = params(false, false, bits, 15);
        struct pmd_stream tx, rx;
        pmd_stream_init(&tx, &p, 9, 9);
        peer_init(&rx, &p);
        struct buf z, out;
        buf_init(&z);
        buf_init(&out);
        deflate_msg(&tx, msg, len, &z);
        cr_assert_eq(inflate_chunked(&rx, z.data, z.len, &out, len, 2), 0, "bits %d", bits);
        cr_expect_eq(memcmp(out.data, msg, len), 0);
        buf_fini(&z);
        buf_fini(&out);
        pmd_stream_fini(&tx);
        pmd_stream_fini(&rx);
    }
    free(msg);
}
