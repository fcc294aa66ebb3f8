/* cnetlink.h: the kernel's rtnetlink definitions (message headers, attribute types and flags) for
   the Network module, and the calls that switch the calling thread into another network namespace and
   back, kept in C so that nothing else runs on the thread meanwhile.

   These headers pull in much of the C library (sockets, time, stat). Whichever Clang module
   the compiler loads first owns those declarations, so in a module that depends on CNetlink a
   file that does not import it may not find SOCK_STREAM or timespec's fields (clean and
   release builds show it, incremental ones may not): every Swift file of Network, NameServer,
   ContainerNetworking and berth-netd imports CNetlink. */
#ifndef CNETLINK_H
#define CNETLINK_H

#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

/* A socket (CLOEXEC) that lives in the network namespace `namespace_fd` (-1: this thread's own):
   a NETLINK_ROUTE one for the Network module, a UDP or TCP one for a proxy or a test. The thread
   enters the namespace only for the socket() call and is back in its own before this returns.
   Returns the socket or -errno. */
int berth_socket_in_namespace(int namespace_fd, int domain, int type, int protocol);

/* A new network namespace (with lo down), as a CLOEXEC fd, made by the calling thread, which
   returns to its own namespace. Returns the fd or -errno. For tests and for networks of their own. */
int berth_netlink_new_namespace(void);

#endif
