/*
 * tsan.h: ThreadSanitizer annotations for Concurrency Kit atomics.
 *
 * CK's x86-64 atomics are inline assembly that ThreadSanitizer cannot see,
 * so a happens-before edge carried only by a ck_pr operation is invisible to
 * it. BT_TSAN_RELEASE(p) before the publishing operation and
 * BT_TSAN_ACQUIRE(p) after the observing one restore the edge. Outside TSan
 * builds both compile to nothing.
 */
#ifndef BT_CORE_TSAN_H
#define BT_CORE_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define BT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BT_TSAN 1
#endif
#endif

#ifdef BT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define BT_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define BT_TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define BT_TSAN_ACQUIRE(p) ((void)0)
#define BT_TSAN_RELEASE(p) ((void)0)
#endif

#endif
