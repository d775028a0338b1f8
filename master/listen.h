/* listen.h - opening the listening sockets the workers share. */
#ifndef WSD_MASTER_LISTEN_H
#define WSD_MASTER_LISTEN_H

#include "core/config.h"

#include <stddef.h>

/*
 * Opens a non-blocking listening socket bound to l (SO_REUSEADDR; IPv6 sockets are
 * IPv6-only). Returns the fd, or WSD_EIO with one line naming the address and the cause
 * in err.
 */
int listen_open(const struct config_listen *l, int backlog, char *err, size_t err_cap);

#endif
