/* The port functions of every module: node map URLs and XML reads, port info, register access.
 *
 * The system, interface, device-module and stream ports serve module.xml only; the remote device port
 * ("Device") serves device.xml and the register map of registers.c. Both XMLs sit at FAKE_XML_ADDRESS.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fake.h"

typedef enum { PORT_NONE, PORT_TL, PORT_IF, PORT_DEV, PORT_REMOTE, PORT_DS } port_kind;

static port_kind classify_port(const void *h, fake_device **dev) {
    *dev = NULL;
    if (fake_is_tl(h)) return PORT_TL;
    if (fake_is_if(h)) return PORT_IF;
    if ((*dev = fake_find_device(h)) != NULL) return PORT_DEV;
    if ((*dev = fake_find_remote(h)) != NULL) return PORT_REMOTE;
    for (unsigned i = 0; i < g_fake.num_devices; i++) {
        fake_device *d = &g_fake.devs[i];
        if (h == &d->stream && d->open && d->stream.open) {
            *dev = d;
            return PORT_DS;
        }
    }
    return PORT_NONE;
}

static const char *port_xml(port_kind kind, size_t *size) {
    return kind == PORT_REMOTE ? xml_device(size) : xml_module(size);
}

static void port_url(port_kind kind, char *out, size_t n) {
    size_t size = 0;
    port_xml(kind, &size);
    snprintf(out, n, "Local:%s;%" PRIx64 ";%zx", kind == PORT_REMOTE ? "acqd_fake_device.xml" : "acqd_fake_module.xml",
             (uint64_t)FAKE_XML_ADDRESS, size);
}

#define REQUIRE_PORT(kind, dev, h)                                                                     \
    fake_device *dev;                                                                                  \
    port_kind kind = classify_port((h), &dev);                                                         \
    do {                                                                                               \
        if (!fake_lib_ready()) return fake_fail(GC_ERR_NOT_INITIALIZED, "GCInitLib not called");      \
        if (kind == PORT_NONE) return fake_fail(GC_ERR_INVALID_HANDLE, "not a port handle of this producer"); \
    } while (0)

GC_API GCGetNumPortURLs(PORT_HANDLE hPort, uint32_t *piNumURLs) {
    REQUIRE_PORT(kind, dev, hPort);
    (void)kind;
    (void)dev;
    if (piNumURLs == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "piNumURLs is NULL");
    *piNumURLs = 1;
    return GC_ERR_SUCCESS;
}

GC_API GCGetPortURL(PORT_HANDLE hPort, char *sURL, size_t *piSize) {
    REQUIRE_PORT(kind, dev, hPort);
    (void)dev;
    char url[128];
    port_url(kind, url, sizeof url);
    return info_str(url, NULL, sURL, piSize);
}

GC_API GCGetPortURLInfo(PORT_HANDLE hPort, uint32_t iURLIndex, URL_INFO_CMD iInfoCmd, INFO_DATATYPE *piType,
                        void *pBuffer, size_t *piSize) {
    REQUIRE_PORT(kind, dev, hPort);
    (void)dev;
    if (iURLIndex != 0) return fake_fail(GC_ERR_INVALID_INDEX, "URL index %u (only 0)", iURLIndex);
    char url[128];
    size_t size = 0;
    port_xml(kind, &size);
    switch (iInfoCmd) {
    case URL_INFO_URL: port_url(kind, url, sizeof url); return info_str(url, piType, pBuffer, piSize);
    case URL_INFO_SCHEMA_VER_MAJOR: return info_i32(1, piType, pBuffer, piSize);
    case URL_INFO_SCHEMA_VER_MINOR: return info_i32(1, piType, pBuffer, piSize);
    case URL_INFO_FILE_VER_MAJOR: return info_i32(1, piType, pBuffer, piSize);
    case URL_INFO_FILE_VER_MINOR: return info_i32(0, piType, pBuffer, piSize);
    case URL_INFO_FILE_VER_SUBMINOR: return info_i32(0, piType, pBuffer, piSize);
    case URL_INFO_FILE_REGISTER_ADDRESS: return info_u64(FAKE_XML_ADDRESS, piType, pBuffer, piSize);
    case URL_INFO_FILE_SIZE: return info_u64(size, piType, pBuffer, piSize);
    case URL_INFO_SCHEME: return info_i32(URL_SCHEME_LOCAL, piType, pBuffer, piSize);
    default: return fake_fail(GC_ERR_NOT_AVAILABLE, "URL info %d not available", (int)iInfoCmd);
    }
}

static const char *port_module_name(port_kind kind) {
    switch (kind) {
    case PORT_TL: return "TLSystem";
    case PORT_IF: return "TLInterface";
    case PORT_DEV: return "TLDevice";
    case PORT_REMOTE: return "Device";
    default: return "TLDataStream";
    }
}

GC_API GCGetPortInfo(PORT_HANDLE hPort, PORT_INFO_CMD iInfoCmd, INFO_DATATYPE *piType, void *pBuffer,
                     size_t *piSize) {
    REQUIRE_PORT(kind, dev, hPort);
    char id[FAKE_STR_LEN * 2];
    switch (iInfoCmd) {
    case PORT_INFO_ID:
        if (kind == PORT_TL) snprintf(id, sizeof id, "%s", TL_ID);
        else if (kind == PORT_IF) snprintf(id, sizeof id, "%s", IF_ID);
        else snprintf(id, sizeof id, "%s-%s", dev->id, port_module_name(kind));
        return info_str(id, piType, pBuffer, piSize);
    case PORT_INFO_VENDOR: return info_str(FAKE_VENDOR, piType, pBuffer, piSize);
    case PORT_INFO_MODEL: return info_str(kind == PORT_REMOTE ? FAKE_MODEL : "acqd-fake-module", piType, pBuffer, piSize);
    case PORT_INFO_TLTYPE: return info_str(FAKE_TL_TYPE, piType, pBuffer, piSize);
    case PORT_INFO_MODULE: return info_str(port_module_name(kind), piType, pBuffer, piSize);
    case PORT_INFO_LITTLE_ENDIAN: return info_bool(true, piType, pBuffer, piSize);
    case PORT_INFO_BIG_ENDIAN: return info_bool(false, piType, pBuffer, piSize);
    case PORT_INFO_ACCESS_READ: return info_bool(true, piType, pBuffer, piSize);
    case PORT_INFO_ACCESS_WRITE: return info_bool(kind == PORT_REMOTE && !dev->read_only, piType, pBuffer, piSize);
    case PORT_INFO_ACCESS_NA: return info_bool(false, piType, pBuffer, piSize);
    case PORT_INFO_ACCESS_NI: return info_bool(false, piType, pBuffer, piSize);
    case PORT_INFO_VERSION: return info_str(FAKE_VERSION, piType, pBuffer, piSize);
    case PORT_INFO_PORTNAME:
        return info_str(kind == PORT_REMOTE ? FAKE_REMOTE_PORT_NAME : FAKE_MODULE_PORT_NAME, piType, pBuffer, piSize);
    default: return fake_fail(GC_ERR_INVALID_PARAMETER, "unknown port info command %d", (int)iInfoCmd);
    }
}

GC_API GCReadPort(PORT_HANDLE hPort, uint64_t iAddress, void *pBuffer, size_t *piSize) {
    REQUIRE_PORT(kind, dev, hPort);
    if (pBuffer == NULL || piSize == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "NULL buffer or size");
    if (kind == PORT_REMOTE && iAddress < FAKE_XML_ADDRESS) return regs_read(dev, iAddress, pBuffer, piSize);
    if (kind == PORT_REMOTE && dev->lost) return fake_fail(GC_ERR_IO, "device %s is disconnected", dev->id);
    size_t size = 0;
    const char *xml = port_xml(kind, &size);
    if (iAddress < FAKE_XML_ADDRESS || iAddress - FAKE_XML_ADDRESS > size ||
        *piSize > size - (size_t)(iAddress - FAKE_XML_ADDRESS)) {
        return fake_fail(GC_ERR_INVALID_ADDRESS, "no register at 0x%" PRIx64 " (+%zu) on this port", iAddress, *piSize);
    }
    memcpy(pBuffer, xml + (iAddress - FAKE_XML_ADDRESS), *piSize);
    return GC_ERR_SUCCESS;
}

GC_API GCWritePort(PORT_HANDLE hPort, uint64_t iAddress, const void *pBuffer, size_t *piSize) {
    REQUIRE_PORT(kind, dev, hPort);
    if (pBuffer == NULL || piSize == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "NULL buffer or size");
    if (kind != PORT_REMOTE) return fake_fail(GC_ERR_ACCESS_DENIED, "module ports are read only");
    return regs_write(dev, iAddress, pBuffer, piSize);
}

GC_API GCReadPortStacked(PORT_HANDLE hPort, PORT_REGISTER_STACK_ENTRY *pEntries, size_t *piNumEntries) {
    if (pEntries == NULL || piNumEntries == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "NULL entries");
    for (size_t i = 0; i < *piNumEntries; i++) {
        GC_ERROR err = GCReadPort(hPort, pEntries[i].Address, pEntries[i].pBuffer, &pEntries[i].Size);
        if (err != GC_ERR_SUCCESS) {
            *piNumEntries = i;
            return err;
        }
    }
    return GC_ERR_SUCCESS;
}

GC_API GCWritePortStacked(PORT_HANDLE hPort, PORT_REGISTER_STACK_ENTRY *pEntries, size_t *piNumEntries) {
    if (pEntries == NULL || piNumEntries == NULL) return fake_fail(GC_ERR_INVALID_PARAMETER, "NULL entries");
    for (size_t i = 0; i < *piNumEntries; i++) {
        GC_ERROR err = GCWritePort(hPort, pEntries[i].Address, pEntries[i].pBuffer, &pEntries[i].Size);
        if (err != GC_ERR_SUCCESS) {
            *piNumEntries = i;
            return err;
        }
    }
    return GC_ERR_SUCCESS;
}
