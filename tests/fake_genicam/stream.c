/* Data stream module: announced buffers, the input pool and output queue, start/stop, buffer info.
 *
 * A buffer is UNQUEUED (announced, or handed to the consumer by EventGetData), INPUT (queued for filling),
 * FILLING (being drawn by the engine) or OUTPUT (filled, waiting for EventGetData). DSClose stops the
 * device's engine, drops the NEW_BUFFER event registration and revokes every buffer itself: harvesters
 * never calls GCUnregisterEvent and reopening must work.
 */
#include <stdlib.h>
#include <string.h>

#include "fake.h"

void fifo_push(fake_fifo *q, fake_buffer *b) {
    b->next_queued = NULL;
    if (q->tail != NULL) q->tail->next_queued = b;
    else q->head = b;
    q->tail = b;
    q->count++;
}

void fifo_push_front(fake_fifo *q, fake_buffer *b) {
    b->next_queued = q->head;
    q->head = b;
    if (q->tail == NULL) q->tail = b;
    q->count++;
}

fake_buffer *fifo_pop(fake_fifo *q) {
    fake_buffer *b = q->head;
    if (b == NULL) return NULL;
    q->head = b->next_queued;
    if (q->head == NULL) q->tail = NULL;
    q->count--;
    b->next_queued = NULL;
    return b;
}

/* Move every buffer of `from` to `to` (NULL: unqueue them), setting `state`. */
static void fifo_move_all(fake_fifo *from, fake_fifo *to, fake_buffer_state state) {
    fake_buffer *b;
    while ((b = fifo_pop(from)) != NULL) {
        b->state = state;
        if (to != NULL) fifo_push(to, b);
    }
}

static fake_device *stream_device(const void *h) {
    for (unsigned i = 0; i < g_fake.num_devices; i++) {
        fake_device *d = &g_fake.devs[i];
        if (h == &d->stream && d->open && d->stream.open) return d;
    }
    return NULL;
}

/* Called with d->lock held. */
static fake_buffer *find_buffer(fake_stream *s, const void *h) {
    for (fake_buffer *b = s->announced; b != NULL; b = b->next_announced) {
        if (b == h) return b;
    }
    return NULL;
}

static void free_buffer(fake_buffer *b) {
    if (b->owned) free(b->base);
    free(b);
}

void stream_close(fake_stream *s) {
    fake_buffer *b = s->announced;
    while (b != NULL) {
        fake_buffer *next = b->next_announced;
        free_buffer(b);
        b = next;
    }
    s->announced = NULL;
    s->num_announced = 0;
    memset(&s->input, 0, sizeof s->input);
    memset(&s->output, 0, sizeof s->output);
    s->open = s->grabbing = false;
    s->new_buffer.registered = false;
    s->new_buffer.kill_pending = true; /* wake and abort any EventGetData still waiting */
    pthread_cond_broadcast(&s->output_cond);
}

#define REQUIRE_STREAM(d, h)                                                                          \
    fake_device *d = stream_device(h);                                                                \
    do {                                                                                              \
        if (!fake_lib_ready()) return fake_fail(GC_ERR_NOT_INITIALIZED, "GCInitLib not called");     \
        if (d == NULL) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open data stream handle");    \
    } while (0)

static GC_ERROR announce(fake_device *d, unsigned char *base, size_t size, void *user, bool owned,
                         BUFFER_HANDLE *phBuffer) {
    fake_buffer *b = calloc(1, sizeof *b);
    if (b == NULL) return fake_fail(GC_ERR_OUT_OF_MEMORY, "no memory for a buffer");
    b->ds = &d->stream;
    b->base = base;
    b->size = size;
    b->user = user;
    b->owned = owned;
    b->state = BUF_UNQUEUED;
    pthread_mutex_lock(&d->lock);
    b->next_announced = d->stream.announced;
    d->stream.announced = b;
    d->stream.num_announced++;
    pthread_mutex_unlock(&d->lock);
    *phBuffer = b;
    return GC_ERR_SUCCESS;
}

GC_API DSAnnounceBuffer(DS_HANDLE hDataStream, void *pBuffer, size_t iSize, void *pPrivate, BUFFER_HANDLE *phBuffer) {
    REQUIRE_STREAM(d, hDataStream);
    if (pBuffer == NULL || iSize == 0 || phBuffer == NULL) {
        return fake_fail(GC_ERR_INVALID_PARAMETER, "buffer, size and handle pointer are required");
    }
    return announce(d, pBuffer, iSize, pPrivate, false, phBuffer);
}

GC_API DSAllocAndAnnounceBuffer(DS_HANDLE hDataStream, size_t iSize, void *pPrivate, BUFFER_HANDLE *phBuffer) {
    REQUIRE_STREAM(d, hDataStream);
    if (iSize == 0 || phBuffer == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "size and handle pointer required");
    unsigned char *base = malloc(iSize);
    if (base == NULL) return fake_fail(GC_ERR_OUT_OF_MEMORY, "no memory for %zu bytes", iSize);
    GC_ERROR err = announce(d, base, iSize, pPrivate, true, phBuffer);
    if (err != GC_ERR_SUCCESS) free(base);
    return err;
}

GC_API DSRevokeBuffer(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer, void **pBuffer, void **pPrivate) {
    REQUIRE_STREAM(d, hDataStream);
    pthread_mutex_lock(&d->lock);
    fake_stream *s = &d->stream;
    fake_buffer *b = find_buffer(s, hBuffer);
    GC_ERROR err = GC_ERR_SUCCESS;
    if (b == NULL) {
        err = fake_fail(GC_ERR_INVALID_HANDLE, "not a buffer of this stream");
    } else if (b->state != BUF_UNQUEUED) {
        err = fake_fail(GC_ERR_BUSY, "buffer is queued or being filled; flush the queues first");
    } else {
        fake_buffer **link = &s->announced;
        while (*link != b) link = &(*link)->next_announced;
        *link = b->next_announced;
        s->num_announced--;
        if (pBuffer != NULL) *pBuffer = b->owned ? NULL : b->base;
        if (pPrivate != NULL) *pPrivate = b->user;
        free_buffer(b);
    }
    pthread_mutex_unlock(&d->lock);
    return err;
}

GC_API DSQueueBuffer(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer) {
    REQUIRE_STREAM(d, hDataStream);
    pthread_mutex_lock(&d->lock);
    fake_buffer *b = find_buffer(&d->stream, hBuffer);
    GC_ERROR err = GC_ERR_SUCCESS;
    if (b == NULL) {
        err = fake_fail(GC_ERR_INVALID_HANDLE, "not a buffer of this stream");
    } else if (b->state != BUF_UNQUEUED) {
        err = fake_fail(GC_ERR_RESOURCE_IN_USE, "buffer is already queued");
    } else {
        b->state = BUF_INPUT;
        b->new_data = false;
        fifo_push(&d->stream.input, b);
    }
    pthread_mutex_unlock(&d->lock);
    return err;
}

GC_API DSFlushQueue(DS_HANDLE hDataStream, ACQ_QUEUE_TYPE iOperation) {
    REQUIRE_STREAM(d, hDataStream);
    pthread_mutex_lock(&d->lock);
    fake_stream *s = &d->stream;
    GC_ERROR err = GC_ERR_SUCCESS;
    switch (iOperation) {
    case ACQ_QUEUE_INPUT_TO_OUTPUT:
        s->new_buffer.fired += s->input.count;
        fifo_move_all(&s->input, &s->output, BUF_OUTPUT);
        pthread_cond_broadcast(&s->output_cond);
        break;
    case ACQ_QUEUE_OUTPUT_DISCARD: fifo_move_all(&s->output, NULL, BUF_UNQUEUED); break;
    case ACQ_QUEUE_ALL_TO_INPUT:
        fifo_move_all(&s->output, &s->input, BUF_INPUT);
        __attribute__((fallthrough)); /* and the unqueued buffers too */
    case ACQ_QUEUE_UNQUEUED_TO_INPUT:
        for (fake_buffer *b = s->announced; b != NULL; b = b->next_announced) {
            if (b->state == BUF_UNQUEUED) {
                b->state = BUF_INPUT;
                b->new_data = false;
                fifo_push(&s->input, b);
            }
        }
        break;
    case ACQ_QUEUE_ALL_DISCARD:
        fifo_move_all(&s->input, NULL, BUF_UNQUEUED);
        fifo_move_all(&s->output, NULL, BUF_UNQUEUED);
        break;
    default: err = fake_fail(GC_ERR_INVALID_PARAMETER, "unknown flush operation %d", (int)iOperation);
    }
    pthread_mutex_unlock(&d->lock);
    return err;
}

GC_API DSStartAcquisition(DS_HANDLE hDataStream, ACQ_START_FLAGS iStartFlags, uint64_t iNumToAcquire) {
    (void)iStartFlags;
    REQUIRE_STREAM(d, hDataStream);
    pthread_mutex_lock(&d->lock);
    fake_stream *s = &d->stream;
    GC_ERROR err = GC_ERR_SUCCESS;
    if (s->grabbing) {
        err = fake_fail(GC_ERR_RESOURCE_IN_USE, "acquisition already started on this stream");
    } else {
        s->grabbing = true;
        s->delivered = s->underrun = s->started = 0;
        s->to_acquire = iNumToAcquire == GENTL_INFINITE ? 0 : iNumToAcquire;
    }
    pthread_mutex_unlock(&d->lock);
    return err;
}

GC_API DSStopAcquisition(DS_HANDLE hDataStream, ACQ_STOP_FLAGS iStopFlags) {
    (void)iStopFlags;
    REQUIRE_STREAM(d, hDataStream);
    pthread_mutex_lock(&d->lock);
    d->stream.grabbing = false; /* a buffer being filled returns to the input pool */
    pthread_mutex_unlock(&d->lock);
    return GC_ERR_SUCCESS;
}

static GC_ERROR stream_info(fake_device *d, STREAM_INFO_CMD cmd, INFO_DATATYPE *piType, void *pBuffer,
                            size_t *piSize) {
    fake_stream *s = &d->stream;
    switch (cmd) {
    case STREAM_INFO_ID: return info_str("stream0", piType, pBuffer, piSize);
    case STREAM_INFO_NUM_DELIVERED: return info_u64(s->delivered, piType, pBuffer, piSize);
    case STREAM_INFO_NUM_UNDERRUN: return info_u64(s->underrun, piType, pBuffer, piSize);
    case STREAM_INFO_NUM_ANNOUNCED: return info_sizet(s->num_announced, piType, pBuffer, piSize);
    case STREAM_INFO_NUM_QUEUED: return info_sizet(s->input.count, piType, pBuffer, piSize);
    case STREAM_INFO_NUM_AWAIT_DELIVERY: return info_sizet(s->output.count, piType, pBuffer, piSize);
    case STREAM_INFO_NUM_STARTED: return info_u64(s->started, piType, pBuffer, piSize);
    case STREAM_INFO_PAYLOAD_SIZE: return info_sizet(device_payload_size(&d->regs), piType, pBuffer, piSize);
    case STREAM_INFO_IS_GRABBING: return info_bool(s->grabbing, piType, pBuffer, piSize);
    case STREAM_INFO_DEFINES_PAYLOADSIZE: return info_bool(true, piType, pBuffer, piSize);
    case STREAM_INFO_TLTYPE: return info_str(FAKE_TL_TYPE, piType, pBuffer, piSize);
    case STREAM_INFO_NUM_CHUNKS_MAX: return info_sizet(0, piType, pBuffer, piSize);
    case STREAM_INFO_BUF_ANNOUNCE_MIN: return info_sizet(1, piType, pBuffer, piSize);
    case STREAM_INFO_BUF_ALIGNMENT: return info_sizet(1, piType, pBuffer, piSize);
    default: return fake_fail(GC_ERR_INVALID_PARAMETER, "unknown stream info command %d", (int)cmd);
    }
}

GC_API DSGetInfo(DS_HANDLE hDataStream, STREAM_INFO_CMD iInfoCmd, INFO_DATATYPE *piType, void *pBuffer,
                 size_t *piSize) {
    REQUIRE_STREAM(d, hDataStream);
    pthread_mutex_lock(&d->lock);
    GC_ERROR err = stream_info(d, iInfoCmd, piType, pBuffer, piSize);
    pthread_mutex_unlock(&d->lock);
    return err;
}

GC_API DSGetBufferID(DS_HANDLE hDataStream, uint32_t iIndex, BUFFER_HANDLE *phBuffer) {
    REQUIRE_STREAM(d, hDataStream);
    if (phBuffer == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phBuffer is NULL");
    pthread_mutex_lock(&d->lock);
    fake_buffer *b = d->stream.announced;
    for (uint32_t i = 0; b != NULL && i < iIndex; i++) b = b->next_announced;
    pthread_mutex_unlock(&d->lock);
    if (b == NULL) return fake_fail(GC_ERR_INVALID_INDEX, "buffer index %u out of range", iIndex);
    *phBuffer = b;
    return GC_ERR_SUCCESS;
}

GC_API DSClose(DS_HANDLE hDataStream) {
    REQUIRE_STREAM(d, hDataStream);
    engine_stop(d);
    pthread_mutex_lock(&d->lock);
    stream_close(&d->stream);
    pthread_mutex_unlock(&d->lock);
    return GC_ERR_SUCCESS;
}

GC_API DSGetParentDev(DS_HANDLE hDataStream, DEV_HANDLE *phDevice) {
    REQUIRE_STREAM(d, hDataStream);
    if (phDevice == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phDevice is NULL");
    *phDevice = d;
    return GC_ERR_SUCCESS;
}

/* Called with d->lock held. */
static GC_ERROR buffer_info(fake_buffer *b, BUFFER_INFO_CMD cmd, INFO_DATATYPE *piType, void *pBuffer,
                            size_t *piSize) {
    switch (cmd) {
    case BUFFER_INFO_BASE: return info_ptr(b->base, piType, pBuffer, piSize);
    case BUFFER_INFO_SIZE: return info_sizet(b->size, piType, pBuffer, piSize);
    case BUFFER_INFO_USER_PTR: return info_ptr(b->user, piType, pBuffer, piSize);
    case BUFFER_INFO_TIMESTAMP: return info_u64(b->timestamp_ns, piType, pBuffer, piSize);
    case BUFFER_INFO_NEW_DATA: return info_bool(b->new_data, piType, pBuffer, piSize);
    case BUFFER_INFO_IS_QUEUED:
        return info_bool(b->state == BUF_INPUT || b->state == BUF_OUTPUT, piType, pBuffer, piSize);
    case BUFFER_INFO_IS_ACQUIRING: return info_bool(b->state == BUF_FILLING, piType, pBuffer, piSize);
    case BUFFER_INFO_IS_INCOMPLETE: return info_bool(b->incomplete, piType, pBuffer, piSize);
    case BUFFER_INFO_TLTYPE: return info_str(FAKE_TL_TYPE, piType, pBuffer, piSize);
    case BUFFER_INFO_SIZE_FILLED: return info_sizet(b->filled, piType, pBuffer, piSize);
    case BUFFER_INFO_WIDTH: return info_sizet(b->width, piType, pBuffer, piSize);
    case BUFFER_INFO_HEIGHT: return info_sizet(b->height, piType, pBuffer, piSize);
    case BUFFER_INFO_XOFFSET: return info_sizet(b->offset_x, piType, pBuffer, piSize);
    case BUFFER_INFO_YOFFSET: return info_sizet(b->offset_y, piType, pBuffer, piSize);
    case BUFFER_INFO_XPADDING:
    case BUFFER_INFO_YPADDING:
    case BUFFER_INFO_IMAGEOFFSET:
    case BUFFER_INFO_DELIVERED_CHUNKPAYLOADSIZE: return info_sizet(0, piType, pBuffer, piSize);
    case BUFFER_INFO_FRAMEID: return info_u64(b->frame_id, piType, pBuffer, piSize);
    case BUFFER_INFO_IMAGEPRESENT: return info_bool(true, piType, pBuffer, piSize);
    case BUFFER_INFO_PAYLOADTYPE: return info_sizet(PAYLOAD_TYPE_IMAGE, piType, pBuffer, piSize);
    case BUFFER_INFO_PIXELFORMAT: return info_u64(b->pixel_format, piType, pBuffer, piSize);
    case BUFFER_INFO_PIXELFORMAT_NAMESPACE: return info_u64(PIXELFORMAT_NAMESPACE_PFNC_32BIT, piType, pBuffer, piSize);
    case BUFFER_INFO_DELIVERED_IMAGEHEIGHT: return info_sizet(b->delivered_rows, piType, pBuffer, piSize);
    case BUFFER_INFO_CHUNKLAYOUTID: return info_u64(0, piType, pBuffer, piSize);
    case BUFFER_INFO_PIXEL_ENDIANNESS: return info_i32(PIXELENDIANNESS_LITTLE, piType, pBuffer, piSize);
    case BUFFER_INFO_DATA_SIZE: return info_sizet(b->data_size, piType, pBuffer, piSize);
    case BUFFER_INFO_TIMESTAMP_NS: return info_u64(b->timestamp_ns, piType, pBuffer, piSize);
    case BUFFER_INFO_DATA_LARGER_THAN_BUFFER: return info_bool(b->larger_than_buffer, piType, pBuffer, piSize);
    case BUFFER_INFO_CONTAINS_CHUNKDATA:
    case BUFFER_INFO_IS_COMPOSITE: return info_bool(false, piType, pBuffer, piSize);
    default: return fake_fail(GC_ERR_NOT_AVAILABLE, "buffer info %d not available", (int)cmd);
    }
}

GC_API DSGetBufferInfo(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer, BUFFER_INFO_CMD iInfoCmd, INFO_DATATYPE *piType,
                       void *pBuffer, size_t *piSize) {
    REQUIRE_STREAM(d, hDataStream);
    pthread_mutex_lock(&d->lock);
    fake_buffer *b = find_buffer(&d->stream, hBuffer);
    GC_ERROR err = b == NULL ? fake_fail(GC_ERR_INVALID_HANDLE, "not a buffer of this stream")
                             : buffer_info(b, iInfoCmd, piType, pBuffer, piSize);
    pthread_mutex_unlock(&d->lock);
    return err;
}

GC_API DSGetBufferInfoStacked(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer, DS_BUFFER_INFO_STACKED *pInfoStacked,
                              size_t iNumInfos) {
    if (pInfoStacked == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "pInfoStacked is NULL");
    GC_ERROR first = GC_ERR_SUCCESS;
    for (size_t i = 0; i < iNumInfos; i++) {
        DS_BUFFER_INFO_STACKED *e = &pInfoStacked[i];
        INFO_DATATYPE type = INFO_DATATYPE_UNKNOWN;
        size_t size = e->iSize;
        e->iResult = DSGetBufferInfo(hDataStream, hBuffer, e->iInfoCmd, &type, e->pBuffer, &size);
        e->iType = type;
        e->iSize = size;
        if (e->iResult != GC_ERR_SUCCESS && first == GC_ERR_SUCCESS) first = e->iResult;
    }
    return first;
}

GC_API DSGetBufferChunkData(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer, SINGLE_CHUNK_DATA *pChunkData,
                            size_t *piNumChunks) {
    (void)hBuffer;
    (void)pChunkData;
    REQUIRE_STREAM(d, hDataStream);
    (void)d;
    if (piNumChunks == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "piNumChunks is NULL");
    *piNumChunks = 0; /* frames carry no chunk data */
    return GC_ERR_SUCCESS;
}

GC_API DSGetNumBufferParts(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer, uint32_t *piNumParts) {
    (void)hBuffer;
    REQUIRE_STREAM(d, hDataStream);
    (void)d;
    if (piNumParts == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "piNumParts is NULL");
    *piNumParts = 0; /* single-part image buffers */
    return GC_ERR_SUCCESS;
}
