/* digest.h — SHA-256, random bytes and base64: what the topology export
 * (RabbitMQ password hashes, password files) and the run reports (a
 * digest of each value a run saw) share. SHA-256 is our own (FIPS
 * 180-4): libcrypto's would set up OpenSSL 3's providers in a daemon
 * that uses no TLS. */
#ifndef PB_DIGEST_H
#define PB_DIGEST_H

#include <stddef.h>

#define PB_SHA256_LEN 32
#define PB_SHA256_HEX_LEN 64

/* out = SHA-256 of the n bytes at p. */
void pb_sha256(const void *p, size_t n, unsigned char out[PB_SHA256_LEN]);

/* hex = lowercase hex SHA-256 of the n bytes at p, NUL-terminated. */
void pb_sha256_hex(const void *p, size_t n, char hex[PB_SHA256_HEX_LEN + 1]);

/* Fills buf with n bytes from the kernel's random source (getrandom).
 * Returns 0, or -1 with errno set. */
int pb_random_bytes(void *buf, size_t n);

/* Standard base64 (RFC 4648, with padding) of the n bytes at p into out,
 * which must hold pb_base64_len(n) bytes (NUL included). Returns out. */
char *pb_base64_encode(const void *p, size_t n, char *out);
size_t pb_base64_len(size_t n);

#endif
