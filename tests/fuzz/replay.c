/*
 * replay.c - runs a libFuzzer target over saved inputs without libFuzzer.
 *
 * Usage: replay PATH... Each PATH is a file or a directory; a directory's regular files
 * (not its subdirectories) are run in name order. Every input is read into an allocation
 * of exactly its size, so a sanitizer build catches a read past its end. Prints how many
 * inputs ran. Exit status 0, or 1 when a path cannot be read.
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the whole file into a new allocation of its exact size. Returns 0 or -1. */
static int replay_read(const char *path, uint8_t **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *p;

    if (f == NULL)
        return -1;
    if (fstat(fileno(f), &st) == -1 || st.st_size < 0)
        goto out_close;
    p = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (p == NULL)
        goto out_close;
    if (fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(p);
        goto out_close;
    }
    fclose(f);
    *out = p;
    *out_len = (size_t)st.st_size;
    return 0;
out_close:
    fclose(f);
    return -1;
}

/* Runs one file. Returns 0 or -1 (reported). */
static int replay_file(const char *path)
{
    uint8_t *data;
    size_t len;

    if (replay_read(path, &data, &len) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int replay_select(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Runs every regular file of dir; adds the count to *ran. Returns 0 or -1. */
static int replay_dir(const char *dir, size_t *ran)
{
    struct dirent **names;
    int n = scandir(dir, &names, replay_select, alphasort);
    int rc = 0;

    if (n == -1) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
        char *path = malloc(len);
        struct stat st;

        if (path == NULL) {
            rc = -1;
        } else {
            snprintf(path, len, "%s/%s", dir, names[i]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (replay_file(path) == 0)
                    (*ran)++;
                else
                    rc = -1;
            }
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    size_t ran = 0;
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) == -1) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            rc = 1;
        } else if (S_ISDIR(st.st_mode)) {
            rc |= replay_dir(argv[i], &ran) != 0;
        } else if (replay_file(argv[i]) == 0) {
            ran++;
        } else {
            rc = 1;
        }
    }
    printf("replay: %zu inputs ran\n", ran);
    return rc;
}
