/* Shared helpers: the per-thread last error, GenTL info replies, monotonic time, environment integers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake.h"

static _Thread_local GC_ERROR last_code = GC_ERR_SUCCESS;
static _Thread_local char last_text[256] = "no error";

GC_ERROR fake_fail(GC_ERROR code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_text, sizeof last_text, fmt, ap);
    va_end(ap);
    last_code = code;
    return code;
}

GC_API GCGetLastError(GC_ERROR *piErrorCode, char *sErrText, size_t *piSize) {
    if (piErrorCode == NULL || piSize == NULL) return GC_ERR_INVALID_PARAMETER;
    *piErrorCode = last_code;
    size_t n = strlen(last_text) + 1;
    if (sErrText == NULL) {
        *piSize = n;
        return GC_ERR_SUCCESS;
    }
    if (*piSize < n) {
        *piSize = n;
        return GC_ERR_BUFFER_TOO_SMALL;
    }
    memcpy(sErrText, last_text, n);
    *piSize = n;
    return GC_ERR_SUCCESS;
}

GC_ERROR info_put(INFO_DATATYPE type, const void *src, size_t n, INFO_DATATYPE *piType, void *pBuffer,
                  size_t *piSize) {
    if (piSize == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "piSize is NULL");
    if (piType != NULL) *piType = type;
    if (pBuffer == NULL) {
        *piSize = n;
        return GC_ERR_SUCCESS;
    }
    if (*piSize < n) {
        size_t given = *piSize;
        *piSize = n;
        return fake_fail(GC_ERR_BUFFER_TOO_SMALL, "info needs %zu bytes, got %zu", n, given);
    }
    memcpy(pBuffer, src, n);
    *piSize = n;
    return GC_ERR_SUCCESS;
}

GC_ERROR info_str(const char *s, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    return info_put(INFO_DATATYPE_STRING, s, strlen(s) + 1, piType, pBuffer, piSize);
}

GC_ERROR info_u64(uint64_t v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    return info_put(INFO_DATATYPE_UINT64, &v, sizeof v, piType, pBuffer, piSize);
}

GC_ERROR info_u32(uint32_t v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    return info_put(INFO_DATATYPE_UINT32, &v, sizeof v, piType, pBuffer, piSize);
}

GC_ERROR info_i32(int32_t v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    return info_put(INFO_DATATYPE_INT32, &v, sizeof v, piType, pBuffer, piSize);
}

GC_ERROR info_sizet(size_t v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    return info_put(INFO_DATATYPE_SIZET, &v, sizeof v, piType, pBuffer, piSize);
}

GC_ERROR info_bool(bool v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    bool8_t b = v ? 1 : 0;
    return info_put(INFO_DATATYPE_BOOL8, &b, sizeof b, piType, pBuffer, piSize);
}

GC_ERROR info_ptr(const void *v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    return info_put(INFO_DATATYPE_PTR, &v, sizeof v, piType, pBuffer, piSize);
}

uint64_t fake_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void fake_deadline(struct timespec *ts, uint64_t deadline_ns) {
    ts->tv_sec = (time_t)(deadline_ns / 1000000000ULL);
    ts->tv_nsec = (long)(deadline_ns % 1000000000ULL);
}

void fake_cond_init(pthread_cond_t *cond) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

/* An integer from the environment; unset, empty, malformed or out-of-range values give `fallback`
 * (with a line on stderr for the last two, so a typo in a test does not go unnoticed). */
int64_t fake_env_int(const char *name, int64_t fallback, int64_t lo, int64_t hi) {
    const char *text = getenv(name);
    if (text == NULL || *text == '\0') return fallback;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "acqd fake GenTL: %s must be an integer in [%lld, %lld]. Got '%s' instead; using %lld.\n",
                name, (long long)lo, (long long)hi, text, (long long)fallback);
        return fallback;
    }
    return (int64_t)v;
}
