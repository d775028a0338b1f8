/* app.c - the messaging endpoint (its envelope handling arrives with the messaging work). */
#include "worker/app.h"
#include "core/log.h"
#include "core/wsd.h"
#include "worker/conn.h"
#include "worker/worker.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static struct {
    uint8_t kind; /* EV_RING */
    int efd;
} app_ring;

int app_init(struct worker *w, int ring_efd)
{
    app_ring.kind = EV_RING;
    app_ring.efd = ring_efd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &app_ring};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ring_efd, &ev) == -1) {
        log_msg(LOG_CRIT, "epoll_ctl(ADD, eventfd=%d) failed: %s", ring_efd, strerror(errno));
        return WSD_EIO;
    }
    return 0;
}

void app_fini(struct worker *w)
{
    (void)w;
}

void app_on_open(struct worker *w, struct conn *c)
{
    (void)w;
    (void)c;
}

void app_on_message(struct worker *w, struct conn *c, uint8_t opcode, const uint8_t *p,
                    size_t len)
{
    (void)opcode;
    (void)p;
    (void)len;
    static const char msg[] = "{\"op\":\"error\",\"code\":\"unavailable\","
                              "\"message\":\"messaging is not enabled in this build\"}";
    conn_send_frame(w, c, WS_OP_TEXT, (const uint8_t *)msg, sizeof(msg) - 1);
}

void app_on_ring(struct worker *w)
{
    (void)w;
    uint64_t v;
    while (read(app_ring.efd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        ;
}

void app_flush(struct worker *w)
{
    (void)w;
}
