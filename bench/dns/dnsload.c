/* dnsload: DNS A queries over UDP against one server, for bench/dns/run.sh.
 *
 *   dnsload SERVER PORT N WINDOW NAME...   send N A queries for the names in turn, keeping up
 *                                          to WINDOW outstanding (1: strictly sequential), and
 *                                          print "QPS OK FAILED SECONDS" on one line
 *   dnsload -q SERVER PORT NAME            ask once for NAME, print its A addresses one a line
 *                                          (exit 1 when there is no answer or no address)
 *
 * One socket connected to SERVER:PORT. A query counts as OK when a reply with its ID comes back
 * with RCODE 0 and at least one answer; as failed when the reply says otherwise or none comes
 * within TIMEOUT_MS (its slot is then reused). QPS is N over the wall time of the whole run.
 * Built static (cc -static -O2) so that it runs in any root filesystem.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 1000
#define MAX_WINDOW 256

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A standard query (RD set) for NAME type A class IN into buf; returns its length. */
static size_t make_query(uint8_t *buf, uint16_t id, const char *name) {
    size_t n = 0;
    buf[n++] = id >> 8;
    buf[n++] = id & 0xff;
    buf[n++] = 0x01; /* RD */
    buf[n++] = 0x00;
    buf[n++] = 0; buf[n++] = 1; /* QDCOUNT */
    memset(buf + n, 0, 6);      /* ANCOUNT, NSCOUNT, ARCOUNT */
    n += 6;
    const char *label = name;
    while (*label) {
        const char *dot = strchr(label, '.');
        size_t len = dot ? (size_t)(dot - label) : strlen(label);
        buf[n++] = (uint8_t)len;
        memcpy(buf + n, label, len);
        n += len;
        label += len;
        if (*label == '.') label++;
    }
    buf[n++] = 0;
    buf[n++] = 0; buf[n++] = 1; /* QTYPE A */
    buf[n++] = 0; buf[n++] = 1; /* QCLASS IN */
    return n;
}

static int connect_to(const char *server, const char *port) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
    if (inet_pton(AF_INET, server, &addr.sin_addr) != 1) {
        fprintf(stderr, "dnsload: bad address %s\n", server);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("dnsload: socket");
        exit(2);
    }
    return fd;
}

/* Skips a (possibly compressed) name at p; returns the offset after it or -1. */
static long skip_name(const uint8_t *msg, long len, long p) {
    while (p < len) {
        uint8_t c = msg[p];
        if (c == 0) return p + 1;
        if ((c & 0xc0) == 0xc0) return p + 2;
        p += 1 + c;
    }
    return -1;
}

/* -q: one query, the A records of the reply printed. */
static int resolve_once(const char *server, const char *port, const char *name) {
    int fd = connect_to(server, port);
    uint8_t buf[512], reply[1500];
    size_t n = make_query(buf, 0x4242, name);
    if (send(fd, buf, n, 0) < 0) { perror("dnsload: send"); return 1; }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 2000) != 1) { fprintf(stderr, "dnsload: no reply for %s\n", name); return 1; }
    long len = recv(fd, reply, sizeof reply, 0);
    if (len < 12 || reply[0] != 0x42 || reply[1] != 0x42) { fprintf(stderr, "dnsload: bad reply\n"); return 1; }
    int rcode = reply[3] & 0x0f, qd = reply[4] << 8 | reply[5], an = reply[6] << 8 | reply[7];
    long p = 12;
    for (int i = 0; i < qd && p >= 0; i++) { p = skip_name(reply, len, p); if (p >= 0) p += 4; }
    int found = 0;
    for (int i = 0; i < an && p >= 0 && p + 10 <= len; i++) {
        p = skip_name(reply, len, p);
        if (p < 0 || p + 10 > len) break;
        int type = reply[p] << 8 | reply[p + 1], rdlen = reply[p + 8] << 8 | reply[p + 9];
        p += 10;
        if (type == 1 && rdlen == 4 && p + 4 <= len) {
            printf("%u.%u.%u.%u\n", reply[p], reply[p + 1], reply[p + 2], reply[p + 3]);
            found++;
        }
        p += rdlen;
    }
    if (!found) fprintf(stderr, "dnsload: %s: rcode %d, no A record\n", name, rcode);
    return found ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "-q") == 0) return resolve_once(argv[2], argv[3], argv[4]);
    if (argc < 6) {
        fprintf(stderr, "usage: dnsload SERVER PORT N WINDOW NAME... | dnsload -q SERVER PORT NAME\n");
        return 2;
    }
    int fd = connect_to(argv[1], argv[2]);
    long total = atol(argv[3]);
    int window = atoi(argv[4]);
    if (window < 1 || window > MAX_WINDOW) { fprintf(stderr, "dnsload: window 1..%d\n", MAX_WINDOW); return 2; }
    char **names = argv + 5;
    int nnames = argc - 5;

    /* Outstanding queries: slot i holds ID (generation << 8 | i), so a late reply to a query
     * that already timed out (an older generation) is not taken for the slot's new one. */
    int busy[MAX_WINDOW] = {0};
    uint16_t ids[MAX_WINDOW];
    double sent_at[MAX_WINDOW];
    uint8_t generation[MAX_WINDOW] = {0};
    long sent = 0, done = 0, ok = 0, failed = 0;
    int outstanding = 0;
    uint8_t buf[512], reply[1500];

    double start = now();
    while (done < total) {
        /* Fill the window. */
        for (int i = 0; i < window && sent < total; i++) {
            if (busy[i]) continue;
            generation[i]++;
            ids[i] = (uint16_t)(generation[i] << 8 | i);
            size_t n = make_query(buf, ids[i], names[sent % nnames]);
            if (send(fd, buf, n, 0) < 0) {
                /* ECONNREFUSED after an ICMP unreachable, say: a failed query. */
                failed++; done++; sent++;
                continue;
            }
            busy[i] = 1;
            sent_at[i] = now();
            outstanding++;
            sent++;
        }
        if (outstanding == 0) continue;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, 50);
        if (ready == 1) {
            /* Drain what has arrived. */
            for (;;) {
                long len = recv(fd, reply, sizeof reply, MSG_DONTWAIT);
                if (len < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    if (errno == ECONNREFUSED) break; /* the timeouts count those queries */
                    perror("dnsload: recv");
                    return 2;
                }
                if (len < 12) continue;
                uint16_t id = reply[0] << 8 | reply[1];
                int slot = id & 0xff;
                if (slot >= window || !busy[slot] || ids[slot] != id) continue; /* stale */
                int rcode = reply[3] & 0x0f, an = reply[6] << 8 | reply[7];
                if ((reply[2] & 0x80) && rcode == 0 && an > 0) ok++; else failed++;
                busy[slot] = 0;
                outstanding--;
                done++;
            }
        }
        /* Time out what has waited too long. */
        double t = now();
        for (int i = 0; i < window; i++) {
            if (busy[i] && (t - sent_at[i]) * 1000 > TIMEOUT_MS) {
                busy[i] = 0;
                outstanding--;
                failed++;
                done++;
            }
        }
    }
    double seconds = now() - start;
    printf("%.1f %ld %ld %.3f\n", total / seconds, ok, failed, seconds);
    return 0;
}
