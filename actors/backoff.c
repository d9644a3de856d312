/*
 * backoff.c: the retry policy's pure parts: a seedable PRNG, exponential
 * backoff with full jitter, failure classification, Retry-After parsing
 * (delta-seconds and the three HTTP-date forms) and a retry budget. No
 * clock is read here: callers pass elapsed times and "now", so the actor
 * can drive it from bt_now() and tests from virtual time.
 */
#include "backoff.h"

#include <string.h>

#define NS_PER_S 1000000000ull

/* ------------------------------------------------------------------ PRNG */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void bt_prng_seed(bt_prng_t *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t bt_prng_next(bt_prng_t *rng) /* xoshiro256** */
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t bt_prng_upto(bt_prng_t *rng, uint64_t bound)
{
    if (bound == UINT64_MAX)
        return bt_prng_next(rng);
    uint64_t n = bound + 1;
    /* Reject the top partial block so every value is equally likely. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n;
    uint64_t x;
    do
        x = bt_prng_next(rng);
    while (x > limit);
    return x % n;
}

/* --------------------------------------------------------------- backoff */

uint64_t bt_backoff_ceiling(uint64_t base_ns, uint64_t cap_ns, uint32_t attempt)
{
    if (attempt == 0)
        attempt = 1;
    uint32_t shift = attempt - 1;
    if (base_ns == 0)
        return 0;
    /* base << shift would overflow (or pass the cap): the cap wins. */
    if (shift >= 63 || base_ns > (cap_ns >> shift))
        return cap_ns;
    uint64_t c = base_ns << shift;
    return c < cap_ns ? c : cap_ns;
}

uint64_t bt_backoff_full_jitter(uint64_t base_ns, uint64_t cap_ns, uint32_t attempt, bt_prng_t *rng)
{
    return bt_prng_upto(rng, bt_backoff_ceiling(base_ns, cap_ns, attempt));
}

bt_failure_class_t bt_failure_classify(int http_status, uint32_t flags)
{
    if (flags & BT_FAILURE_NON_RETRYABLE)
        return BT_FAILURE_PERMANENT;
    if (http_status == 429 || (flags & BT_FAILURE_RATE_LIMIT))
        return BT_FAILURE_RATE_LIMITED;
    if (http_status >= 400 && http_status < 500 && http_status != 408)
        return BT_FAILURE_PERMANENT;
    return BT_FAILURE_TRANSIENT;
}

const char *bt_failure_class_name(bt_failure_class_t c)
{
    static const char *const names[BT_FAILURE_CLASS_COUNT] = {
        [BT_FAILURE_TRANSIENT] = "transient",
        [BT_FAILURE_RATE_LIMITED] = "rate_limited",
        [BT_FAILURE_PERMANENT] = "permanent",
    };
    return (unsigned)c < BT_FAILURE_CLASS_COUNT ? names[c] : "unknown";
}

/* ----------------------------------------------------------- Retry-After */

int64_t bt_unix_from_utc(int year, int month, int day, int hour, int minute, int second)
{
    /* days_from_civil (H. Hinnant), valid for every proleptic Gregorian year. */
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return days * 86400 + hour * 3600 + minute * 60 + second;
}

typedef struct {
    const char *p, *end;
} cursor_t;

static bool lit(cursor_t *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Exactly n digits. */
static bool digits(cursor_t *c, int n, int *out)
{
    if (c->end - c->p < n)
        return false;
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            return false;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const day_short[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_long[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                        "Friday", "Saturday", "Sunday"};

static bool month(cursor_t *c, int *out)
{
    for (int i = 0; i < 12; i++)
        if (lit(c, month_names[i])) {
            *out = i + 1;
            return true;
        }
    return false;
}

static bool one_of(cursor_t *c, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (lit(c, names[i]))
            return true;
    return false;
}

static bool time_of_day(cursor_t *c, int *h, int *m, int *s)
{
    return digits(c, 2, h) && lit(c, ":") && digits(c, 2, m) && lit(c, ":") && digits(c, 2, s) &&
           *h < 24 && *m < 60 && *s < 61; /* 60: a leap second */
}

static int days_in_month(int y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

static bool http_date(cursor_t *c, int64_t *unix_s)
{
    int d = 0, mo = 0, y = 0, h = 0, mi = 0, s = 0;
    cursor_t save = *c;
    if (one_of(c, day_short, 7) && lit(c, ", ")) { /* IMF-fixdate */
        if (!(digits(c, 2, &d) && lit(c, " ") && month(c, &mo) && lit(c, " ") && digits(c, 4, &y) &&
              lit(c, " ") && time_of_day(c, &h, &mi, &s) && lit(c, " GMT")))
            return false;
    } else if ((*c = save, one_of(c, day_long, 7)) && lit(c, ", ")) { /* RFC 850 */
        if (!(digits(c, 2, &d) && lit(c, "-") && month(c, &mo) && lit(c, "-") && digits(c, 2, &y) &&
              lit(c, " ") && time_of_day(c, &h, &mi, &s) && lit(c, " GMT")))
            return false;
        /* RFC 9110: a two-digit year more than 50 years in the future is
         * in the past century. Relative to now would be exact; this fixed
         * pivot is right until 2069. */
        y += y < 70 ? 2000 : 1900;
    } else if ((*c = save, one_of(c, day_short, 7)) && lit(c, " ")) { /* asctime */
        if (!(month(c, &mo) && lit(c, " ")))
            return false;
        if (lit(c, " ")) {
            if (!digits(c, 1, &d))
                return false;
        } else if (!digits(c, 2, &d)) {
            return false;
        }
        if (!(lit(c, " ") && time_of_day(c, &h, &mi, &s) && lit(c, " ") && digits(c, 4, &y)))
            return false;
    } else {
        return false;
    }
    if (d < 1 || d > days_in_month(y, mo))
        return false;
    *unix_s = bt_unix_from_utc(y, mo, d, h, mi, s);
    return true;
}

int bt_retry_after_parse(const char *value, size_t len, int64_t now_unix_s, uint64_t *delay_ns)
{
    if (value == NULL || delay_ns == NULL)
        return BT_EINVAL;
    cursor_t c = {value, value + len};
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
        c.p++;
    while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t'))
        c.end--;
    if (c.p == c.end)
        return BT_EINVAL;
    const uint64_t max_ns = (uint64_t)1 << 63;
    if (*c.p >= '0' && *c.p <= '9') { /* delta-seconds = 1*DIGIT */
        uint64_t secs = 0;
        for (; c.p < c.end; c.p++) {
            if (*c.p < '0' || *c.p > '9')
                return BT_EINVAL;
            if (secs < max_ns / NS_PER_S)
                secs = secs * 10 + (uint64_t)(*c.p - '0');
        }
        *delay_ns = secs < max_ns / NS_PER_S ? secs * NS_PER_S : max_ns;
        return BT_OK;
    }
    int64_t at;
    if (!http_date(&c, &at) || c.p != c.end)
        return BT_EINVAL;
    if (at <= now_unix_s) {
        *delay_ns = 0;
        return BT_OK;
    }
    uint64_t secs = (uint64_t)(at - now_unix_s);
    *delay_ns = secs < max_ns / NS_PER_S ? secs * NS_PER_S : max_ns;
    return BT_OK;
}

/* ----------------------------------------------------------- retry budget */

int bt_retry_budget_init(bt_retry_budget_t *b, uint32_t ratio_pct, uint32_t reserve)
{
    if (b == NULL || ratio_pct > 100)
        return BT_EINVAL;
    memset(b, 0, sizeof *b);
    b->ratio_pct = ratio_pct;
    b->reserve = reserve;
    b->balance_milli = (uint64_t)reserve * 1000;
    return BT_OK;
}

void bt_retry_budget_deposit(bt_retry_budget_t *b)
{
    uint64_t cap = (uint64_t)(b->reserve > 0 ? b->reserve : 1) * 1000;
    b->calls++;
    b->balance_milli += (uint64_t)b->ratio_pct * 10;
    if (b->balance_milli > cap)
        b->balance_milli = cap;
}

bool bt_retry_budget_withdraw(bt_retry_budget_t *b)
{
    if (b->balance_milli < 1000) {
        b->refused++;
        return false;
    }
    b->balance_milli -= 1000;
    b->retries++;
    return true;
}

/* ------------------------------------------------------------- the policy */

void bt_backoff_args_default(bt_backoff_args_t *out)
{
    *out = (bt_backoff_args_t){
        .base_ns = 100 * 1000000ull,
        .cap_ns = 30 * NS_PER_S,
        .max_attempts = 5,
        .max_elapsed_ns = 120 * NS_PER_S,
        .rate_limit_backoff_ns = 60 * NS_PER_S,
        .retry_after_max_ns = 300 * NS_PER_S,
        .budget_ratio_pct = 20,
        .budget_reserve = 10,
    };
}

int bt_backoff_args_check(const bt_backoff_args_t *a, const char **why)
{
    const char *w = NULL;
    if (a == NULL)
        w = "backoff: no arguments";
    else if (a->base_ns == 0)
        w = "backoff: base must be > 0";
    else if (a->cap_ns < a->base_ns)
        w = "backoff: cap must be >= base";
    else if (a->max_attempts == 0)
        w = "backoff: max_attempts must be >= 1 (it counts the first attempt)";
    else if (a->budget_ratio_pct > 100)
        w = "backoff: retry budget ratio is a percentage, 0..100";
    else if (a->max_elapsed_ns != 0 && a->max_elapsed_ns < a->base_ns)
        w = "backoff: max_elapsed must be 0 (no limit) or >= base";
    if (why != NULL)
        *why = w;
    return w == NULL ? BT_OK : BT_EINVAL;
}

const char *bt_retry_reason_text(bt_retry_reason_t r)
{
    static const char *const text[BT_RETRY_REASON_COUNT] = {
#define BT_RETRY_REASON_TEXT_(name, t) [BT_RETRY_##name] = t,
        BT_RETRY_REASON_MAP(BT_RETRY_REASON_TEXT_)
#undef BT_RETRY_REASON_TEXT_
    };
    return (unsigned)r < BT_RETRY_REASON_COUNT ? text[r] : "unknown";
}

static bt_retry_decision_t give_up(bt_retry_reason_t why)
{
    return (bt_retry_decision_t){.retry = false, .delay_ns = 0, .reason = why};
}

bt_retry_decision_t bt_backoff_decide(const bt_backoff_args_t *a, uint32_t attempts,
                                      uint64_t elapsed_ns, const bt_failure_t *f, bt_prng_t *rng,
                                      bt_retry_budget_t *budget)
{
    bt_failure_class_t cls = bt_failure_classify(f->http_status, f->flags);
    if (cls == BT_FAILURE_PERMANENT)
        return give_up(BT_RETRY_PERMANENT);
    if (attempts >= a->max_attempts)
        return give_up(BT_RETRY_MAX_ATTEMPTS);
    bt_retry_decision_t d = {.retry = true};
    if (cls == BT_FAILURE_RATE_LIMITED && f->has_retry_after) {
        uint64_t clamp = a->retry_after_max_ns;
        d.delay_ns = clamp != 0 && f->retry_after_ns > clamp ? clamp : f->retry_after_ns;
        d.reason = BT_RETRY_RETRY_AFTER;
    } else if (cls == BT_FAILURE_RATE_LIMITED) {
        d.delay_ns = a->rate_limit_backoff_ns;
        d.reason = BT_RETRY_RATE_LIMIT_BACKOFF;
    } else {
        d.delay_ns = bt_backoff_full_jitter(a->base_ns, a->cap_ns, attempts, rng);
        d.reason = BT_RETRY_BACKOFF;
    }
    if (a->max_elapsed_ns != 0 &&
        (elapsed_ns >= a->max_elapsed_ns || d.delay_ns > a->max_elapsed_ns - elapsed_ns))
        return give_up(BT_RETRY_MAX_ELAPSED);
    if (budget != NULL && !bt_retry_budget_withdraw(budget))
        return give_up(BT_RETRY_BUDGET);
    return d;
}
