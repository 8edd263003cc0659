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
/* Monotonic generation: ids made through one generator strictly increase,
 * even within one millisecond (the random part of the last id is
 * incremented) or if the clock steps back. */
struct id_gen {
    int64_t last_ms;
    uint8_t last_rnd[ID_RAND_BYTES];
};
void id_next(struct id_gen *g, int64_t ms, const uint8_t rnd[ID_RAND_BYTES],
             char out[ID_LEN + 1]);

/* True if s is exactly 26 Crockford base32 characters (upper case). */
bool id_valid(const char *s);
/* The millisecond timestamp of a valid id. */
int64_t id_time_ms(const char *id);

#endif
