/* berth-proxy: a container's published ports as seen from the host itself (docker-proxy's job).
   Traffic from other hosts is DNATed by berth's nftables rules (Network/Firewall.swift); what
   arrives on 127.0.0.1, which nftables cannot send to a bridge, is carried by this program.

   berth-proxy --pid PID [--udp-idle SECONDS] FD:PROTO:ADDRESS:PORT...

   Each FD is a socket berth bound (and, for tcp, listened on) before the container started, so
   a port in use failed the start instead of this program; PROTO is tcp or udp, ADDRESS:PORT the
   container's end. The program exits when the process PID ends (a pidfd, opened first thing),
   or on SIGTERM/SIGINT.

   tcp: each accepted connection gets a non-blocking connect to the container; bytes move with
   splice() through a pipe per direction (read/write through a buffer if splice is refused), an
   EOF on one side becomes shutdown(SHUT_WR) on the other once its bytes are through, and both
   are closed when both directions are done or either fails.
   udp: a connected socket to the container per client address; replies go back to the client
   with sendto() from the published socket; a flow idle for --udp-idle seconds (90, Docker's
   conntrack timeout) is dropped, checked by a timerfd.

   One thread, one epoll set, edge-triggered for connections: every event pumps both directions
   of its connection until the kernel says EAGAIN. Memory is allocated per connection or flow,
   never per byte. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { MAX_PORTS = 1024, PIPE_SIZE = 1 << 20, COPY_SIZE = 64 * 1024, FLOW_BUCKETS = 4096 };

enum kind { LISTENER, UDP_PORT, TCP_END, UDP_FLOW, TIMER, CONTROL };

/* What an epoll event points at: each begins with its kind. */
struct tag { enum kind kind; };

struct port {
    struct tag tag;
    int fd;
    struct sockaddr_in target;
};

/* One direction of a connection: bytes read from `from` wait in the pipe (or buffer) until
   written to the other end. */
struct direction {
    int pipe[2];     /* -1 when copying through buf instead */
    char *buf;
    size_t held;     /* bytes in the pipe, or in buf from `at` */
    size_t at;
    int eof;         /* the source said EOF */
    int shut;        /* and the destination got SHUT_WR */
};

struct conn;
struct end {
    struct tag tag;
    struct conn *conn;
    int side;        /* 0: the client, 1: the container */
};

struct conn {
    int fd[2];
    struct end end[2];
    struct direction dir[2];   /* dir[i] moves bytes from fd[i] to fd[1 - i] */
    int connecting;
    int dead;
    struct conn *next_dead;
};

struct flow {
    struct tag tag;
    int fd;
    struct port *port;
    struct sockaddr_in client;
    time_t last;
    struct flow *next;        /* in its bucket */
};

static int epoll_fd;
static struct port ports[MAX_PORTS];
static int nports;
static struct flow *flows[FLOW_BUCKETS];
static struct conn *dead;     /* closed this round, freed once the round's events are done */
static time_t udp_idle = 90;
static char udp_buffer[65536];

static int watch(int fd, uint32_t events, void *tag) {
    struct epoll_event ev = { .events = events, .data.ptr = tag };
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static time_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static void usage(void) {
    fprintf(stderr, "usage: berth-proxy --pid PID [--udp-idle SECONDS] FD:tcp|udp:ADDRESS:PORT...\n");
    exit(2);
}

/* "3:tcp:10.0.0.2:80" */
static void parse_port(const char *arg) {
    char copy[128], *proto, *address, *port, *end;
    if (nports == MAX_PORTS || strlen(arg) >= sizeof copy) usage();
    strcpy(copy, arg);
    if (!(proto = strchr(copy, ':')) || !(address = strchr(proto + 1, ':')) || !(port = strchr(address + 1, ':')))
        usage();
    *proto++ = *address++ = *port++ = 0;
    struct port *p = &ports[nports++];
    p->fd = (int)strtol(copy, &end, 10);
    if (*end || p->fd < 0) usage();
    if (strcmp(proto, "tcp") == 0) p->tag.kind = LISTENER;
    else if (strcmp(proto, "udp") == 0) p->tag.kind = UDP_PORT;
    else usage();
    long number = strtol(port, &end, 10);
    if (*end || number < 1 || number > 65535) usage();
    p->target.sin_family = AF_INET;
    p->target.sin_port = htons((uint16_t)number);
    if (inet_pton(AF_INET, address, &p->target.sin_addr) != 1) usage();
}

/* ---- tcp ---- */

static void close_conn(struct conn *c) {
    if (c->dead) return;
    c->dead = 1;
    for (int i = 0; i < 2; i++) {
        close(c->fd[i]);
        if (c->dir[i].pipe[0] >= 0) { close(c->dir[i].pipe[0]); close(c->dir[i].pipe[1]); }
    }
    c->next_dead = dead;
    dead = c;
}

/* Copying through a buffer instead of the pipe, for a socket splice() refuses. */
static void use_buffer(struct direction *d) {
    if (d->pipe[0] >= 0) { close(d->pipe[0]); close(d->pipe[1]); d->pipe[0] = d->pipe[1] = -1; }
    if (!d->buf) d->buf = malloc(COPY_SIZE);
}

/* Moves what it can from `from` to `to`: 1 on progress, 0 when both wait on the kernel, -1 on an
   error that ends the connection. */
static int step(struct direction *d, int from, int to) {
    int progress = 0;
    size_t room = d->pipe[0] >= 0 ? PIPE_SIZE : COPY_SIZE;
    if (!d->eof && d->held < room) {
        ssize_t n;
        if (d->pipe[0] >= 0) {
            n = splice(from, NULL, d->pipe[1], NULL, room - d->held, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0 && errno == EINVAL && d->held == 0) {
                use_buffer(d);
                if (!d->buf) return -1;
                return 1;
            }
        } else {
            if (d->at > 0 && d->held > 0) memmove(d->buf, d->buf + d->at, d->held);
            d->at = 0;
            n = read(from, d->buf + d->held, COPY_SIZE - d->held);
        }
        if (n > 0) { d->held += (size_t)n; progress = 1; }
        else if (n == 0) { d->eof = 1; progress = 1; }
        else if (errno != EAGAIN && errno != EINTR) return -1;
    }
    if (d->held > 0) {
        ssize_t n = d->pipe[0] >= 0
            ? splice(d->pipe[0], NULL, to, NULL, d->held, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
            : write(to, d->buf + d->at, d->held);
        if (n > 0) {
            d->held -= (size_t)n;
            if (d->pipe[0] < 0) d->at = d->held ? d->at + (size_t)n : 0;
            progress = 1;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    /* Everything the source sent is through: pass its EOF on, as a half-close. */
    if (d->eof && d->held == 0 && !d->shut) {
        shutdown(to, SHUT_WR);
        d->shut = 1;
    }
    return progress;
}

/* Each direction until it waits on the kernel (edge-triggered: nothing is announced twice); the
   directions are independent, so an idle one costs one refused splice per event. */
static void pump(struct conn *c) {
    if (c->connecting) return;
    for (int i = 0; i < 2; i++) {
        int rc;
        while ((rc = step(&c->dir[i], c->fd[i], c->fd[1 - i])) > 0) {}
        if (rc < 0) { close_conn(c); return; }
    }
    if (c->dir[0].shut && c->dir[1].shut) close_conn(c);
}

static void accept_all(struct port *p) {
    for (;;) {
        int client = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return; /* EAGAIN, or out of descriptors: the backlog waits for the next round */
        }
        int upstream = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct conn *c = upstream >= 0 ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            close(client);
            if (upstream >= 0) close(upstream);
            continue;
        }
        int one = 1;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd[0] = client;
        c->fd[1] = upstream;
        for (int i = 0; i < 2; i++) {
            c->end[i] = (struct end){ { TCP_END }, c, i };
            struct direction *d = &c->dir[i];
            if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
                d->pipe[0] = d->pipe[1] = -1;
                use_buffer(d);
            } else {
                fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_SIZE); /* fewer, larger splices; 64 KiB if refused */
            }
        }
        if ((c->dir[0].pipe[0] < 0 && !c->dir[0].buf) || (c->dir[1].pipe[0] < 0 && !c->dir[1].buf)) {
            close_conn(c);
            continue;
        }
        int rc = connect(upstream, (struct sockaddr *)&p->target, sizeof p->target);
        if (rc < 0 && errno != EINPROGRESS) { close_conn(c); continue; }
        c->connecting = rc < 0;
        uint32_t events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        if (watch(client, events, &c->end[0]) < 0 || watch(upstream, events, &c->end[1]) < 0) {
            close_conn(c);
            continue;
        }
        pump(c);
    }
}

static void tcp_event(struct end *e) {
    struct conn *c = e->conn;
    if (c->dead) return;
    if (c->connecting && e->side == 1) {
        int error = 0;
        socklen_t len = sizeof error;
        getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &error, &len);
        if (error == EINPROGRESS || error == EALREADY) return;
        if (error) { close_conn(c); return; } /* the container refused: the client sees its connection closed */
        c->connecting = 0;
    }
    pump(c);
}

/* ---- udp ---- */

static unsigned bucket(const struct port *p, const struct sockaddr_in *a) {
    uint32_t h = a->sin_addr.s_addr * 2654435761u ^ a->sin_port * 40503u ^ (uint32_t)(p - ports);
    return h % FLOW_BUCKETS;
}

static void drop_flow(struct flow *f) {
    struct flow **at = &flows[bucket(f->port, &f->client)];
    while (*at != f) at = &(*at)->next;
    *at = f->next;
    close(f->fd);
    free(f);
}

static struct flow *flow_for(struct port *p, const struct sockaddr_in *client) {
    unsigned b = bucket(p, client);
    for (struct flow *f = flows[b]; f; f = f->next)
        if (f->port == p && f->client.sin_addr.s_addr == client->sin_addr.s_addr
            && f->client.sin_port == client->sin_port)
            return f;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct flow *f = fd >= 0 ? calloc(1, sizeof *f) : NULL;
    if (!f || connect(fd, (struct sockaddr *)&p->target, sizeof p->target) < 0) {
        if (fd >= 0) close(fd);
        free(f);
        return NULL;
    }
    *f = (struct flow){ { UDP_FLOW }, fd, p, *client, now(), flows[b] };
    if (watch(fd, EPOLLIN, f) < 0) { close(fd); free(f); return NULL; }
    flows[b] = f;
    return f;
}

/* Datagrams from clients, each sent on by its client's flow (a datagram that cannot be sent is
   dropped, as the network would). */
static void udp_in(struct port *p) {
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in client;
        socklen_t len = sizeof client;
        ssize_t n = recvfrom(p->fd, udp_buffer, sizeof udp_buffer, MSG_DONTWAIT, (struct sockaddr *)&client, &len);
        if (n < 0) return;
        struct flow *f = flow_for(p, &client);
        if (!f) continue;
        f->last = now();
        send(f->fd, udp_buffer, (size_t)n, MSG_DONTWAIT);
    }
}

/* Replies from the container, back to the client from the published port. */
static void udp_out(struct flow *f) {
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(f->fd, udp_buffer, sizeof udp_buffer, MSG_DONTWAIT);
        if (n < 0) {
            /* ECONNREFUSED: nothing listens in the container (yet); the flow stays. */
            if (errno == EAGAIN) return;
            if (errno == ECONNREFUSED) continue;
            return;
        }
        f->last = now();
        sendto(f->port->fd, udp_buffer, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&f->client, sizeof f->client);
    }
}

static void expire_flows(void) {
    time_t cutoff = now() - udp_idle;
    for (int b = 0; b < FLOW_BUCKETS; b++)
        for (struct flow *f = flows[b], *next; f; f = next) {
            next = f->next;
            if (f->last <= cutoff) drop_flow(f);
        }
}

int main(int argc, char **argv) {
    long pid = 0;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc) pid = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--udp-idle") == 0 && i + 1 < argc) udp_idle = strtol(argv[++i], NULL, 10);
        else usage();
    }
    if (pid <= 0 || udp_idle <= 0 || i == argc) usage();
    for (; i < argc; i++) parse_port(argv[i]);

    /* Six descriptors per TCP connection (two sockets, two pipes): the soft limit a shell hands
       down (often 1024) would cap it near 170 connections, so take the hard one, as Go's
       runtime does for docker-proxy. */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }

    /* The container first: if it is gone already, there is nothing to serve. */
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (pidfd < 0) {
        fprintf(stderr, "berth-proxy: pidfd_open %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int signals = signalfd(-1, &stop, SFD_CLOEXEC);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    static struct tag control = { CONTROL };
    if (signals < 0 || epoll_fd < 0 || watch(pidfd, EPOLLIN, &control) < 0 || watch(signals, EPOLLIN, &control) < 0) {
        perror("berth-proxy: epoll");
        return 1;
    }
    int timer = -1;
    static struct tag tick = { TIMER };
    for (int p = 0; p < nports; p++) {
        fcntl(ports[p].fd, F_SETFD, FD_CLOEXEC);
        fcntl(ports[p].fd, F_SETFL, fcntl(ports[p].fd, F_GETFL) | O_NONBLOCK);
        if (watch(ports[p].fd, EPOLLIN, &ports[p]) < 0) {
            fprintf(stderr, "berth-proxy: descriptor %d: %s\n", ports[p].fd, strerror(errno));
            return 1;
        }
        if (ports[p].tag.kind == UDP_PORT && timer < 0) {
            /* Idle flows are looked for a few times per timeout, never more than once a second. */
            timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
            time_t every = udp_idle / 4 > 0 ? udp_idle / 4 : 1;
            struct itimerspec spec = { { every, 0 }, { every, 0 } };
            if (timer < 0 || timerfd_settime(timer, 0, &spec, NULL) < 0 || watch(timer, EPOLLIN, &tick) < 0) {
                perror("berth-proxy: timerfd");
                return 1;
            }
        }
    }

    struct epoll_event events[256];
    int expire = 0;
    for (;;) {
        int n = epoll_wait(epoll_fd, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("berth-proxy: epoll_wait");
            return 1;
        }
        for (int e = 0; e < n; e++) {
            struct tag *tag = events[e].data.ptr;
            switch (tag->kind) {
            case CONTROL: return 0; /* the container ended, or SIGTERM */
            case LISTENER: accept_all((struct port *)tag); break;
            case UDP_PORT: udp_in((struct port *)tag); break;
            case TCP_END: tcp_event((struct end *)tag); break;
            case UDP_FLOW: udp_out((struct flow *)tag); break;
            case TIMER: {
                uint64_t ticks;
                expire = read(timer, &ticks, sizeof ticks) > 0;
                break;
            }
            }
        }
        /* Only now: a later event of this round may point at what is freed here. */
        if (expire) expire_flows();
        expire = 0;
        while (dead) {
            struct conn *c = dead;
            dead = c->next_dead;
            free(c->dir[0].buf);
            free(c->dir[1].buf);
            free(c);
        }
    }
}

/* As in berth-shim: the Swift driver's link adds a call registering Swift metadata this program
   does not have; answering it here keeps the Swift runtime out of the static binary. */
void swift_addNewDSOImage(const void *header);
void swift_addNewDSOImage(const void *header) { (void)header; }
int _swift_backtrace_isThunkFunction(const char *name);
int _swift_backtrace_isThunkFunction(const char *name) { (void)name; return 0; }
