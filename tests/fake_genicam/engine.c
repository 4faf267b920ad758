/* The camera's acquisition engine: one thread per acquiring device that paces, draws and delivers frames.
 *
 * AcquisitionStart fixes the geometry (ROI, pixel format), resets frame ids to 0 and starts the thread;
 * AcquisitionStop (or DSClose/DevClose) stops and joins it. Each frame id is consumed whether the frame is
 * delivered, delivered incomplete, or dropped because no buffer is queued (then FakeDroppedFrames and the
 * stream's NUM_UNDERRUN count it). Pacing: free run every max(ExposureTime, 1/AcquisitionFrameRate), or with
 * TriggerMode=On and TriggerSource=Software one frame (after ExposureTime) per TriggerSoftware.
 *
 * Faults, read live from the registers (0 = off): FaultStallAfter/FaultStallMs pause once before frame id N;
 * FaultIncompleteEvery=K delivers frames with (id + 1) % K == 0 half filled and flagged incomplete;
 * FaultDisconnectAfter=N loses the device after N frames (the thread ends, registers fail with GC_ERR_IO).
 *
 * Like a real camera's DMA, delivering a frame should cost the host little: the pattern repeats every
 * FAKE_PHASES frames, so each phase is drawn once into a cache (when FAKE_PHASES frames fit in
 * FAKE_PHASE_CACHE_BYTES: up to 2048x2048 Mono16) and later frames are copied from it. Drawing cost ~15-18% of a
 * core at 350 frames/s of 1024x1024 Mono16, on the cores the pipeline under test needs.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "fake.h"

static uint64_t frame_period_ns(const fake_regs *r) {
    const double exposure = r->exposure_us * 1e3, period = 1e9 / r->frame_rate_hz;
    return (uint64_t)(exposure > period ? exposure : period);
}

/* Sleep until `deadline_ns` or until stopped; called with d->lock held. Returns false when stopped. */
static bool wait_until(fake_device *d, uint64_t deadline_ns) {
    struct timespec ts;
    fake_deadline(&ts, deadline_ns);
    while (!d->eng.stop && fake_now_ns() < deadline_ns) pthread_cond_timedwait(&d->engine_cond, &d->lock, &ts);
    return !d->eng.stop;
}

static bool software_triggered(const fake_regs *r) { return r->trigger_mode == 1; }

/* Wait for the moment of the next frame; false when stopped. */
static bool wait_next_frame(fake_device *d, uint64_t *due) {
    fake_engine *e = &d->eng;
    for (;;) {
        if (e->stop) return false;
        if (!software_triggered(&d->regs)) break;
        if (d->regs.trigger_source == TRIGGER_SOURCE_SOFTWARE && e->pending_triggers > 0) {
            e->pending_triggers--;
            *due = fake_now_ns() + (uint64_t)(d->regs.exposure_us * 1e3);
            return wait_until(d, *due);
        }
        pthread_cond_wait(&d->engine_cond, &d->lock);
        *due = fake_now_ns();
    }
    const uint64_t period = frame_period_ns(&d->regs), now = fake_now_ns();
    *due += period;
    if (*due + period < now) *due = now; /* fell behind: do not burst to catch up */
    return wait_until(d, *due);
}

static void describe_fill(fake_buffer *b, const fake_engine *e, uint64_t ts, bool incomplete, size_t rows) {
    const size_t payload = e->width * e->height * e->bytes_per_pixel;
    b->new_data = true;
    b->frame_id = e->frame_id;
    b->timestamp_ns = ts;
    b->width = e->width;
    b->height = e->height;
    b->offset_x = e->offset_x;
    b->offset_y = e->offset_y;
    b->pixel_format = e->pixel_format;
    b->data_size = payload;
    b->larger_than_buffer = payload > b->size;
    b->incomplete = incomplete || b->larger_than_buffer;
    b->delivered_rows = rows;
    b->filled = rows * e->width * e->bytes_per_pixel;
}

/* Draw `rows` rows of frame `frame_id` into `dst`, from the phase cache when there is one (engine thread only). */
static void draw_frame(fake_engine *e, unsigned char *dst, size_t rows, uint64_t frame_id) {
    const size_t row_bytes = e->width * e->bytes_per_pixel;
    if (e->phases == NULL) {
        pattern_draw(dst, e->ring, e->lut, e->width, e->height, rows, e->bytes_per_pixel, frame_id);
        return;
    }
    const size_t phase = (size_t)(frame_id % FAKE_PHASES);
    unsigned char *cached = e->phases + phase * row_bytes * e->height;
    if (!e->phase_drawn[phase]) {
        pattern_draw(cached, e->ring, e->lut, e->width, e->height, e->height, e->bytes_per_pixel, frame_id);
        e->phase_drawn[phase] = true;
    }
    memcpy(dst, cached, rows * row_bytes);
}

/* Draw frame e->frame_id into the next queued buffer, or count it dropped. Called with d->lock held;
 * releases it while drawing (the buffer is FILLING, so nobody else touches it). */
static void produce_frame(fake_device *d) {
    fake_engine *e = &d->eng;
    fake_stream *s = &d->stream;
    fake_buffer *b = (s->open && s->grabbing) ? fifo_pop(&s->input) : NULL;
    if (b == NULL) {
        e->dropped++;
        if (s->open && s->grabbing) s->underrun++;
        return;
    }
    b->state = BUF_FILLING;
    s->started++;
    const int64_t every = d->regs.fault_incomplete_every;
    const bool incomplete = every > 0 && (e->frame_id + 1) % (uint64_t)every == 0;
    const size_t row_bytes = e->width * e->bytes_per_pixel;
    size_t rows = incomplete ? e->height / 2 : e->height;
    if (rows * row_bytes > b->size) rows = b->size / row_bytes;
    const uint64_t ts = fake_now_ns();
    const uint64_t frame_id = e->frame_id;
    pthread_mutex_unlock(&d->lock);
    draw_frame(e, b->base, rows, frame_id); /* the rest keeps what it held, as on a device: the consumer zeroes */
    pthread_mutex_lock(&d->lock);
    describe_fill(b, e, ts, incomplete, rows);
    if (s->grabbing) {
        b->state = BUF_OUTPUT;
        fifo_push(&s->output, b);
        s->delivered++;
        s->new_buffer.fired++;
        if (s->to_acquire > 0 && s->delivered >= s->to_acquire) s->grabbing = false;
        pthread_cond_broadcast(&s->output_cond);
    } else { /* the stream stopped while we drew: the buffer goes back to the input pool */
        b->state = BUF_INPUT;
        b->new_data = false;
        fifo_push_front(&s->input, b);
    }
}

static void *engine_main(void *arg) {
    fake_device *d = arg;
    prctl(PR_SET_NAME, "acqd-fake-eng", 0, 0, 0); /* benchmarks tell its CPU apart from the consumer's */
    fake_engine *e = &d->eng;
    pthread_mutex_lock(&d->lock);
    uint64_t due = fake_now_ns();
    while (wait_next_frame(d, &due)) {
        const fake_regs *r = &d->regs;
        if (r->fault_stall_after > 0 && !e->stalled && e->frame_id >= (uint64_t)r->fault_stall_after) {
            e->stalled = true;
            if (!wait_until(d, fake_now_ns() + (uint64_t)r->fault_stall_ms * 1000000ULL)) break;
            due = fake_now_ns();
        }
        produce_frame(d);
        e->frame_id++;
        if (r->fault_disconnect_after > 0 && e->frame_id >= (uint64_t)r->fault_disconnect_after) {
            d->lost = true;
            pthread_cond_broadcast(&d->stream.output_cond);
            break;
        }
        if (e->frames_left > 0 && --e->frames_left == 0) break;
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static void release_geometry(fake_engine *e) {
    free(e->ring);
    e->ring = NULL;
    free(e->phases);
    e->phases = NULL;
}

/* Called with engine_lock and d->lock held. */
static GC_ERROR prepare(fake_device *d) {
    fake_engine *e = &d->eng;
    const fake_regs *r = &d->regs;
    e->width = (size_t)r->width;
    e->height = (size_t)r->height;
    e->offset_x = (size_t)r->offset_x;
    e->offset_y = (size_t)r->offset_y;
    e->pixel_format = (uint64_t)r->pixel_format;
    e->bytes_per_pixel = e->pixel_format == PFNC_MONO8 ? 1 : 2;
    pattern_lut(e->lut, e->pixel_format == PFNC_MONO8 ? 8 : e->pixel_format == PFNC_MONO12 ? 12 : 16);
    e->ring = pattern_ring(e->width, e->height);
    if (e->ring == NULL) return fake_fail(GC_ERR_OUT_OF_MEMORY, "no memory for a %zux%zu frame", e->width, e->height);
    const size_t frame_bytes = e->width * e->height * e->bytes_per_pixel;
    e->phases = frame_bytes <= FAKE_PHASE_CACHE_BYTES / FAKE_PHASES ? malloc(FAKE_PHASES * frame_bytes) : NULL;
    memset(e->phase_drawn, 0, sizeof e->phase_drawn); /* no cache (too large, or no memory): frames are drawn */
    e->frame_id = e->dropped = e->pending_triggers = 0;
    e->stop = e->stalled = false;
    e->frames_left = r->acq_mode == ACQ_MODE_SINGLE ? 1 : r->acq_mode == ACQ_MODE_MULTI ? r->acq_frame_count : -1;
    return GC_ERR_SUCCESS;
}

GC_ERROR engine_start(fake_device *d) {
    pthread_mutex_lock(&d->engine_lock);
    pthread_mutex_lock(&d->lock);
    GC_ERROR err = GC_ERR_SUCCESS;
    if (d->lost) {
        err = fake_fail(GC_ERR_IO, "device %s is disconnected", d->id);
    } else if (!d->eng.active) { /* AcquisitionStart while acquiring is ignored */
        err = prepare(d);
        if (err == GC_ERR_SUCCESS) {
            if (pthread_create(&d->eng.thread, NULL, engine_main, d) == 0) {
                d->eng.joinable = d->eng.active = true;
            } else {
                release_geometry(&d->eng);
                err = fake_fail(GC_ERR_RESOURCE_EXHAUSTED, "cannot start the acquisition thread");
            }
        }
    }
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_unlock(&d->engine_lock);
    return err;
}

void engine_stop(fake_device *d) {
    pthread_mutex_lock(&d->engine_lock);
    pthread_mutex_lock(&d->lock);
    const bool joinable = d->eng.joinable;
    d->eng.stop = true;
    pthread_cond_broadcast(&d->engine_cond);
    pthread_mutex_unlock(&d->lock);
    if (joinable) pthread_join(d->eng.thread, NULL);
    pthread_mutex_lock(&d->lock);
    d->eng.joinable = d->eng.active = false;
    release_geometry(&d->eng);
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_unlock(&d->engine_lock);
}

void engine_trigger(fake_device *d) {
    pthread_mutex_lock(&d->lock);
    if (d->eng.active && software_triggered(&d->regs) && d->regs.trigger_source == TRIGGER_SOURCE_SOFTWARE) {
        d->eng.pending_triggers++;
        pthread_cond_broadcast(&d->engine_cond);
    }
    pthread_mutex_unlock(&d->lock);
}
