/* Library, system (TL) and interface modules, and handle lookups.
 *
 * GCInitLib/TLOpen/TLOpenInterface are reference counted, so two consumers in one process (two Harvester
 * objects) can share the library; the last GCCloseLib closes every device and forgets all state.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "fake.h"

fake_global g_fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

bool fake_lib_ready(void) { return g_fake.init_count > 0; }

#define REQUIRE_LIB()                                                                    \
    do {                                                                                 \
        if (!fake_lib_ready()) return fake_fail(GC_ERR_NOT_INITIALIZED, "GCInitLib not called"); \
    } while (0)

bool fake_is_tl(const void *h) { return h == &g_fake.tl_token && g_fake.tl_count > 0; }
bool fake_is_if(const void *h) { return h == &g_fake.if_token && g_fake.if_count > 0; }

fake_device *fake_find_device(const void *h) {
    for (unsigned i = 0; i < g_fake.num_devices; i++) {
        if (h == &g_fake.devs[i] && g_fake.devs[i].open) return &g_fake.devs[i];
    }
    return NULL;
}

fake_device *fake_find_remote(const void *h) {
    for (unsigned i = 0; i < g_fake.num_devices; i++) {
        if (h == &g_fake.devs[i].remote && g_fake.devs[i].open) return &g_fake.devs[i];
    }
    return NULL;
}

fake_device *fake_find_device_by_id(const char *id) {
    if (id == NULL || !g_fake.devices_listed) return NULL;
    for (unsigned i = 0; i < g_fake.num_devices; i++) {
        if (strcmp(id, g_fake.devs[i].id) == 0) return &g_fake.devs[i];
    }
    return NULL;
}

static void close_all_devices(void) {
    for (unsigned i = 0; i < g_fake.num_devices; i++) {
        if (g_fake.devs[i].open) device_close(&g_fake.devs[i]);
    }
}

/* ---- library ---- */

GC_API GCInitLib(void) {
    pthread_mutex_lock(&g_fake.lock);
    if (g_fake.init_count++ == 0) {
        g_fake.num_devices = (unsigned)fake_env_int("FAKE_GENTL_DEVICES", 2, 0, FAKE_MAX_DEVICES);
        g_fake.tl_count = g_fake.if_count = 0;
        g_fake.devices_listed = false;
        for (unsigned i = 0; i < g_fake.num_devices; i++) device_init(&g_fake.devs[i], i);
    }
    pthread_mutex_unlock(&g_fake.lock);
    return GC_ERR_SUCCESS;
}

GC_API GCCloseLib(void) {
    pthread_mutex_lock(&g_fake.lock);
    if (g_fake.init_count == 0) {
        pthread_mutex_unlock(&g_fake.lock);
        return fake_fail(GC_ERR_NOT_INITIALIZED, "GCCloseLib without GCInitLib");
    }
    if (--g_fake.init_count == 0) {
        close_all_devices();
        for (unsigned i = 0; i < g_fake.num_devices; i++) device_destroy(&g_fake.devs[i]);
        g_fake.num_devices = 0;
        g_fake.tl_count = g_fake.if_count = 0;
        g_fake.devices_listed = false;
    }
    pthread_mutex_unlock(&g_fake.lock);
    return GC_ERR_SUCCESS;
}

static GC_ERROR library_path(char *out, size_t n) {
    Dl_info info;
    if (dladdr((void *)&GCInitLib, &info) == 0 || info.dli_fname == NULL) {
        return fake_fail(GC_ERR_NOT_AVAILABLE, "library path unknown");
    }
    snprintf(out, n, "%s", info.dli_fname);
    return GC_ERR_SUCCESS;
}

static GC_ERROR tl_info(TL_INFO_CMD cmd, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    char path[4096];
    switch (cmd) {
    case TL_INFO_ID: return info_str(TL_ID, piType, pBuffer, piSize);
    case TL_INFO_VENDOR: return info_str(FAKE_VENDOR, piType, pBuffer, piSize);
    case TL_INFO_MODEL: return info_str("acqd-fake-producer", piType, pBuffer, piSize);
    case TL_INFO_VERSION: return info_str(FAKE_VERSION, piType, pBuffer, piSize);
    case TL_INFO_TLTYPE: return info_str(FAKE_TL_TYPE, piType, pBuffer, piSize);
    case TL_INFO_DISPLAYNAME: return info_str("acqd fake GenTL producer", piType, pBuffer, piSize);
    case TL_INFO_CHAR_ENCODING: return info_i32(0, piType, pBuffer, piSize); /* ASCII */
    case TL_INFO_GENTL_VER_MAJOR: return info_u32(1, piType, pBuffer, piSize);
    case TL_INFO_GENTL_VER_MINOR: return info_u32(6, piType, pBuffer, piSize);
    case TL_INFO_NAME:
    case TL_INFO_PATHNAME: {
        GC_ERROR err = library_path(path, sizeof path);
        if (err != GC_ERR_SUCCESS) return err;
        const char *slash = strrchr(path, '/');
        const char *text = (cmd == TL_INFO_NAME && slash != NULL) ? slash + 1 : path;
        return info_str(text, piType, pBuffer, piSize);
    }
    default: return fake_fail(GC_ERR_INVALID_PARAMETER, "unknown TL info command %d", (int)cmd);
    }
}

GC_API GCGetInfo(TL_INFO_CMD iInfoCmd, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    return tl_info(iInfoCmd, piType, pBuffer, piSize);
}

/* ---- system ---- */

GC_API TLOpen(TL_HANDLE *phTL) {
    REQUIRE_LIB();
    if (phTL == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phTL is NULL");
    pthread_mutex_lock(&g_fake.lock);
    g_fake.tl_count++;
    pthread_mutex_unlock(&g_fake.lock);
    *phTL = &g_fake.tl_token;
    return GC_ERR_SUCCESS;
}

GC_API TLClose(TL_HANDLE hTL) {
    REQUIRE_LIB();
    pthread_mutex_lock(&g_fake.lock);
    if (!fake_is_tl(hTL)) {
        pthread_mutex_unlock(&g_fake.lock);
        return fake_fail(GC_ERR_INVALID_HANDLE, "not an open system handle");
    }
    if (--g_fake.tl_count == 0 && g_fake.if_count > 0) {
        g_fake.if_count = 0;
        close_all_devices();
    }
    pthread_mutex_unlock(&g_fake.lock);
    return GC_ERR_SUCCESS;
}

GC_API TLGetInfo(TL_HANDLE hTL, TL_INFO_CMD iInfoCmd, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    REQUIRE_LIB();
    if (!fake_is_tl(hTL)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open system handle");
    return tl_info(iInfoCmd, piType, pBuffer, piSize);
}

GC_API TLUpdateInterfaceList(TL_HANDLE hTL, bool8_t *pbChanged, uint64_t iTimeout) {
    (void)iTimeout;
    REQUIRE_LIB();
    if (!fake_is_tl(hTL)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open system handle");
    if (pbChanged != NULL) *pbChanged = 0;
    return GC_ERR_SUCCESS;
}

GC_API TLGetNumInterfaces(TL_HANDLE hTL, uint32_t *piNumIfaces) {
    REQUIRE_LIB();
    if (!fake_is_tl(hTL)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open system handle");
    if (piNumIfaces == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "piNumIfaces is NULL");
    *piNumIfaces = 1;
    return GC_ERR_SUCCESS;
}

GC_API TLGetInterfaceID(TL_HANDLE hTL, uint32_t iIndex, char *sID, size_t *piSize) {
    REQUIRE_LIB();
    if (!fake_is_tl(hTL)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open system handle");
    if (iIndex != 0) return fake_fail(GC_ERR_INVALID_INDEX, "interface index %u (only 0)", iIndex);
    return info_str(IF_ID, NULL, sID, piSize);
}

static GC_ERROR if_info(INTERFACE_INFO_CMD cmd, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    switch (cmd) {
    case INTERFACE_INFO_ID: return info_str(IF_ID, piType, pBuffer, piSize);
    case INTERFACE_INFO_DISPLAYNAME: return info_str("acqd fake interface", piType, pBuffer, piSize);
    case INTERFACE_INFO_TLTYPE: return info_str(FAKE_TL_TYPE, piType, pBuffer, piSize);
    default: return fake_fail(GC_ERR_INVALID_PARAMETER, "unknown interface info command %d", (int)cmd);
    }
}

GC_API TLGetInterfaceInfo(TL_HANDLE hTL, const char *sIfaceID, INTERFACE_INFO_CMD iInfoCmd, INFO_DATATYPE *piType,
                          void *pBuffer, size_t *piSize) {
    REQUIRE_LIB();
    if (!fake_is_tl(hTL)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open system handle");
    if (sIfaceID == NULL || strcmp(sIfaceID, IF_ID) != 0) return fake_fail(GC_ERR_INVALID_ID, "unknown interface");
    return if_info(iInfoCmd, piType, pBuffer, piSize);
}

GC_API TLOpenInterface(TL_HANDLE hTL, const char *sIfaceID, IF_HANDLE *phIface) {
    REQUIRE_LIB();
    if (!fake_is_tl(hTL)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open system handle");
    if (sIfaceID == NULL || strcmp(sIfaceID, IF_ID) != 0) return fake_fail(GC_ERR_INVALID_ID, "unknown interface");
    if (phIface == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phIface is NULL");
    pthread_mutex_lock(&g_fake.lock);
    g_fake.if_count++;
    pthread_mutex_unlock(&g_fake.lock);
    *phIface = &g_fake.if_token;
    return GC_ERR_SUCCESS;
}

/* ---- interface ---- */

GC_API IFClose(IF_HANDLE hIface) {
    REQUIRE_LIB();
    pthread_mutex_lock(&g_fake.lock);
    if (!fake_is_if(hIface)) {
        pthread_mutex_unlock(&g_fake.lock);
        return fake_fail(GC_ERR_INVALID_HANDLE, "not an open interface handle");
    }
    if (--g_fake.if_count == 0) close_all_devices();
    pthread_mutex_unlock(&g_fake.lock);
    return GC_ERR_SUCCESS;
}

GC_API IFGetInfo(IF_HANDLE hIface, INTERFACE_INFO_CMD iInfoCmd, INFO_DATATYPE *piType, void *pBuffer,
                 size_t *piSize) {
    REQUIRE_LIB();
    if (!fake_is_if(hIface)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open interface handle");
    return if_info(iInfoCmd, piType, pBuffer, piSize);
}

GC_API IFUpdateDeviceList(IF_HANDLE hIface, bool8_t *pbChanged, uint64_t iTimeout) {
    (void)iTimeout;
    REQUIRE_LIB();
    if (!fake_is_if(hIface)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open interface handle");
    if (pbChanged != NULL) *pbChanged = g_fake.devices_listed ? 0 : 1;
    g_fake.devices_listed = true;
    return GC_ERR_SUCCESS;
}

GC_API IFGetNumDevices(IF_HANDLE hIface, uint32_t *piNumDevices) {
    REQUIRE_LIB();
    if (!fake_is_if(hIface)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open interface handle");
    if (piNumDevices == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "piNumDevices is NULL");
    *piNumDevices = g_fake.devices_listed ? g_fake.num_devices : 0;
    return GC_ERR_SUCCESS;
}

GC_API IFGetDeviceID(IF_HANDLE hIface, uint32_t iIndex, char *sIDeviceID, size_t *piSize) {
    REQUIRE_LIB();
    if (!fake_is_if(hIface)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open interface handle");
    if (!g_fake.devices_listed || iIndex >= g_fake.num_devices) {
        return fake_fail(GC_ERR_INVALID_INDEX, "device index %u of %u listed", iIndex,
                         g_fake.devices_listed ? g_fake.num_devices : 0);
    }
    return info_str(g_fake.devs[iIndex].id, NULL, sIDeviceID, piSize);
}

GC_API IFGetDeviceInfo(IF_HANDLE hIface, const char *sDeviceID, DEVICE_INFO_CMD iInfoCmd, INFO_DATATYPE *piType,
                       void *pBuffer, size_t *piSize) {
    REQUIRE_LIB();
    if (!fake_is_if(hIface)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open interface handle");
    fake_device *d = fake_find_device_by_id(sDeviceID);
    if (d == NULL) return fake_fail(GC_ERR_INVALID_ID, "unknown device '%s'", sDeviceID ? sDeviceID : "(null)");
    return device_info(d, iInfoCmd, piType, pBuffer, piSize);
}

GC_API IFOpenDevice(IF_HANDLE hIface, const char *sDeviceID, DEVICE_ACCESS_FLAGS iOpenFlag, DEV_HANDLE *phDevice) {
    REQUIRE_LIB();
    if (!fake_is_if(hIface)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open interface handle");
    if (phDevice == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phDevice is NULL");
    fake_device *d = fake_find_device_by_id(sDeviceID);
    if (d == NULL) return fake_fail(GC_ERR_INVALID_ID, "unknown device '%s'", sDeviceID ? sDeviceID : "(null)");
    pthread_mutex_lock(&g_fake.lock);
    GC_ERROR err = device_open(d, iOpenFlag);
    pthread_mutex_unlock(&g_fake.lock);
    if (err == GC_ERR_SUCCESS) *phDevice = d;
    return err;
}

GC_API IFGetParentTL(IF_HANDLE hIface, TL_HANDLE *phSystem) {
    REQUIRE_LIB();
    if (!fake_is_if(hIface)) return fake_fail(GC_ERR_INVALID_HANDLE, "not an open interface handle");
    if (phSystem == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "phSystem is NULL");
    *phSystem = &g_fake.tl_token;
    return GC_ERR_SUCCESS;
}
