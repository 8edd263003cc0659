/*
 * id.h - time-ordered job ids: 48 bits of milliseconds then 80 random bits,
 * 26 characters of Crockford base32 (the ULID layout), so ids sort by
 * creation time as text and never collide in practice.
 * Pure: the time and the random bytes come in as arguments.
 */
#ifndef JQ_ID_H
#define JQ_ID_H
#include <stdbool.h>
#include <stdint.h>

enum { ID_LEN = 26, ID_RAND_BYTES = 10 };

void id_make(int64_t ms, const uint8_t rnd[ID_RAND_BYTES], char out[ID_LEN + 1]);
/* True if s is exactly 26 Crockford base32 characters (upper case). */
bool id_valid(const char *s);
/* The millisecond timestamp of a valid id. */
int64_t id_time_ms(const char *id);

#endif
