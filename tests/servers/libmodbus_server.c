/* A Modbus TCP server built on libmodbus: an independent peer for tests and benchmarks.
 * usage: libmodbus_server PORT
 * Holding register i holds i; input register i holds 1000 + i; coil i is i % 2; discrete
 * input i is i % 3 == 0. Holding registers 200..201 hold float32 21.5 (big endian words). */
#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s PORT\n", argv[0]); return 2; }
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", atoi(argv[1]));
    modbus_mapping_t *map = modbus_mapping_new(4096, 4096, 10000, 10000);
    if (!ctx || !map) { fprintf(stderr, "init failed\n"); return 1; }
    for (int i = 0; i < 10000; i++) { map->tab_registers[i] = (uint16_t)i; map->tab_input_registers[i] = (uint16_t)(1000 + i); }
    for (int i = 0; i < 4096; i++) { map->tab_bits[i] = i % 2; map->tab_input_bits[i] = (i % 3) == 0; }
    map->tab_registers[200] = 0x41AC; map->tab_registers[201] = 0x0000;  /* 21.5f */
    int server = modbus_tcp_listen(ctx, 64);
    if (server < 0) { fprintf(stderr, "listen: %s\n", modbus_strerror(errno)); return 1; }
    fd_set refset; FD_ZERO(&refset); FD_SET(server, &refset);
    int fdmax = server;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    printf("ready\n"); fflush(stdout);
    for (;;) {
        fd_set rdset = refset;
        if (select(fdmax + 1, &rdset, NULL, NULL, NULL) == -1) { if (errno == EINTR) continue; return 1; }
        for (int fd = 0; fd <= fdmax; fd++) {
            if (!FD_ISSET(fd, &rdset)) continue;
            if (fd == server) {
                int client = accept(server, NULL, NULL);
                if (client >= 0) { FD_SET(client, &refset); if (client > fdmax) fdmax = client; }
                continue;
            }
            modbus_set_socket(ctx, fd);
            int rc = modbus_receive(ctx, query);
            if (rc > 0) modbus_reply(ctx, query, rc, map);
            else if (rc == -1) { close(fd); FD_CLR(fd, &refset); }
        }
    }
}
