/*
 * wsctl_out.h - wsctl's two output forms: a streaming JSON writer (--json) and aligned
 * text tables, plus the formatting of sizes, durations and addresses.
 */
#ifndef WSD_TOOLS_WSCTL_OUT_H
#define WSD_TOOLS_WSCTL_OUT_H

#include "core/buf.h"
#include "core/wsd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WSCTL_JSON_DEPTH 16

/*
 * A JSON document built into a buffer. Each value call takes the member key (NULL for
 * an array element or the top-level value). Errors are sticky: after the first failure
 * (out of memory, nesting beyond WSCTL_JSON_DEPTH) calls do nothing and
 * wsctl_json_print() reports it. Strings that are not valid UTF-8 are written with
 * every byte above 0x7f replaced by '?'.
 */
struct wsctl_json {
    struct buf b;
    unsigned depth;
    bool comma[WSCTL_JSON_DEPTH + 1];
    int err;
};

void wsctl_json_init(struct wsctl_json *j);
void wsctl_json_fini(struct wsctl_json *j);
void wsctl_json_object(struct wsctl_json *j, const char *key);
void wsctl_json_object_end(struct wsctl_json *j);
void wsctl_json_array(struct wsctl_json *j, const char *key);
void wsctl_json_array_end(struct wsctl_json *j);
void wsctl_json_str(struct wsctl_json *j, const char *key, const char *s);
void wsctl_json_strn(struct wsctl_json *j, const char *key, const char *s, size_t len);
void wsctl_json_u64(struct wsctl_json *j, const char *key, uint64_t v);
void wsctl_json_i64(struct wsctl_json *j, const char *key, int64_t v);
/* A number with at most `decimals` digits after the point. */
void wsctl_json_double(struct wsctl_json *j, const char *key, double v, int decimals);
void wsctl_json_bool(struct wsctl_json *j, const char *key, bool v);
void wsctl_json_null(struct wsctl_json *j, const char *key);
/* A value that is already JSON text (the caller validated it). */
void wsctl_json_raw(struct wsctl_json *j, const char *key, const void *p, size_t len);

/* Writes the document and a newline to f. Returns 0, or the sticky error (nothing
 * written). */
int wsctl_json_print(struct wsctl_json *j, FILE *f);

/*
 * A text table: a header row, then cells added left to right, row after row; printed
 * with every column as wide as its widest cell (UTF-8 aware), two spaces between
 * columns, the columns whose bit is set in right_mask aligned right. Cells are copied.
 */
struct wsctl_table {
    size_t cols;
    uint32_t right_mask;
    char **cells; /* header cells first */
    size_t num_cells;
    size_t cap_cells;
    int err;
};

/* Prepares t with cols header names (cols at most 32). */
void wsctl_table_init(struct wsctl_table *t, size_t cols, const char *const *head,
                      uint32_t right_mask);
void wsctl_table_fini(struct wsctl_table *t);

/* Appends one cell, formatted. Errors (out of memory) are sticky. */
void wsctl_table_cell(struct wsctl_table *t, const char *fmt, ...) WSD_PRINTF(2, 3);

/* Prints the table to f. Returns 0 or WSD_ENOMEM (from an earlier cell). */
int wsctl_table_print(const struct wsctl_table *t, FILE *f);

/* "512 B", "1.5 KiB", "3.2 MiB", ... into out. Returns out. */
const char *wsctl_fmt_bytes(char *out, size_t cap, double bytes);

/* "42s", "5m03s", "2h04m", "3d02h" into out (negative: "-"). Returns out. */
const char *wsctl_fmt_duration(char *out, size_t cap, int64_t seconds);

#endif
