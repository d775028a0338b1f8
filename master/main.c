/* main.c - command line of wsd: run, test the configuration, print the version. */
#include "core/config.h"
#include "core/log.h"
#include "core/wsd.h"
#include "master/master.h"
#include "worker/tls.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: wsd [-c FILE] [-t] [-v] [-h]\n"
               "  -c FILE  configuration file (default: the embedded defaults)\n"
               "  -t       check the configuration and exit (0 valid, 1 invalid)\n"
               "  -v       print the version and exit\n"
               "  -h       print this help and exit\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool test_only = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'v':
            printf("wsd %s\n", WSD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 1;
    }

    static struct config cfg;
    char err[CONFIG_ERR_LEN];
    config_init(&cfg);
    int rc = path ? config_load(&cfg, path, err)
                  : config_parse(&cfg, "(defaults)", config_default_text, err);
    if (rc == 0)
        rc = config_validate(&cfg, err);
    if (rc == 0)
        rc = tls_config_check(&cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "wsd: %s\n", err);
        config_fini(&cfg);
        return 1;
    }
    if (test_only) {
        printf("wsd: configuration %s is valid\n", path ? path : "(defaults)");
        config_fini(&cfg);
        return 0;
    }
    rc = master_run(&cfg, path);
    config_fini(&cfg);
    return rc;
}
