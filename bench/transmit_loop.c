/* The floor for host overhead per APDU: a minimal C loop over SCardTransmit.
 * Usage: transmit_loop READER N HEXAPDU
 * Connects shared with T=0|T=1, opens one transaction, sends the APDU N
 * times, checks each answer ends in 90 00, prints nothing on success. */
#include <PCSC/winscard.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_hex(const char *s, unsigned char *out, int max) {
    int n = 0, hi = -1;
    for (; *s; s++) {
        int v;
        if (*s >= '0' && *s <= '9') v = *s - '0';
        else if (*s >= 'a' && *s <= 'f') v = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F') v = *s - 'A' + 10;
        else continue;
        if (hi < 0) hi = v;
        else { if (n >= max) return -1; out[n++] = (unsigned char)(hi << 4 | v); hi = -1; }
    }
    return hi < 0 ? n : -1;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s READER N HEXAPDU\n", argv[0]); return 2; }
    long count = strtol(argv[2], NULL, 10);
    unsigned char apdu[261], resp[258];
    int len = parse_hex(argv[3], apdu, sizeof apdu);
    if (len < 4) { fprintf(stderr, "bad APDU\n"); return 2; }
    SCARDCONTEXT ctx; SCARDHANDLE card; DWORD proto;
    LONG rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &ctx);
    if (rv != SCARD_S_SUCCESS) { fprintf(stderr, "establish: %s\n", pcsc_stringify_error(rv)); return 3; }
    rv = SCardConnect(ctx, argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card, &proto);
    if (rv != SCARD_S_SUCCESS) { fprintf(stderr, "connect: %s\n", pcsc_stringify_error(rv)); return 3; }
    const SCARD_IO_REQUEST *pci = proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    SCardBeginTransaction(card);
    for (long i = 0; i < count; i++) {
        DWORD rlen = sizeof resp;
        rv = SCardTransmit(card, pci, apdu, (DWORD)len, NULL, resp, &rlen);
        if (rv != SCARD_S_SUCCESS) { fprintf(stderr, "transmit: %s\n", pcsc_stringify_error(rv)); return 5; }
        if (rlen < 2 || resp[rlen - 2] != 0x90 || resp[rlen - 1] != 0x00) { fprintf(stderr, "status not 9000\n"); return 4; }
    }
    SCardEndTransaction(card, SCARD_LEAVE_CARD);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return 0;
}
