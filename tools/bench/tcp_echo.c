/*
 * bench_tcp_echo - the raw-TCP baseline for wsd's benchmarks: the least a server can do
 * per message on this host. One thread, level-triggered epoll, per readable event one
 * read() into a 64 KiB buffer and one write() of what was read, TCP_NODELAY.
 * A write that falls short keeps the rest for EPOLLOUT and pauses reading that
 * connection, so no byte is ever lost.
 *
 *   bench_tcp_echo PORT [ADDR]     (ADDR default 127.0.0.1); stops on TERM or INT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_LEN 65536
#define EV_BATCH 512

struct pending {
    size_t len;
    size_t off;
    char data[];
};

static volatile sig_atomic_t stop_flag;
static struct pending **pend; /* by fd: unsent rest of a short write */
static size_t pend_cap;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int listen_on(const char *addr, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "bench_tcp_echo: bad address %s\n", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(fd, 4096) == -1) {
        fprintf(stderr, "bench_tcp_echo: bind/listen %s:%d: %s\n", addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void drop(int ep, int fd)
{
    if ((size_t)fd < pend_cap) {
        free(pend[fd]);
        pend[fd] = NULL;
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

static void accept_all(int ep, int lfd)
{
    int one = 1;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or EMFILE and friends: retried on the next event */
        }
        if ((size_t)fd >= pend_cap) {
            size_t cap = pend_cap ? pend_cap : 1024;
            while (cap <= (size_t)fd)
                cap *= 2;
            struct pending **p = realloc(pend, cap * sizeof(*p));
            if (!p) {
                close(fd);
                continue;
            }
            memset(p + pend_cap, 0, (cap - pend_cap) * sizeof(*p));
            pend = p;
            pend_cap = cap;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
            close(fd);
    }
}

/* Keeps buf[off..len) for later and switches the connection to EPOLLOUT. */
static void keep_rest(int ep, int fd, const char *buf, size_t off, size_t len)
{
    struct pending *p = malloc(sizeof(*p) + (len - off));
    if (!p) {
        drop(ep, fd);
        return;
    }
    p->len = len - off;
    p->off = 0;
    memcpy(p->data, buf + off, p->len);
    pend[fd] = p;
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void flush_rest(int ep, int fd)
{
    struct pending *p = pend[fd];
    ssize_t n = write(fd, p->data + p->off, p->len - p->off);
    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR)
            drop(ep, fd);
        return;
    }
    p->off += (size_t)n;
    if (p->off < p->len)
        return;
    free(p);
    pend[fd] = NULL;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void echo_once(int ep, int fd, char *buf)
{
    ssize_t n = read(fd, buf, BUF_LEN);
    if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
        drop(ep, fd);
        return;
    }
    if (n == -1)
        return;
    ssize_t w = write(fd, buf, (size_t)n);
    if (w == -1) {
        if (errno != EAGAIN && errno != EINTR) {
            drop(ep, fd);
            return;
        }
        w = 0;
    }
    if (w < n)
        keep_rest(ep, fd, buf, (size_t)w, (size_t)n);
}

int main(int argc, char **argv)
{
    static char buf[BUF_LEN];
    struct epoll_event evs[EV_BATCH];
    if (argc < 2 || argc > 3 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: bench_tcp_echo PORT [ADDR]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    int lfd = listen_on(argc == 3 ? argv[2] : "127.0.0.1", atoi(argv[1]));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (lfd == -1 || ep == -1)
        return 1;
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) == -1)
        return 1;
    while (!stop_flag) {
        int n = epoll_wait(ep, evs, EV_BATCH, 500);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd)
                accept_all(ep, lfd);
            else if ((size_t)fd < pend_cap && pend[fd])
                flush_rest(ep, fd);
            else
                echo_once(ep, fd, buf);
        }
    }
    return 0;
}
