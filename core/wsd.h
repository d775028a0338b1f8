/*
 * wsd.h - project-wide definitions: status codes, limits, invariant checks.
 *
 * Every function that can fail returns 0 (or a non-negative count) on success and a
 * negative WSD_E* code on failure. WSD_EAGAIN means "not yet" (incomplete input, would
 * block) and is not an error.
 */
#ifndef WSD_CORE_WSD_H
#define WSD_CORE_WSD_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define WSD_VERSION "0.1.0"

enum {
    WSD_OK = 0,
    WSD_EAGAIN = -1,   /* incomplete input or would block: call again with more */
    WSD_EINVAL = -2,   /* malformed input or argument */
    WSD_ENOMEM = -3,   /* allocation failed */
    WSD_ETOOBIG = -4,  /* a size limit was exceeded */
    WSD_EPROTO = -5,   /* protocol violation by the peer */
    WSD_EUTF8 = -6,    /* invalid UTF-8 */
    WSD_EIO = -7,      /* system call failed (errno kept) */
    WSD_ENOSPC = -8,   /* table or ring full */
    WSD_ENOENT = -9,   /* no such entry */
    WSD_EEXIST = -10,  /* entry exists */
    WSD_EBROKEN = -11, /* shared state could not be repaired */
    WSD_ECLOSED = -12, /* peer closed */
};

/* Short name of a WSD_E* code, for logs. Never NULL. */
const char *wsd_strerror(int code);

#define WSD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define WSD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define WSD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define WSD_CACHELINE 64

#if defined(__GNUC__)
#define WSD_LIKELY(x) __builtin_expect(!!(x), 1)
#define WSD_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define WSD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define WSD_NORETURN __attribute__((noreturn))
#else
#define WSD_LIKELY(x) (x)
#define WSD_UNLIKELY(x) (x)
#define WSD_PRINTF(a, b)
#define WSD_NORETURN
#endif

/* Logs the failed invariant and exits the process; the master respawns a worker. */
void wsd_bug(const char *file, int line, const char *expr) WSD_NORETURN;
#define WSD_BUG_ON(cond)                                                                 \
    do {                                                                                 \
        if (WSD_UNLIKELY(cond))                                                          \
            wsd_bug(__FILE__, __LINE__, #cond);                                          \
    } while (0)

#endif
