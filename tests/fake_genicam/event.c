/* Events: only NEW_BUFFER on a data stream. Its queue is the stream's output queue, so EventGetData hands
 * over the oldest filled buffer (which becomes unqueued until DSQueueBuffer). Once the device is lost, the
 * buffers already filled are still delivered, then EventGetData times out as with a silent camera. */
#include <string.h>

#include "fake.h"

static fake_device *event_device(const void *h) {
    for (unsigned i = 0; i < g_fake.num_devices; i++) {
        fake_device *d = &g_fake.devs[i];
        if (h == &d->stream.new_buffer && d->open && d->stream.open) return d;
    }
    return NULL;
}

#define REQUIRE_EVENT(d, h)                                                                           \
    fake_device *d = event_device(h);                                                                 \
    do {                                                                                              \
        if (!fake_lib_ready()) return fake_fail(GC_ERR_NOT_INITIALIZED, "GCInitLib not called");     \
        if (d == NULL || !d->stream.new_buffer.registered) {                                          \
            return fake_fail(GC_ERR_INVALID_HANDLE, "not a registered event handle");                \
        }                                                                                             \
    } while (0)

GC_API GCRegisterEvent(EVENTSRC_HANDLE hEventSrc, EVENT_TYPE iEventID, EVENT_HANDLE *phEvent) {
    if (!fake_lib_ready()) return fake_fail(GC_ERR_NOT_INITIALIZED, "GCInitLib not called");
    if (phEvent == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phEvent is NULL");
    fake_device *d = NULL;
    for (unsigned i = 0; i < g_fake.num_devices && d == NULL; i++) {
        if (hEventSrc == &g_fake.devs[i].stream && g_fake.devs[i].open && g_fake.devs[i].stream.open) {
            d = &g_fake.devs[i];
        }
    }
    if (d == NULL || iEventID != EVENT_NEW_BUFFER) {
        return fake_fail(GC_ERR_NOT_IMPLEMENTED, "only NEW_BUFFER events on a data stream are supported");
    }
    pthread_mutex_lock(&d->lock);
    fake_event *ev = &d->stream.new_buffer;
    GC_ERROR err = GC_ERR_SUCCESS;
    if (ev->registered) {
        err = fake_fail(GC_ERR_RESOURCE_IN_USE, "NEW_BUFFER event already registered");
    } else {
        ev->registered = true;
        ev->kill_pending = false;
        *phEvent = ev;
    }
    pthread_mutex_unlock(&d->lock);
    return err;
}

GC_API GCUnregisterEvent(EVENTSRC_HANDLE hEventSrc, EVENT_TYPE iEventID) {
    if (!fake_lib_ready()) return fake_fail(GC_ERR_NOT_INITIALIZED, "GCInitLib not called");
    for (unsigned i = 0; i < g_fake.num_devices; i++) {
        fake_device *d = &g_fake.devs[i];
        if (hEventSrc == &d->stream && d->open && d->stream.open && iEventID == EVENT_NEW_BUFFER) {
            pthread_mutex_lock(&d->lock);
            GC_ERROR err = GC_ERR_SUCCESS;
            if (!d->stream.new_buffer.registered) {
                err = fake_fail(GC_ERR_NOT_AVAILABLE, "NEW_BUFFER event not registered");
            } else {
                d->stream.new_buffer.registered = false;
                d->stream.new_buffer.kill_pending = true;
                pthread_cond_broadcast(&d->stream.output_cond);
            }
            pthread_mutex_unlock(&d->lock);
            return err;
        }
    }
    return fake_fail(GC_ERR_INVALID_HANDLE, "no such event source");
}

GC_API EventGetData(EVENT_HANDLE hEvent, void *pBuffer, size_t *piSize, uint64_t iTimeout) {
    REQUIRE_EVENT(d, hEvent);
    if (pBuffer == NULL || piSize == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "NULL buffer or size");
    if (*piSize < sizeof(EVENT_NEW_BUFFER_DATA)) {
        *piSize = sizeof(EVENT_NEW_BUFFER_DATA);
        return fake_fail(GC_ERR_BUFFER_TOO_SMALL, "event data needs %zu bytes", sizeof(EVENT_NEW_BUFFER_DATA));
    }
    fake_stream *s = &d->stream;
    struct timespec ts;
    const bool forever = iTimeout == GENTL_INFINITE;
    if (!forever) fake_deadline(&ts, fake_now_ns() + iTimeout * 1000000ULL);
    pthread_mutex_lock(&d->lock);
    GC_ERROR err = GC_ERR_SUCCESS;
    while (s->output.count == 0 && !s->new_buffer.kill_pending && err == GC_ERR_SUCCESS) {
        if (forever) {
            pthread_cond_wait(&s->output_cond, &d->lock);
        } else if (pthread_cond_timedwait(&s->output_cond, &d->lock, &ts) != 0 && s->output.count == 0) {
            err = fake_fail(GC_ERR_TIMEOUT, "no new buffer within %llu ms", (unsigned long long)iTimeout);
        }
    }
    if (err == GC_ERR_SUCCESS && s->new_buffer.kill_pending) {
        s->new_buffer.kill_pending = false;
        err = fake_fail(GC_ERR_ABORT, "EventGetData aborted");
    } else if (err == GC_ERR_SUCCESS) {
        fake_buffer *b = fifo_pop(&s->output);
        b->state = BUF_UNQUEUED;
        EVENT_NEW_BUFFER_DATA data = {.BufferHandle = b, .pUserPointer = b->user};
        memcpy(pBuffer, &data, sizeof data);
        *piSize = sizeof data;
    }
    pthread_mutex_unlock(&d->lock);
    return err;
}

GC_API EventGetDataInfo(EVENT_HANDLE hEvent, const void *pInBuffer, size_t iInSize, EVENT_DATA_INFO_CMD iInfoCmd,
                        INFO_DATATYPE *piType, void *pOutBuffer, size_t *piOutSize) {
    REQUIRE_EVENT(d, hEvent);
    (void)d;
    if (pInBuffer == NULL || iInSize < sizeof(EVENT_NEW_BUFFER_DATA)) {
        return fake_fail(GC_ERR_INVALID_PARAMETER, "event data missing or too short");
    }
    EVENT_NEW_BUFFER_DATA data;
    memcpy(&data, pInBuffer, sizeof data);
    switch (iInfoCmd) {
    case EVENT_DATA_ID: return info_ptr(data.BufferHandle, piType, pOutBuffer, piOutSize);
    case EVENT_DATA_VALUE: return info_ptr(data.pUserPointer, piType, pOutBuffer, piOutSize);
    default: return fake_fail(GC_ERR_NOT_AVAILABLE, "event data info %d not available", (int)iInfoCmd);
    }
}

GC_API EventGetInfo(EVENT_HANDLE hEvent, EVENT_INFO_CMD iInfoCmd, INFO_DATATYPE *piType, void *pBuffer,
                    size_t *piSize) {
    REQUIRE_EVENT(d, hEvent);
    pthread_mutex_lock(&d->lock);
    const size_t queued = d->stream.output.count;
    const uint64_t fired = d->stream.new_buffer.fired;
    pthread_mutex_unlock(&d->lock);
    switch (iInfoCmd) {
    case EVENT_EVENT_TYPE: return info_i32(EVENT_NEW_BUFFER, piType, pBuffer, piSize);
    case EVENT_NUM_IN_QUEUE: return info_sizet(queued, piType, pBuffer, piSize);
    case EVENT_NUM_FIRED: return info_u64(fired, piType, pBuffer, piSize);
    case EVENT_SIZE_MAX: return info_sizet(sizeof(EVENT_NEW_BUFFER_DATA), piType, pBuffer, piSize);
    case EVENT_INFO_DATA_SIZE_MAX: return info_sizet(sizeof(void *), piType, pBuffer, piSize);
    default: return fake_fail(GC_ERR_INVALID_PARAMETER, "unknown event info command %d", (int)iInfoCmd);
    }
}

GC_API EventFlush(EVENT_HANDLE hEvent) {
    REQUIRE_EVENT(d, hEvent);
    pthread_mutex_lock(&d->lock);
    fake_buffer *b;
    while ((b = fifo_pop(&d->stream.output)) != NULL) b->state = BUF_UNQUEUED;
    pthread_mutex_unlock(&d->lock);
    return GC_ERR_SUCCESS;
}

GC_API EventKill(EVENT_HANDLE hEvent) {
    REQUIRE_EVENT(d, hEvent);
    pthread_mutex_lock(&d->lock);
    d->stream.new_buffer.kill_pending = true;
    pthread_cond_broadcast(&d->stream.output_cond);
    pthread_mutex_unlock(&d->lock);
    return GC_ERR_SUCCESS;
}
