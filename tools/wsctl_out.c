/* wsctl_out.c - JSON and table output, value formatting. */
#include "tools/wsctl_out.h"
#include "proto/json.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MAX_COLS 32

/* ---- JSON ---- */

void wsctl_json_init(struct wsctl_json *j)
{
    memset(j, 0, sizeof(*j));
    buf_init(&j->b);
}

void wsctl_json_fini(struct wsctl_json *j)
{
    buf_fini(&j->b);
}

static void json_put(struct wsctl_json *j, const void *p, size_t len)
{
    if (j->err == 0)
        j->err = buf_append(&j->b, p, len);
}

static void json_puts(struct wsctl_json *j, const char *s)
{
    json_put(j, s, strlen(s));
}

/* Writes s as a JSON string, degrading bytes of invalid UTF-8 to '?'. */
static void json_string(struct wsctl_json *j, const char *s, size_t len)
{
    if (j->err != 0)
        return;
    size_t mark = j->b.len;
    int rc = json_write_string(&j->b, s, len);
    if (rc != WSD_EUTF8) {
        j->err = rc;
        return;
    }
    j->b.len = mark;
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        j->err = WSD_ENOMEM;
        return;
    }
    for (size_t i = 0; i < len; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j->err = json_write_string(&j->b, copy, len);
    free(copy);
}

/* The separator and key before a value. */
static void json_key(struct wsctl_json *j, const char *key)
{
    if (j->comma[j->depth])
        json_puts(j, ",");
    j->comma[j->depth] = true;
    if (key != NULL) {
        json_string(j, key, strlen(key));
        json_puts(j, ":");
    }
}

static void json_open(struct wsctl_json *j, const char *key, const char *bracket)
{
    json_key(j, key);
    if (j->depth == WSCTL_JSON_DEPTH && j->err == 0)
        j->err = WSD_EINVAL;
    if (j->err != 0)
        return;
    json_puts(j, bracket);
    j->comma[++j->depth] = false;
}

static void json_close(struct wsctl_json *j, const char *bracket)
{
    if (j->depth > 0)
        j->depth--;
    json_puts(j, bracket);
}

void wsctl_json_object(struct wsctl_json *j, const char *key)
{
    json_open(j, key, "{");
}

void wsctl_json_object_end(struct wsctl_json *j)
{
    json_close(j, "}");
}

void wsctl_json_array(struct wsctl_json *j, const char *key)
{
    json_open(j, key, "[");
}

void wsctl_json_array_end(struct wsctl_json *j)
{
    json_close(j, "]");
}

void wsctl_json_strn(struct wsctl_json *j, const char *key, const char *s, size_t len)
{
    json_key(j, key);
    json_string(j, s, len);
}

void wsctl_json_str(struct wsctl_json *j, const char *key, const char *s)
{
    wsctl_json_strn(j, key, s, strlen(s));
}

void wsctl_json_u64(struct wsctl_json *j, const char *key, uint64_t v)
{
    char num[24];
    json_key(j, key);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    json_puts(j, num);
}

void wsctl_json_i64(struct wsctl_json *j, const char *key, int64_t v)
{
    char num[24];
    json_key(j, key);
    snprintf(num, sizeof(num), "%lld", (long long)v);
    json_puts(j, num);
}

void wsctl_json_double(struct wsctl_json *j, const char *key, double v, int decimals)
{
    char num[64];
    json_key(j, key);
    if (v != v || v > 1e300 || v < -1e300)
        v = 0; /* NaN and infinities are not JSON */
    snprintf(num, sizeof(num), "%.*f", decimals, v);
    json_puts(j, num);
}

void wsctl_json_bool(struct wsctl_json *j, const char *key, bool v)
{
    json_key(j, key);
    json_puts(j, v ? "true" : "false");
}

void wsctl_json_null(struct wsctl_json *j, const char *key)
{
    json_key(j, key);
    json_puts(j, "null");
}

void wsctl_json_raw(struct wsctl_json *j, const char *key, const void *p, size_t len)
{
    json_key(j, key);
    json_put(j, p, len);
}

int wsctl_json_print(struct wsctl_json *j, FILE *f)
{
    if (j->err != 0)
        return j->err;
    fwrite(j->b.data, 1, j->b.len, f);
    fputc('\n', f);
    return 0;
}

/* ---- tables ---- */

static void table_add(struct wsctl_table *t, char *cell)
{
    if (cell == NULL) {
        t->err = WSD_ENOMEM;
        return;
    }
    if (t->num_cells == t->cap_cells) {
        size_t cap = t->cap_cells ? t->cap_cells * 2 : 64;
        char **cells = realloc(t->cells, cap * sizeof(*cells));
        if (cells == NULL) {
            free(cell);
            t->err = WSD_ENOMEM;
            return;
        }
        t->cells = cells;
        t->cap_cells = cap;
    }
    t->cells[t->num_cells++] = cell;
}

void wsctl_table_init(struct wsctl_table *t, size_t cols, const char *const *head,
                      uint32_t right_mask)
{
    memset(t, 0, sizeof(*t));
    t->cols = WSD_MIN(cols, (size_t)TABLE_MAX_COLS);
    t->right_mask = right_mask;
    for (size_t i = 0; i < t->cols; i++)
        table_add(t, strdup(head[i]));
}

void wsctl_table_fini(struct wsctl_table *t)
{
    for (size_t i = 0; i < t->num_cells; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

void wsctl_table_cell(struct wsctl_table *t, const char *fmt, ...)
{
    char *cell = NULL;
    va_list ap;
    if (t->err != 0)
        return;
    va_start(ap, fmt);
    int n = vasprintf(&cell, fmt, ap);
    va_end(ap);
    table_add(t, n < 0 ? NULL : cell);
}

/* Display width of a UTF-8 string: its code points. */
static size_t table_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

int wsctl_table_print(const struct wsctl_table *t, FILE *f)
{
    size_t width[TABLE_MAX_COLS] = {0};
    if (t->err != 0)
        return t->err;
    for (size_t i = 0; i < t->num_cells; i++)
        width[i % t->cols] = WSD_MAX(width[i % t->cols], table_width(t->cells[i]));
    for (size_t i = 0; i < t->num_cells; i++) {
        size_t col = i % t->cols;
        size_t pad = width[col] - table_width(t->cells[i]);
        bool right = (t->right_mask >> col) & 1u;
        bool last = col == t->cols - 1 || i == t->num_cells - 1;
        if (right)
            fprintf(f, "%*s", (int)pad, "");
        fputs(t->cells[i], f);
        if (!right && !last)
            fprintf(f, "%*s", (int)pad, "");
        fputs(last ? "\n" : "  ", f);
    }
    return 0;
}

/* ---- values ---- */

const char *wsctl_fmt_bytes(char *out, size_t cap, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < WSD_ARRAY_LEN(units)) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%.0f B", bytes);
    else
        snprintf(out, cap, "%.1f %s", bytes, units[u]);
    return out;
}

const char *wsctl_fmt_duration(char *out, size_t cap, int64_t s)
{
    if (s < 0)
        snprintf(out, cap, "-");
    else if (s < 60)
        snprintf(out, cap, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(out, cap, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(out, cap, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
    else
        snprintf(out, cap, "%lldd%02lldh", (long long)(s / 86400), (long long)(s / 3600 % 24));
    return out;
}

