/*
 * ids.c: UUIDv7 generation. The random part comes from getrandom(2) for
 * every id (no buffer that a fork could duplicate); the time from
 * CLOCK_REALTIME in milliseconds. Within one millisecond a 12-bit counter,
 * started at a random value below 2048, keeps ids of one process strictly
 * increasing (RFC 9562 section 6.2, method 1); when it runs out, the
 * timestamp moves one millisecond ahead of the clock.
 */
#include "ids.h"

#include <baton/baton.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static pthread_mutex_t id_mutex = PTHREAD_MUTEX_INITIALIZER;
static uint64_t id_last_ms; /* guarded by id_mutex */
static uint32_t id_counter; /* guarded by id_mutex */

static int fill_random(uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return BT_ESYS;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int rs_id_new(char out[RS_ID_LEN + 1])
{
    uint8_t r[10];
    if (fill_random(r, sizeof(r)) != 0)
        return BT_ESYS;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;

    pthread_mutex_lock(&id_mutex);
    if (ms > id_last_ms) {
        id_last_ms = ms;
        id_counter = ((uint32_t)r[0] << 8 | r[1]) & 0x7ffu;
    } else if (++id_counter > 0xfffu) {
        id_last_ms++;
        id_counter = ((uint32_t)r[0] << 8 | r[1]) & 0x7ffu;
    }
    ms = id_last_ms;
    uint32_t counter = id_counter;
    pthread_mutex_unlock(&id_mutex);

    uint8_t b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70u | (counter >> 8));
    b[7] = (uint8_t)counter;
    b[8] = (uint8_t)(0x80u | (r[2] & 0x3fu));
    memcpy(b + 9, r + 3, 7);

    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
    return 0;
}

int64_t rs_id_time_ms(const char *id)
{
    if (id == NULL || strlen(id) != RS_ID_LEN || id[8] != '-' || id[14] != '7')
        return -1;
    int64_t ms = 0;
    for (int i = 0; i < 13; i++) {
        if (i == 8)
            continue;
        char c = id[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        ms = ms << 4 | v;
    }
    return ms;
}
