/*
 * pmd_negotiate.c - fuzz target for the permessage-deflate offer parser and negotiation.
 *
 * The first byte picks the server configuration: bits 0-2 the window (9 + n % 7), bit 3
 * server_no_context_takeover, bit 4 client_no_context_takeover, bit 5 disabled. The rest
 * is split on '\n' into header values. An accepted offer must give agreed parameters in
 * range, and the response value, offered back, must be accepted with the same parameters.
 */
#include "proto/deflate.h"
#include "core/wsd.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_VALUES 16

static bool fuzz_same(const struct pmd_params *a, const struct pmd_params *b)
{
    return a->server_no_context_takeover == b->server_no_context_takeover &&
           a->client_no_context_takeover == b->client_no_context_takeover &&
           a->server_max_window_bits == b->server_max_window_bits &&
           a->client_max_window_bits == b->client_max_window_bits &&
           a->server_max_window_bits_sent == b->server_max_window_bits_sent &&
           a->client_max_window_bits_sent == b->client_max_window_bits_sent;
}

static void fuzz_check_agreed(const struct pmd_params *p, const struct pmd_config *cfg)
{
    if (p->server_max_window_bits < 9 || p->server_max_window_bits > cfg->max_window_bits)
        abort();
    if (p->client_max_window_bits < 8 || p->client_max_window_bits > 15)
        abort();
    if (p->client_max_window_bits_sent != (p->client_max_window_bits < 15))
        abort();
    if ((cfg->server_no_context_takeover && !p->server_no_context_takeover) ||
        (cfg->client_no_context_takeover && !p->client_no_context_takeover))
        abort();

    char resp[PMD_RESPONSE_MAX], again[PMD_RESPONSE_MAX];
    int len = pmd_response_value(p, resp, sizeof(resp));
    if (len <= 0 || (size_t)len != strlen(resp))
        abort();
    const char *values[1] = {resp};
    size_t lens[1] = {(size_t)len};
    struct pmd_params back;
    if (pmd_negotiate(values, lens, 1, cfg, &back) != 1 || !fuzz_same(p, &back))
        abort();
    if (pmd_response_value(&back, again, sizeof(again)) != len || strcmp(resp, again) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct pmd_config cfg = {
        .enabled = !(data[0] & 32),
        .level = 1,
        .max_window_bits = 9 + (data[0] & 7) % 7,
        .server_no_context_takeover = data[0] & 8,
        .client_no_context_takeover = data[0] & 16,
        .mem_level = 8,
    };
    const char *values[FUZZ_MAX_VALUES];
    size_t lens[FUZZ_MAX_VALUES];
    size_t n = 0;
    const uint8_t *p = data + 1, *end = data + size;
    while (n < FUZZ_MAX_VALUES) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        values[n] = (const char *)p;
        lens[n++] = (size_t)((nl ? nl : end) - p);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    struct pmd_params agreed;
    int rc = pmd_negotiate(values, lens, n, &cfg, &agreed);
    if (rc != 0 && rc != 1 && rc != WSD_EINVAL)
        abort();
    if (rc == 1 && !cfg.enabled)
        abort();
    if (rc == 1)
        fuzz_check_agreed(&agreed, &cfg);
    return 0;
}
