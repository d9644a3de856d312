/*
 * backoff.h: retry policy as plain functions, no actor: exponential backoff
 * with full jitter, the classification of a failure (retry, rate limited,
 * permanent), HTTP Retry-After parsing, a retry budget and the seedable PRNG
 * the jitter draws from. The rate limiter actor (ratelimit.h) owns one
 * policy, one PRNG and one budget in its state and answers "retry after D"
 * or "give up"; a caller that wants no actor may call these directly.
 *
 * Every function here is pure or touches only the struct it is given: none
 * is safe to call concurrently on the same struct.
 */
#ifndef BATON_ACTORS_BACKOFF_H
#define BATON_ACTORS_BACKOFF_H

#include <baton/baton.h>

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ PRNG */

/* A seedable PRNG (splitmix64 seeding a xoshiro256**): the same seed gives
 * the same sequence on every platform, so tests are reproducible. */
typedef struct bt_prng {
    uint64_t s[4];
} bt_prng_t;

BT_API void bt_prng_seed(bt_prng_t *rng, uint64_t seed);
BT_API uint64_t bt_prng_next(bt_prng_t *rng);
/* Uniform in [0, bound] (inclusive); bound may be UINT64_MAX. No modulo
 * bias (rejection sampling). */
BT_API uint64_t bt_prng_upto(bt_prng_t *rng, uint64_t bound);

/* --------------------------------------------------------------- backoff */

/* Exponential backoff with full jitter ("Exponential Backoff and Jitter",
 * AWS Architecture Blog): after the attempt-th failure (attempt >= 1) the
 * delay is uniform in [0, min(cap_ns, base_ns * 2^(attempt-1))]. Saturates
 * instead of overflowing for large attempts. */
BT_API uint64_t bt_backoff_full_jitter(uint64_t base_ns, uint64_t cap_ns, uint32_t attempt,
                                       bt_prng_t *rng);

/* The upper bound of that delay: min(cap_ns, base_ns * 2^(attempt-1)). */
BT_API uint64_t bt_backoff_ceiling(uint64_t base_ns, uint64_t cap_ns, uint32_t attempt);

/* How a failure should be treated. */
typedef enum bt_failure_class {
    BT_FAILURE_TRANSIENT,    /* retry with backoff (5xx, 408, network errors) */
    BT_FAILURE_RATE_LIMITED, /* retry after Retry-After, else the rate-limit backoff */
    BT_FAILURE_PERMANENT,    /* give up at once (4xx but 408/429, or non-retryable) */
    BT_FAILURE_CLASS_COUNT
} bt_failure_class_t;

/* Flags a caller sets on a failure. */
#define BT_FAILURE_NON_RETRYABLE 0x1u /* the caller knows retrying cannot help */
#define BT_FAILURE_RATE_LIMIT    0x2u /* a rate-limit error without an HTTP status */

/* http_status is 0 when the failure is not an HTTP response (a connection
 * error, a crashed child process). Non-retryable wins over everything; then
 * 429 or the rate-limit flag; then 4xx other than 408 is permanent; the
 * rest is transient. */
BT_API bt_failure_class_t bt_failure_classify(int http_status, uint32_t flags);
BT_API const char *bt_failure_class_name(bt_failure_class_t c);

/* Parses an HTTP Retry-After value (RFC 9110 10.2.3): delta-seconds
 * ("120") or an HTTP-date in any of the three forms recipients must accept
 * (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994").
 * now_unix_s is the current wall-clock time in Unix seconds, used only for
 * the date form; a date in the past gives 0. Leading and trailing blanks
 * are allowed. *delay_ns receives the delay (capped at 2^63 ns). Returns
 * BT_OK, or BT_EINVAL for anything else, leaving *delay_ns untouched. Does
 * not take ownership of value; reads at most len bytes. */
BT_API int bt_retry_after_parse(const char *value, size_t len, int64_t now_unix_s,
                                uint64_t *delay_ns /* OUT */);

/* Unix seconds of a proleptic Gregorian UTC date and time (no validation:
 * callers pass checked fields). */
BT_API int64_t bt_unix_from_utc(int year, int month, int day, int hour, int minute, int second);

/* ----------------------------------------------------------- retry budget */

/* Keeps retries under a fraction of calls (after Finagle's RetryBudget, in
 * integer arithmetic so it is exact): every call deposits ratio_pct/100 of
 * a retry, every retry withdraws one whole retry, and the balance is capped
 * at max(reserve, 1) retries. It starts at reserve, so a few retries are
 * allowed before calls have paid for them; over any stretch of time,
 * retries <= reserve + ratio_pct% of the calls made in it. */
typedef struct bt_retry_budget {
    uint32_t ratio_pct;     /* 0..100 */
    uint32_t reserve;       /* retries allowed on credit */
    uint64_t balance_milli; /* thousandths of a retry */
    uint64_t calls;
    uint64_t retries;
    uint64_t refused;
} bt_retry_budget_t;

/* BT_EINVAL if ratio_pct > 100. */
BT_API int bt_retry_budget_init(bt_retry_budget_t *b, uint32_t ratio_pct, uint32_t reserve);
/* Records one first attempt (not a retry). */
BT_API void bt_retry_budget_deposit(bt_retry_budget_t *b);
/* Takes one retry from the budget: true if allowed (and counted), false if
 * the budget is spent (counted as refused). */
BT_API bool bt_retry_budget_withdraw(bt_retry_budget_t *b);

/* ------------------------------------------------------------- the policy */

/* The retry policy. The service fills it from config.toml. */
typedef struct bt_backoff_args {
    uint64_t base_ns;               /* first ceiling; > 0 */
    uint64_t cap_ns;                /* largest delay; >= base_ns */
    uint32_t max_attempts;          /* attempts in all, first included; >= 1 */
    uint64_t max_elapsed_ns;        /* give up when the next attempt would start later
                                       than this after the first; 0 = no limit */
    uint64_t rate_limit_backoff_ns; /* for rate-limited failures without Retry-After */
    uint64_t retry_after_max_ns;    /* clamp on server-given delays; 0 = cap by max_elapsed */
    uint32_t budget_ratio_pct;      /* retry budget: % of calls; 0..100 */
    uint32_t budget_reserve;        /* retries on credit */
} bt_backoff_args_t;

/* Defaults: base 100 ms, cap 30 s, 5 attempts, 2 min elapsed, rate-limit
 * backoff 60 s, Retry-After clamp 5 min, budget 20% with a reserve of 10. */
BT_API void bt_backoff_args_default(bt_backoff_args_t *out /* OUT */);

/* Checks a policy. Returns BT_OK or BT_EINVAL with a static message a
 * person can act on in *why (may be NULL). */
BT_API int bt_backoff_args_check(const bt_backoff_args_t *a, const char **why /* OUT */);

/* A failure as the caller saw it. */
typedef struct bt_failure {
    int http_status;         /* 0 if not HTTP */
    uint32_t flags;          /* BT_FAILURE_* */
    bool has_retry_after;    /* the server sent Retry-After ... */
    uint64_t retry_after_ns; /* ... parsed with bt_retry_after_parse() */
} bt_failure_t;

/* Why the policy decided what it decided. */
#define BT_RETRY_REASON_MAP(X)                                                                     \
    X(BACKOFF, "retry after an exponential backoff with full jitter")                              \
    X(RETRY_AFTER, "retry when the server's Retry-After says")                                     \
    X(RATE_LIMIT_BACKOFF, "rate limited without Retry-After: the rate-limit backoff")              \
    X(PERMANENT, "give up: permanent failure")                                                     \
    X(MAX_ATTEMPTS, "give up: no attempts left")                                                   \
    X(MAX_ELAPSED, "give up: the next attempt would pass the elapsed-time limit")                  \
    X(BUDGET, "give up: the retry budget is spent")

typedef enum bt_retry_reason {
#define BT_RETRY_REASON_ENUM_(name, text) BT_RETRY_##name,
    BT_RETRY_REASON_MAP(BT_RETRY_REASON_ENUM_)
#undef BT_RETRY_REASON_ENUM_
        BT_RETRY_REASON_COUNT
} bt_retry_reason_t;

BT_API const char *bt_retry_reason_text(bt_retry_reason_t r);

typedef struct bt_retry_decision {
    bool retry;        /* false: give up */
    uint64_t delay_ns; /* when retry: wait this long before the next attempt */
    bt_retry_reason_t reason;
} bt_retry_decision_t;

/* Decides about the next attempt after `attempts` attempts (>= 1) have
 * failed, the first one elapsed_ns ago, the last with failure f. Uses rng
 * for jitter and budget (may be NULL: no budget) for the retry budget,
 * which it charges only when it says retry. */
BT_API bt_retry_decision_t bt_backoff_decide(const bt_backoff_args_t *a, uint32_t attempts,
                                             uint64_t elapsed_ns, const bt_failure_t *f,
                                             bt_prng_t *rng, bt_retry_budget_t *budget);

#ifdef __cplusplus
}
#endif

#endif /* BATON_ACTORS_BACKOFF_H */
