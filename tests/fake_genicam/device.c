/* Device module: identity, open/close (a closed device "comes back" healthy), DevGetInfo, data stream access. */
#include <stdio.h>
#include <string.h>

#include "fake.h"

#define STREAM_ID "stream0"

void device_init(fake_device *d, unsigned index) {
    memset(d, 0, sizeof *d);
    d->index = index;
    snprintf(d->serial, sizeof d->serial, "FAKE%04u", index + 1);
    snprintf(d->id, sizeof d->id, "%s", d->serial);
    snprintf(d->user_id, sizeof d->user_id, "cam%u", index);
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->engine_lock, NULL);
    fake_cond_init(&d->engine_cond);
    fake_cond_init(&d->stream.output_cond);
    d->stream.dev = d;
    d->stream.new_buffer.ds = &d->stream;
    d->remote.dev = d;
    regs_defaults(&d->regs);
}

void device_destroy(fake_device *d) {
    pthread_cond_destroy(&d->stream.output_cond);
    pthread_cond_destroy(&d->engine_cond);
    pthread_mutex_destroy(&d->engine_lock);
    pthread_mutex_destroy(&d->lock);
}

size_t device_payload_size(const fake_regs *r) {
    const size_t bytes = r->pixel_format == (int64_t)PFNC_MONO8 ? 1 : 2;
    return (size_t)r->width * (size_t)r->height * bytes;
}

/* Called with g_fake.lock held. Registers return to their power-on values; fault settings come from the
 * environment (FAKE_GENTL_*), so a device lost by an injected disconnect is healthy again once reopened
 * unless the environment asks for another fault. */
GC_ERROR device_open(fake_device *d, DEVICE_ACCESS_FLAGS flags) {
    if (flags != DEVICE_ACCESS_READONLY && flags != DEVICE_ACCESS_CONTROL && flags != DEVICE_ACCESS_EXCLUSIVE) {
        return fake_fail(GC_ERR_INVALID_PARAMETER, "open flag %d not supported (2, 3 or 4)", (int)flags);
    }
    pthread_mutex_lock(&d->lock);
    if (d->open) {
        pthread_mutex_unlock(&d->lock);
        return fake_fail(GC_ERR_RESOURCE_IN_USE, "device %s is already open", d->id);
    }
    regs_defaults(&d->regs);
    regs_load_fault_env(&d->regs);
    memset(&d->eng, 0, sizeof d->eng);
    d->read_only = flags == DEVICE_ACCESS_READONLY;
    d->lost = false;
    d->open = true;
    pthread_mutex_unlock(&d->lock);
    return GC_ERR_SUCCESS;
}

/* Called with g_fake.lock held (or from DevClose, which takes it). */
void device_close(fake_device *d) {
    engine_stop(d);
    pthread_mutex_lock(&d->lock);
    stream_close(&d->stream);
    d->open = false;
    d->lost = false;
    pthread_mutex_unlock(&d->lock);
}

GC_ERROR device_info(fake_device *d, DEVICE_INFO_CMD cmd, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    char text[FAKE_STR_LEN * 2];
    switch (cmd) {
    case DEVICE_INFO_ID: return info_str(d->id, piType, pBuffer, piSize);
    case DEVICE_INFO_VENDOR: return info_str(FAKE_VENDOR, piType, pBuffer, piSize);
    case DEVICE_INFO_MODEL: return info_str(FAKE_MODEL, piType, pBuffer, piSize);
    case DEVICE_INFO_TLTYPE: return info_str(FAKE_TL_TYPE, piType, pBuffer, piSize);
    case DEVICE_INFO_DISPLAYNAME:
        snprintf(text, sizeof text, "%s %s (%s)", FAKE_VENDOR, FAKE_MODEL, d->serial);
        return info_str(text, piType, pBuffer, piSize);
    case DEVICE_INFO_ACCESS_STATUS: {
        int32_t status = !d->open ? DEVICE_ACCESS_STATUS_READWRITE
                         : d->read_only ? DEVICE_ACCESS_STATUS_OPEN_READONLY
                                        : DEVICE_ACCESS_STATUS_OPEN_READWRITE;
        return info_i32(status, piType, pBuffer, piSize);
    }
    case DEVICE_INFO_USER_DEFINED_NAME:
        pthread_mutex_lock(&d->lock);
        snprintf(text, sizeof text, "%s", d->user_id);
        pthread_mutex_unlock(&d->lock);
        return info_str(text, piType, pBuffer, piSize);
    case DEVICE_INFO_SERIAL_NUMBER: return info_str(d->serial, piType, pBuffer, piSize);
    case DEVICE_INFO_VERSION: return info_str(FAKE_VERSION, piType, pBuffer, piSize);
    case DEVICE_INFO_TIMESTAMP_FREQUENCY: return info_u64(1000000000ULL, piType, pBuffer, piSize);
    default: return fake_fail(GC_ERR_INVALID_PARAMETER, "unknown device info command %d", (int)cmd);
    }
}

#define REQUIRE_DEVICE(d, h)                                                                          \
    fake_device *d = fake_find_device(h);                                                             \
    do {                                                                                              \
        if (!fake_lib_ready()) return fake_fail(GC_ERR_NOT_INITIALIZED, "GCInitLib not called");     \
        if (d == NULL) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open device handle");         \
    } while (0)

GC_API DevGetPort(DEV_HANDLE hDevice, PORT_HANDLE *phRemoteDevice) {
    REQUIRE_DEVICE(d, hDevice);
    if (phRemoteDevice == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phRemoteDevice is NULL");
    *phRemoteDevice = &d->remote;
    return GC_ERR_SUCCESS;
}

GC_API DevGetNumDataStreams(DEV_HANDLE hDevice, uint32_t *piNumDataStreams) {
    REQUIRE_DEVICE(d, hDevice);
    if (piNumDataStreams == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "piNumDataStreams is NULL");
    *piNumDataStreams = 1;
    return GC_ERR_SUCCESS;
}

GC_API DevGetDataStreamID(DEV_HANDLE hDevice, uint32_t iIndex, char *sDataStreamID, size_t *piSize) {
    REQUIRE_DEVICE(d, hDevice);
    if (iIndex != 0) return fake_fail(GC_ERR_INVALID_INDEX, "data stream index %u (only 0)", iIndex);
    return info_str(STREAM_ID, NULL, sDataStreamID, piSize);
}

GC_API DevOpenDataStream(DEV_HANDLE hDevice, const char *sDataStreamID, DS_HANDLE *phDataStream) {
    REQUIRE_DEVICE(d, hDevice);
    if (sDataStreamID == NULL || strcmp(sDataStreamID, STREAM_ID) != 0) {
        return fake_fail(GC_ERR_INVALID_ID, "unknown data stream '%s'", sDataStreamID ? sDataStreamID : "(null)");
    }
    if (phDataStream == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phDataStream is NULL");
    pthread_mutex_lock(&d->lock);
    fake_stream *s = &d->stream;
    if (s->open) {
        pthread_mutex_unlock(&d->lock);
        return fake_fail(GC_ERR_RESOURCE_IN_USE, "data stream of %s is already open", d->id);
    }
    s->open = true;
    s->grabbing = false;
    s->delivered = s->underrun = s->started = s->to_acquire = 0;
    s->new_buffer.registered = s->new_buffer.kill_pending = false;
    s->new_buffer.fired = 0;
    pthread_mutex_unlock(&d->lock);
    *phDataStream = s;
    return GC_ERR_SUCCESS;
}

GC_API DevGetInfo(DEV_HANDLE hDevice, DEVICE_INFO_CMD iInfoCmd, INFO_DATATYPE *piType, void *pBuffer,
                  size_t *piSize) {
    REQUIRE_DEVICE(d, hDevice);
    return device_info(d, iInfoCmd, piType, pBuffer, piSize);
}

GC_API DevClose(DEV_HANDLE hDevice) {
    REQUIRE_DEVICE(d, hDevice);
    pthread_mutex_lock(&g_fake.lock);
    device_close(d);
    pthread_mutex_unlock(&g_fake.lock);
    return GC_ERR_SUCCESS;
}

GC_API DevGetParentIF(DEV_HANDLE hDevice, IF_HANDLE *phIface) {
    REQUIRE_DEVICE(d, hDevice);
    if (phIface == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phIface is NULL");
    *phIface = &g_fake.if_token;
    return GC_ERR_SUCCESS;
}
