/* config.c - fuzz target: the configuration parser and validator on arbitrary text. */
#include "core/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static struct config cfg;
    char err[CONFIG_ERR_LEN];
    config_init(&cfg);
    if (config_parse(&cfg, "fuzz.conf", text, err) == 0 && config_validate(&cfg, err) == 0) {
        char pending[256];
        config_pending_keys(&cfg, pending, sizeof(pending));
    }
    config_fini(&cfg);
    free(text);
    return 0;
}
