/* listen.c - opening the listening sockets the workers share. */
#include "master/listen.h"
#include "core/wsd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int listen_open(const struct config_listen *l, int backlog, char *err, size_t err_cap)
{
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, err_cap, "socket() for %s failed: %s", l->text, strerror(errno));
        return WSD_EIO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (l->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addr_len) == -1) {
        snprintf(err, err_cap, "cannot listen on %s: %s", l->text, strerror(errno));
        goto out_close_fd;
    }
    /* Accepted once the first bytes (the request, or a ClientHello) are in, or after a
       second: one wakeup fewer per connection, and a silent client costs no descriptor
       until then. */
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
    if (listen(fd, backlog) == -1) {
        snprintf(err, err_cap, "listen() on %s failed: %s", l->text, strerror(errno));
        goto out_close_fd;
    }
    return fd;

out_close_fd:
    close(fd);
    return WSD_EIO;
}
