/* wsd.c - status code names and the invariant-failure exit. */
#include "core/wsd.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *wsd_strerror(int code)
{
    switch (code) {
    case WSD_OK: return "ok";
    case WSD_EAGAIN: return "again";
    case WSD_EINVAL: return "invalid";
    case WSD_ENOMEM: return "out of memory";
    case WSD_ETOOBIG: return "too big";
    case WSD_EPROTO: return "protocol error";
    case WSD_EUTF8: return "invalid utf-8";
    case WSD_EIO: return "i/o error";
    case WSD_ENOSPC: return "no space";
    case WSD_ENOENT: return "not found";
    case WSD_EEXIST: return "exists";
    case WSD_EBROKEN: return "broken shared state";
    case WSD_ECLOSED: return "closed";
    default: return "unknown error";
    }
}

void wsd_bug(const char *file, int line, const char *expr)
{
    fprintf(stderr, "level=crit pid=%d msg=\"bug: %s at %s:%d\"\n", (int)getpid(), expr, file,
            line);
    abort();
}
