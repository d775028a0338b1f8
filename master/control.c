/* control.c - the master's control socket. */
#include "master/control.h"
#include "core/log.h"
#include "core/wsd.h"
#include "master/master.h"
#include "master/workers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_LINE_MAX 4096

static int control_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return WSD_ETOOBIG;
    strcpy(sa->sun_path, path);
    return 0;
}

/* True when a live process accepts connections on path. */
static bool control_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return false;
    bool live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return live;
}

int control_open(struct master *m, char *err, size_t cap)
{
    const char *path = m->cfg->control_socket;
    struct sockaddr_un sa;
    if (path == NULL || path[0] == '\0')
        return 0;
    if (control_addr(path, &sa) < 0) {
        snprintf(err, cap, "control socket path too long: %s", path);
        return WSD_EIO;
    }
    if (control_is_live(&sa)) {
        snprintf(err, cap, "another wsd is running with control socket %s", path);
        return WSD_EIO;
    }
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, cap, "socket(AF_UNIX) failed: %s", strerror(errno));
        return WSD_EIO;
    }
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc == -1 || listen(fd, 16) == -1) {
        snprintf(err, cap, "cannot create control socket %s: %s", path, strerror(errno));
        close(fd);
        return WSD_EIO;
    }
    chmod(path, 0600);
    m->control_fd = fd;
    return 0;
}

void control_close(struct master *m)
{
    if (m->control_fd < 0)
        return;
    close(m->control_fd);
    m->control_fd = -1;
    unlink(m->cfg->control_socket);
}

static void control_reply(int fd, const char *json)
{
    size_t len = strlen(json);
    ssize_t n = send(fd, json, len, MSG_NOSIGNAL);
    (void)n;
}

static void control_handle(struct master *m, int fd, char *line)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r\n", &save);
    if (cmd == NULL) {
        control_reply(fd, "{\"ok\":false,\"error\":\"empty request\"}\n");
    } else if (strcmp(cmd, "reload") == 0) {
        log_msg(LOG_NOTICE, "reload requested on the control socket");
        master_reload(m);
        control_reply(fd, "{\"ok\":true}\n");
    } else if (strcmp(cmd, "stop") == 0) {
        log_msg(LOG_NOTICE, "stop requested on the control socket");
        control_reply(fd, "{\"ok\":true}\n");
        kill(getpid(), SIGTERM);
    } else {
        control_reply(fd, "{\"ok\":false,\"error\":\"unknown command\"}\n");
    }
}

void control_on_readable(struct master *m)
{
    int fd = accept4(m->control_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd == -1)
        return;
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char line[CONTROL_LINE_MAX];
    size_t len = 0;
    while (len < sizeof(line) - 1) {
        ssize_t n = recv(fd, line + len, sizeof(line) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(line, '\n', len))
            break;
    }
    line[len] = '\0';
    control_handle(m, fd, line);
    close(fd);
}
