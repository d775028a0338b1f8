/* wsctl_token.c - minting HS256 tokens for wsd. */
#include "tools/wsctl_token.h"
#include "core/config.h"
#include "proto/base64.h"
#include "proto/json.h"
#include "proto/jwt.h"
#include "tools/wsctl_out.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_SECRET_MAX 4096
#define TOKEN_TTL_MAX (UINT64_C(10) * 366 * 86400)

struct token_list {
    const char *pat[JWT_MAX_PATTERNS];
    size_t n;
};

struct token_args {
    const char *user;
    struct token_list list[JWT_NUM_LISTS];
    bool admin;
    bool has_ttl;
    uint64_t ttl;
    const char *secret;
};

/* The secret bytes of --secret or of the configuration. */
struct token_secret {
    uint8_t bytes[TOKEN_SECRET_MAX];
    size_t len;
};

static int token_add(struct token_list *l, const char *opt, const char *pattern)
{
    if (l->n == JWT_MAX_PATTERNS)
        return wsctl_cli_usage_error("token: at most %d --%s patterns", JWT_MAX_PATTERNS, opt);
    size_t len = strlen(pattern);
    if (len == 0 || len > JWT_MAX_PATTERN_LEN ||
        !json_utf8_is_valid((const uint8_t *)pattern, len))
        return wsctl_cli_usage_error("token: a --%s pattern must be 1-%d bytes of UTF-8", opt,
                                     JWT_MAX_PATTERN_LEN);
    l->pat[l->n++] = pattern;
    return -1;
}

static int token_option(struct wsctl_opts *o, struct token_args *a, int c)
{
    switch (c) {
    case 'J': o->json = true; return -1;
    case 'h': wsctl_cli_usage(true); return WSCTL_EXIT_OK;
    case 'u': a->user = optarg; return -1;
    case 'j': return token_add(&a->list[JWT_LIST_JOIN], "join", optarg);
    case 'p': return token_add(&a->list[JWT_LIST_PUB], "pub", optarg);
    case 's': return token_add(&a->list[JWT_LIST_SEND], "send", optarg);
    case 'A': a->admin = true; return -1;
    case 'c': o->config = optarg; return -1;
    case 'S': a->secret = optarg; return -1;
    case 't':
        if (wsctl_cli_parse_u64(optarg, TOKEN_TTL_MAX, &a->ttl) < 0 || a->ttl == 0)
            return wsctl_cli_usage_error("token: --ttl needs a number of seconds (1 to 10 "
                                         "years)");
        a->has_ttl = true;
        return -1;
    default: return WSCTL_EXIT_USAGE;
    }
}

static int token_args(struct wsctl_opts *o, int argc, char **argv, struct token_args *a)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},         {"help", no_argument, NULL, 'h'},
        {"user", required_argument, NULL, 'u'},   {"join", required_argument, NULL, 'j'},
        {"pub", required_argument, NULL, 'p'},    {"send", required_argument, NULL, 's'},
        {"admin", no_argument, NULL, 'A'},        {"ttl", required_argument, NULL, 't'},
        {"config", required_argument, NULL, 'c'}, {"secret", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0}};
    int c, rc;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hu:c:", opts, NULL)) != -1) {
        if (c == '?' || c == ':')
            return wsctl_cli_bad_option(argv[0], c, argv);
        if ((rc = token_option(o, a, c)) >= 0)
            return rc;
    }
    if (optind != argc)
        return wsctl_cli_usage_error("token takes no arguments besides its options");
    size_t ulen = a->user ? strlen(a->user) : 0;
    if (ulen == 0 || ulen > JWT_MAX_SUB_LEN || !json_utf8_is_valid((const uint8_t *)a->user, ulen))
        return wsctl_cli_usage_error("token: --user needs a user id of 1-%d bytes of UTF-8",
                                     JWT_MAX_SUB_LEN);
    if (a->secret == NULL && o->config == NULL)
        return wsctl_cli_usage_error("token: give -c FILE (its jwt_hs256_secret) or "
                                     "--secret S");
    return -1;
}

/* --secret: raw bytes, or "base64:" then standard or URL-safe base64, padding optional. */
static int token_secret_arg(const char *s, struct token_secret *out)
{
    size_t len = strlen(s);
    if (strncmp(s, "base64:", 7) != 0) {
        if (len == 0 || len > TOKEN_SECRET_MAX)
            return wsctl_cli_usage_error("token: --secret must be 1-%d bytes", TOKEN_SECRET_MAX);
        memcpy(out->bytes, s, len);
        out->len = len;
        return -1;
    }
    long n = base64_decode(out->bytes, sizeof(out->bytes), s + 7, len - 7, BASE64_STD,
                           BASE64_PAD_OPTIONAL);
    if (n < 0)
        n = base64_decode(out->bytes, sizeof(out->bytes), s + 7, len - 7, BASE64_URL,
                          BASE64_PAD_OPTIONAL);
    if (n <= 0)
        return wsctl_cli_usage_error("token: invalid base64 after \"base64:\" in --secret");
    out->len = (size_t)n;
    return -1;
}

static int token_secret(const struct wsctl_opts *o, const struct token_args *a,
                        struct token_secret *out)
{
    if (a->secret != NULL)
        return token_secret_arg(a->secret, out);
    const struct config *cfg = NULL;
    if (wsctl_cli_config(o, &cfg) != 0)
        return WSCTL_EXIT_ERROR;
    if (cfg->jwt_hs256_secret == NULL || cfg->jwt_hs256_secret_len == 0)
        return wsctl_cli_error(o, "%s sets no jwt_hs256_secret", o->config);
    if (cfg->jwt_hs256_secret_len > TOKEN_SECRET_MAX)
        return wsctl_cli_error(o, "the jwt_hs256_secret of %s is too long", o->config);
    memcpy(out->bytes, cfg->jwt_hs256_secret, cfg->jwt_hs256_secret_len);
    out->len = cfg->jwt_hs256_secret_len;
    return -1;
}

static void token_claims(struct wsctl_json *j, const struct token_args *a, int64_t now)
{
    static const char *const names[JWT_NUM_LISTS] = {"join", "pub", "send"};
    wsctl_json_object(j, NULL);
    wsctl_json_str(j, "sub", a->user);
    wsctl_json_i64(j, "iat", now);
    if (a->has_ttl)
        wsctl_json_i64(j, "exp", now + (int64_t)a->ttl);
    for (int l = 0; l < JWT_NUM_LISTS; l++) {
        if (a->list[l].n == 0)
            continue;
        wsctl_json_array(j, names[l]);
        for (size_t i = 0; i < a->list[l].n; i++)
            wsctl_json_str(j, NULL, a->list[l].pat[i]);
        wsctl_json_array_end(j);
    }
    if (a->admin)
        wsctl_json_bool(j, "admin", true);
    wsctl_json_object_end(j);
}

static int token_print(const struct wsctl_opts *o, const struct token_args *a, const char *tok,
                       int64_t now)
{
    if (!o->json) {
        printf("%s\n", tok);
        return WSCTL_EXIT_OK;
    }
    struct wsctl_json j;
    wsctl_json_init(&j);
    wsctl_json_object(&j, NULL);
    wsctl_json_str(&j, "token", tok);
    wsctl_json_str(&j, "sub", a->user);
    wsctl_json_i64(&j, "iat", now);
    if (a->has_ttl)
        wsctl_json_i64(&j, "exp", now + (int64_t)a->ttl);
    else
        wsctl_json_null(&j, "exp");
    wsctl_json_object_end(&j);
    int rc = wsctl_json_print(&j, stdout);
    wsctl_json_fini(&j);
    return rc == 0 ? WSCTL_EXIT_OK : wsctl_cli_error(o, "out of memory");
}

int wsctl_token(struct wsctl_opts *o, int argc, char **argv)
{
    static struct token_secret secret;
    static char tok[JWT_MAX_TOKEN_LEN + 1];
    struct token_args a;
    memset(&a, 0, sizeof(a));
    int rc = token_args(o, argc, argv, &a);
    if (rc < 0)
        rc = token_secret(o, &a, &secret);
    if (rc >= 0)
        return rc;
    int64_t now = (int64_t)time(NULL);
    struct wsctl_json claims;
    wsctl_json_init(&claims);
    token_claims(&claims, &a, now);
    long n = claims.err ? WSD_ENOMEM
                        : jwt_sign_hs256(tok, sizeof(tok), claims.b.data, claims.b.len,
                                         secret.bytes, secret.len);
    wsctl_json_fini(&claims);
    explicit_bzero(&secret, sizeof(secret));
    if (n < 0)
        return wsctl_cli_error(o, "cannot mint the token: %s",
                               n == WSD_ETOOBIG ? "it would be too long" : wsd_strerror((int)n));
    return token_print(o, &a, tok, now);
}
