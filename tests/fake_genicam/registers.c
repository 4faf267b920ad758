/* The remote device's register map (the "Device" port of device.xml): reads, validated writes, commands.
 *
 * Numbers are 8-byte little-endian registers read and written whole; strings are 64-byte registers that may
 * be read in part. The ROI, pixel format and acquisition mode are refused (GC_ERR_ACCESS_DENIED) while
 * TLParamsLocked is set or the camera is acquiring, as on real cameras (GenApi refuses first, via pIsLocked).
 * Once the device is lost (injected disconnect) every access fails with GC_ERR_IO.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fake.h"

void regs_defaults(fake_regs *r) {
    memset(r, 0, sizeof *r);
    r->width = 512;
    r->height = 512;
    r->pixel_format = (int64_t)PFNC_MONO8;
    r->acq_mode = ACQ_MODE_CONTINUOUS;
    r->acq_frame_count = 1;
    r->trigger_source = TRIGGER_SOURCE_SOFTWARE;
    r->exposure_us = 1000.0;
    r->frame_rate_hz = 100.0;
}

void regs_load_fault_env(fake_regs *r) {
    const int64_t max = INT32_MAX;
    r->fault_disconnect_after = fake_env_int("FAKE_GENTL_DISCONNECT_AFTER", 0, 0, max);
    r->fault_incomplete_every = fake_env_int("FAKE_GENTL_INCOMPLETE_EVERY", 0, 0, max);
    r->fault_stall_after = fake_env_int("FAKE_GENTL_STALL_AFTER", 0, 0, max);
    r->fault_stall_ms = fake_env_int("FAKE_GENTL_STALL_MS", 0, 0, max);
}

static const char *string_register(fake_device *d, uint64_t base) {
    switch (base) {
    case REG_VENDOR: return FAKE_VENDOR;
    case REG_MODEL: return FAKE_MODEL;
    case REG_SERIAL: return d->serial;
    case REG_USER_ID: return d->user_id;
    default: return FAKE_VERSION;
    }
}

/* Called with d->lock held. */
static bool read_number(fake_device *d, uint64_t address, int64_t *iv, double *fv, bool *is_float) {
    const fake_regs *r = &d->regs;
    *is_float = false;
    switch (address) {
    case REG_SENSOR_WIDTH: *iv = FAKE_SENSOR_SIDE; return true;
    case REG_SENSOR_HEIGHT: *iv = FAKE_SENSOR_SIDE; return true;
    case REG_WIDTH_MAX: *iv = FAKE_SENSOR_SIDE - r->offset_x; return true;
    case REG_HEIGHT_MAX: *iv = FAKE_SENSOR_SIDE - r->offset_y; return true;
    case REG_WIDTH: *iv = r->width; return true;
    case REG_HEIGHT: *iv = r->height; return true;
    case REG_OFFSET_X: *iv = r->offset_x; return true;
    case REG_OFFSET_Y: *iv = r->offset_y; return true;
    case REG_PIXEL_FORMAT: *iv = r->pixel_format; return true;
    case REG_PAYLOAD_SIZE: *iv = (int64_t)device_payload_size(r); return true;
    case REG_ACQ_MODE: *iv = r->acq_mode; return true;
    case REG_ACQ_START:
    case REG_ACQ_STOP:
    case REG_TRIGGER_SOFTWARE: *iv = 0; return true; /* commands complete at once */
    case REG_ACQ_FRAME_COUNT: *iv = r->acq_frame_count; return true;
    case REG_TRIGGER_SELECTOR: *iv = r->trigger_selector; return true;
    case REG_TRIGGER_MODE: *iv = r->trigger_mode; return true;
    case REG_TRIGGER_SOURCE: *iv = r->trigger_source; return true;
    case REG_TL_PARAMS_LOCKED: *iv = r->tl_params_locked; return true;
    case REG_DROPPED_FRAMES: *iv = (int64_t)d->eng.dropped; return true;
    case REG_FRAME_COUNT: *iv = (int64_t)d->eng.frame_id; return true;
    case REG_FAULT_DISCONNECT_AFTER: *iv = r->fault_disconnect_after; return true;
    case REG_FAULT_INCOMPLETE_EVERY: *iv = r->fault_incomplete_every; return true;
    case REG_FAULT_STALL_AFTER: *iv = r->fault_stall_after; return true;
    case REG_FAULT_STALL_MS: *iv = r->fault_stall_ms; return true;
    case REG_EXPOSURE_TIME: *fv = r->exposure_us; *is_float = true; return true;
    case REG_FRAME_RATE: *fv = r->frame_rate_hz; *is_float = true; return true;
    case REG_GAIN: *fv = r->gain_db; *is_float = true; return true;
    default: return false;
    }
}

GC_ERROR regs_read(fake_device *d, uint64_t address, void *buffer, size_t *size) {
    pthread_mutex_lock(&d->lock);
    GC_ERROR err = GC_ERR_SUCCESS;
    if (d->lost) {
        err = fake_fail(GC_ERR_IO, "device %s is disconnected", d->id);
    } else if (address < REG_STRINGS_END) {
        const uint64_t base = address - address % FAKE_STR_LEN, offset = address - base;
        if (*size > FAKE_STR_LEN - offset) {
            err = fake_fail(GC_ERR_INVALID_ADDRESS, "read of %zu bytes at 0x%" PRIx64 " crosses a string", *size,
                            address);
        } else {
            char text[FAKE_STR_LEN] = {0};
            snprintf(text, sizeof text, "%s", string_register(d, base));
            memcpy(buffer, text + offset, *size);
        }
    } else {
        int64_t iv = 0;
        double fv = 0.0;
        bool is_float = false;
        if (address % 8 != 0 || !read_number(d, address, &iv, &fv, &is_float)) {
            err = fake_fail(GC_ERR_INVALID_ADDRESS, "no register at 0x%" PRIx64, address);
        } else if (*size != 8) {
            err = fake_fail(GC_ERR_INVALID_PARAMETER, "register 0x%" PRIx64 " is 8 bytes, read of %zu", address, *size);
        } else if (is_float) {
            memcpy(buffer, &fv, 8);
        } else {
            memcpy(buffer, &iv, 8);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return err;
}

static bool locked(fake_device *d) { return d->regs.tl_params_locked != 0 || d->eng.active; }

static GC_ERROR out_of_range(uint64_t address, int64_t v, int64_t lo, int64_t hi) {
    return fake_fail(GC_ERR_INVALID_PARAMETER, "register 0x%" PRIx64 " must be in [%" PRId64 ", %" PRId64 "]. Got %" PRId64
                     " instead.", address, lo, hi, v);
}

#define SET_INT(field, lo, hi)                                                    \
    do {                                                                          \
        if (v < (lo) || v > (hi)) return out_of_range(address, v, (lo), (hi));    \
        r->field = v;                                                             \
        return GC_ERR_SUCCESS;                                                    \
    } while (0)

/* Called with d->lock held. Commands are handled by the caller. */
static GC_ERROR write_int(fake_device *d, uint64_t address, int64_t v) {
    fake_regs *r = &d->regs;
    const int64_t max = INT32_MAX;
    switch (address) {
    case REG_WIDTH:
    case REG_HEIGHT:
    case REG_OFFSET_X:
    case REG_OFFSET_Y:
    case REG_PIXEL_FORMAT:
    case REG_ACQ_MODE:
    case REG_ACQ_FRAME_COUNT:
        if (locked(d)) return fake_fail(GC_ERR_ACCESS_DENIED, "register 0x%" PRIx64 " is locked while acquiring", address);
        break;
    default: break;
    }
    switch (address) {
    case REG_WIDTH: SET_INT(width, 1, FAKE_SENSOR_SIDE - r->offset_x);
    case REG_HEIGHT: SET_INT(height, 1, FAKE_SENSOR_SIDE - r->offset_y);
    case REG_OFFSET_X: SET_INT(offset_x, 0, FAKE_SENSOR_SIDE - r->width);
    case REG_OFFSET_Y: SET_INT(offset_y, 0, FAKE_SENSOR_SIDE - r->height);
    case REG_PIXEL_FORMAT:
        if (v != (int64_t)PFNC_MONO8 && v != (int64_t)PFNC_MONO12 && v != (int64_t)PFNC_MONO16) {
            return fake_fail(GC_ERR_INVALID_PARAMETER, "pixel format 0x%" PRIx64 " not supported", (uint64_t)v);
        }
        r->pixel_format = v;
        return GC_ERR_SUCCESS;
    case REG_ACQ_MODE: SET_INT(acq_mode, ACQ_MODE_CONTINUOUS, ACQ_MODE_MULTI);
    case REG_ACQ_FRAME_COUNT: SET_INT(acq_frame_count, 1, 1000000000);
    case REG_TRIGGER_SELECTOR: SET_INT(trigger_selector, 0, 0);
    case REG_TRIGGER_MODE: SET_INT(trigger_mode, 0, 1);
    case REG_TRIGGER_SOURCE: SET_INT(trigger_source, TRIGGER_SOURCE_SOFTWARE, TRIGGER_SOURCE_LINE0);
    case REG_TL_PARAMS_LOCKED: SET_INT(tl_params_locked, 0, 1);
    case REG_FAULT_DISCONNECT_AFTER: SET_INT(fault_disconnect_after, 0, max);
    case REG_FAULT_INCOMPLETE_EVERY: SET_INT(fault_incomplete_every, 0, max);
    case REG_FAULT_STALL_AFTER: SET_INT(fault_stall_after, 0, max);
    case REG_FAULT_STALL_MS: SET_INT(fault_stall_ms, 0, max);
    default: return fake_fail(GC_ERR_ACCESS_DENIED, "register 0x%" PRIx64 " is read only", address);
    }
}

static GC_ERROR write_float(fake_device *d, uint64_t address, double v) {
    fake_regs *r = &d->regs;
    double lo = 0.0, hi = 0.0, *field = NULL;
    switch (address) {
    case REG_EXPOSURE_TIME: lo = 1.0; hi = 1e7; field = &r->exposure_us; break;
    case REG_FRAME_RATE: lo = 0.1; hi = 1e5; field = &r->frame_rate_hz; break;
    default: lo = 0.0; hi = 48.0; field = &r->gain_db; break;
    }
    if (!isfinite(v) || v < lo || v > hi) {
        return fake_fail(GC_ERR_INVALID_PARAMETER, "register 0x%" PRIx64 " must be in [%g, %g]. Got %g instead.",
                         address, lo, hi, v);
    }
    *field = v;
    return GC_ERR_SUCCESS;
}

static GC_ERROR write_command(fake_device *d, uint64_t address) {
    switch (address) {
    case REG_ACQ_START: return engine_start(d);
    case REG_ACQ_STOP: engine_stop(d); return GC_ERR_SUCCESS;
    default: engine_trigger(d); return GC_ERR_SUCCESS;
    }
}

static GC_ERROR write_user_id(fake_device *d, uint64_t address, const void *buffer, size_t size) {
    if (address != REG_USER_ID || size > FAKE_STR_LEN) {
        return fake_fail(GC_ERR_ACCESS_DENIED, "string register 0x%" PRIx64 " is read only", address);
    }
    char text[FAKE_STR_LEN + 1] = {0};
    memcpy(text, buffer, size);
    text[FAKE_STR_LEN - 1] = '\0';
    memcpy(d->user_id, text, FAKE_STR_LEN);
    return GC_ERR_SUCCESS;
}

GC_ERROR regs_write(fake_device *d, uint64_t address, const void *buffer, size_t *size) {
    pthread_mutex_lock(&d->lock);
    GC_ERROR err = GC_ERR_SUCCESS;
    bool command = false;
    if (d->lost) {
        err = fake_fail(GC_ERR_IO, "device %s is disconnected", d->id);
    } else if (d->read_only) {
        err = fake_fail(GC_ERR_ACCESS_DENIED, "device %s is open read only", d->id);
    } else if (address < REG_STRINGS_END) {
        err = write_user_id(d, address, buffer, *size);
    } else if (address % 8 != 0 || *size != 8) {
        err = fake_fail(GC_ERR_INVALID_ADDRESS, "no 8-byte register at 0x%" PRIx64 " (+%zu)", address, *size);
    } else if (address == REG_ACQ_START || address == REG_ACQ_STOP || address == REG_TRIGGER_SOFTWARE) {
        command = true;
    } else if (address == REG_EXPOSURE_TIME || address == REG_FRAME_RATE || address == REG_GAIN) {
        double v;
        memcpy(&v, buffer, 8);
        err = write_float(d, address, v);
    } else {
        int64_t v;
        memcpy(&v, buffer, 8);
        err = write_int(d, address, v);
    }
    pthread_cond_broadcast(&d->engine_cond); /* the engine re-reads trigger mode and timing */
    pthread_mutex_unlock(&d->lock);
    if (command) {
        int64_t v;
        memcpy(&v, buffer, 8);
        if (v == 0) return GC_ERR_SUCCESS; /* writing 0 to a command register does nothing */
        err = write_command(d, address);
    }
    return err;
}
