/* The bench's ends, built by run.sh with cc (not part of the package):

   tcpbench sink PORT                 accepts connections on 0.0.0.0:PORT forever; reads each to
                                      EOF (discarding) and closes it
   tcpbench send ADDRESS PORT MIB     sends MIB MiB, half-closes, waits for the other side's
                                      close and prints the seconds from connect to that close
   tcpbench listen PORT -- CMD...     a listening socket on 127.0.0.1:PORT as descriptor 3, then
                                      exec CMD (how berth hands berth-proxy its socket) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buffer[1 << 20];

static struct sockaddr_in address(const char *ip, const char *port) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port)) };
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static int listener(const char *ip, const char *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = address(ip, port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) { perror("bind"); exit(1); }
    return fd;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "sink") == 0) {
        int fd = listener("0.0.0.0", argv[2]);
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c < 0) continue;
            while (read(c, buffer, sizeof buffer) > 0) {}
            close(c);
        }
    }
    if (argc == 5 && strcmp(argv[1], "send") == 0) {
        struct sockaddr_in a = address(argv[2], argv[3]);
        long mib = atol(argv[4]);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
        for (long i = 0; i < mib; i++)
            for (size_t at = 0; at < sizeof buffer;) {
                ssize_t n = write(fd, buffer + at, sizeof buffer - at);
                if (n <= 0) { perror("write"); return 1; }
                at += (size_t)n;
            }
        shutdown(fd, SHUT_WR);
        while (read(fd, buffer, sizeof buffer) > 0) {}
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("%.4f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "listen") == 0 && strcmp(argv[3], "--") == 0) {
        int fd = listener("127.0.0.1", argv[2]);
        if (fd != 3) { dup2(fd, 3); close(fd); }
        execv(argv[4], argv + 4);
        perror("exec");
        return 127;
    }
    fprintf(stderr, "usage: tcpbench sink PORT | send ADDRESS PORT MIB | listen PORT -- CMD...\n");
    return 2;
}
