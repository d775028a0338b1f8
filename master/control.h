/*
 * control.h - the master's control socket (a Unix stream socket, mode 0600) through
 * which wsctl asks for actions. One request line per connection, one JSON reply line:
 *   reload | stop | quit | kick ID [CODE] | kick-user USER [CODE] | send ...
 * Inspection does not come here: wsctl reads the shared segment directly.
 */
#ifndef WSD_MASTER_CONTROL_H
#define WSD_MASTER_CONTROL_H

#include <stddef.h>

struct master;

/* Creates the socket (refusing when another live instance answers on it).
 * Returns 0 or WSD_EIO with the reason in err. */
int control_open(struct master *m, char *err, size_t cap);

/* Closes and removes the socket. */
void control_close(struct master *m);

/* Accepts one client, reads its request, acts and replies. */
void control_on_readable(struct master *m);

#endif
