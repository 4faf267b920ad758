/* Internal state of the acqd fake GenTL producer.
 *
 * Ownership: one global `fake_global` holds the system (TL) and interface singletons and a fixed array of
 * devices; each device embeds its remote port, its register values, its acquisition engine (a thread that
 * draws frames) and its one data stream; the stream embeds its NEW_BUFFER event and owns the list of
 * announced buffers. Handles given to the consumer are addresses of these objects and are always checked
 * against them (never dereferenced blindly).
 *
 * Locking: `g_fake.lock` guards opening and closing modules. Each device has `lock` (registers, engine state,
 * stream, buffers, event) and `engine_lock`, which serialises starting and joining the engine thread and is
 * always taken before `lock`. The engine thread holds `lock` except while it draws a frame into a buffer that
 * it has marked FILLING.
 */
#ifndef FAKE_H
#define FAKE_H

#include <pthread.h>
#include <stdbool.h>

#include "gentl.h"

#define FAKE_MAX_DEVICES 16
#define FAKE_STR_LEN 64
#define FAKE_SENSOR_SIDE 4096
#define FAKE_TL_TYPE "Custom"
#define FAKE_VENDOR "acqd"
#define FAKE_MODEL "acqd-fake"
#define FAKE_VERSION "1.0.0"
#define FAKE_MODULE_PORT_NAME "FakeModulePort"
#define FAKE_REMOTE_PORT_NAME "Device"
#define TL_ID "acqd-fake-tl"
#define IF_ID "acqd-fake-if0"

/* PFNC pixel formats */
#define PFNC_MONO8 0x01080001ULL
#define PFNC_MONO12 0x01100005ULL
#define PFNC_MONO16 0x01100007ULL

/* Remote device register map (see device.xml). Strings are FAKE_STR_LEN bytes, numbers 8 bytes LE. */
enum {
    REG_VENDOR = 0x0000,
    REG_MODEL = 0x0040,
    REG_SERIAL = 0x0080,
    REG_USER_ID = 0x00C0,
    REG_VERSION = 0x0100,
    REG_STRINGS_END = 0x0140,
    REG_SENSOR_WIDTH = 0x0200,
    REG_SENSOR_HEIGHT = 0x0208,
    REG_WIDTH_MAX = 0x0210,
    REG_HEIGHT_MAX = 0x0218,
    REG_WIDTH = 0x0220,
    REG_HEIGHT = 0x0228,
    REG_OFFSET_X = 0x0230,
    REG_OFFSET_Y = 0x0238,
    REG_PIXEL_FORMAT = 0x0240,
    REG_PAYLOAD_SIZE = 0x0248,
    REG_ACQ_MODE = 0x0300,
    REG_ACQ_START = 0x0308,
    REG_ACQ_STOP = 0x0310,
    REG_ACQ_FRAME_COUNT = 0x0318,
    REG_TRIGGER_SELECTOR = 0x0320,
    REG_TRIGGER_MODE = 0x0328,
    REG_TRIGGER_SOURCE = 0x0330,
    REG_TRIGGER_SOFTWARE = 0x0338,
    REG_TL_PARAMS_LOCKED = 0x0340,
    REG_EXPOSURE_TIME = 0x0400,
    REG_FRAME_RATE = 0x0408,
    REG_GAIN = 0x0410,
    REG_DROPPED_FRAMES = 0x0500,
    REG_FRAME_COUNT = 0x0508,
    REG_FAULT_DISCONNECT_AFTER = 0x0510,
    REG_FAULT_INCOMPLETE_EVERY = 0x0518,
    REG_FAULT_STALL_AFTER = 0x0520,
    REG_FAULT_STALL_MS = 0x0528,
};
#define FAKE_XML_ADDRESS 0x100000ULL

enum { ACQ_MODE_CONTINUOUS = 0, ACQ_MODE_SINGLE = 1, ACQ_MODE_MULTI = 2 };
enum { TRIGGER_SOURCE_SOFTWARE = 0, TRIGGER_SOURCE_LINE0 = 1 };

typedef enum { BUF_UNQUEUED, BUF_INPUT, BUF_FILLING, BUF_OUTPUT } fake_buffer_state;

typedef struct fake_buffer {
    struct fake_stream *ds;
    unsigned char *base;
    size_t size;
    void *user;
    bool owned; /* allocated by DSAllocAndAnnounceBuffer */
    fake_buffer_state state;
    struct fake_buffer *next_announced;
    struct fake_buffer *next_queued; /* link in the input pool or the output queue */
    /* what the last fill delivered */
    bool new_data, incomplete, larger_than_buffer;
    uint64_t frame_id, timestamp_ns, pixel_format;
    size_t filled, data_size, delivered_rows, width, height, offset_x, offset_y;
} fake_buffer;

typedef struct {
    fake_buffer *head, *tail;
    size_t count;
} fake_fifo;

typedef struct fake_event {
    struct fake_stream *ds;
    bool registered, kill_pending;
    uint64_t fired;
} fake_event;

typedef struct fake_stream {
    struct fake_device *dev;
    bool open, grabbing;
    fake_buffer *announced;
    size_t num_announced;
    fake_fifo input, output;
    uint64_t delivered, underrun, started, to_acquire; /* to_acquire 0 = until stopped */
    fake_event new_buffer;
    pthread_cond_t output_cond; /* output queue grew, or the event was killed */
} fake_stream;

typedef struct fake_regs {
    int64_t width, height, offset_x, offset_y, pixel_format, acq_mode, acq_frame_count;
    int64_t trigger_selector, trigger_mode, trigger_source, tl_params_locked;
    int64_t fault_disconnect_after, fault_incomplete_every, fault_stall_after, fault_stall_ms;
    double exposure_us, frame_rate_hz, gain_db;
} fake_regs;

#define FAKE_PHASES 128                         /* the pattern repeats every 1024 / 8 frames */
#define FAKE_PHASE_CACHE_BYTES ((size_t)1 << 30) /* the most memory the drawn phases may take */

typedef struct fake_engine {
    pthread_t thread;
    bool joinable, active, stop, stalled;
    uint64_t pending_triggers, frame_id, dropped;
    int64_t frames_left; /* < 0: unlimited */
    /* acquisition geometry, fixed from AcquisitionStart to AcquisitionStop */
    size_t width, height, offset_x, offset_y, bytes_per_pixel;
    uint64_t pixel_format;
    uint16_t lut[1024];
    uint16_t *ring;
    /* drawn frames, one per phase of the pattern (NULL when they would not fit in FAKE_PHASE_CACHE_BYTES) */
    unsigned char *phases;
    bool phase_drawn[FAKE_PHASES];
} fake_engine;

typedef struct fake_remote_port {
    struct fake_device *dev;
} fake_remote_port;

typedef struct fake_device {
    unsigned index;
    char id[FAKE_STR_LEN], serial[FAKE_STR_LEN], user_id[FAKE_STR_LEN];
    bool open, read_only, lost;
    pthread_mutex_t lock, engine_lock;
    pthread_cond_t engine_cond; /* wakes the engine: stop, trigger, register change */
    fake_regs regs;
    fake_engine eng;
    fake_stream stream;
    fake_remote_port remote;
} fake_device;

typedef struct fake_global {
    pthread_mutex_t lock;
    int init_count, tl_count, if_count;
    bool devices_listed;
    unsigned num_devices;
    char tl_token, if_token; /* their addresses are the TL and interface handles */
    fake_device devs[FAKE_MAX_DEVICES];
} fake_global;

extern fake_global g_fake;

/* util.c: errors, info replies, time, environment */
GC_ERROR fake_fail(GC_ERROR code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
GC_ERROR info_put(INFO_DATATYPE type, const void *src, size_t n, INFO_DATATYPE *piType, void *pBuffer,
                  size_t *piSize);
GC_ERROR info_str(const char *s, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize);
GC_ERROR info_u64(uint64_t v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize);
GC_ERROR info_u32(uint32_t v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize);
GC_ERROR info_i32(int32_t v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize);
GC_ERROR info_sizet(size_t v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize);
GC_ERROR info_bool(bool v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize);
GC_ERROR info_ptr(const void *v, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize);
uint64_t fake_now_ns(void);
void fake_deadline(struct timespec *ts, uint64_t deadline_ns);
void fake_cond_init(pthread_cond_t *cond);
int64_t fake_env_int(const char *name, int64_t fallback, int64_t lo, int64_t hi);
bool fake_lib_ready(void);

/* system.c: handle lookups */
bool fake_is_tl(const void *h);                          /* the open system */
bool fake_is_if(const void *h);                          /* the open interface */
fake_device *fake_find_device(const void *h);            /* an open device module */
fake_device *fake_find_remote(const void *h);            /* the remote port of an open device */
fake_device *fake_find_device_by_id(const char *id);     /* any listed device */

/* device.c */
GC_ERROR device_open(fake_device *d, DEVICE_ACCESS_FLAGS flags);
void device_close(fake_device *d);
GC_ERROR device_info(fake_device *d, DEVICE_INFO_CMD cmd, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize);
void device_init(fake_device *d, unsigned index);
void device_destroy(fake_device *d);
size_t device_payload_size(const fake_regs *r);

/* registers.c */
void regs_defaults(fake_regs *r);
void regs_load_fault_env(fake_regs *r);
GC_ERROR regs_read(fake_device *d, uint64_t address, void *buffer, size_t *size);
GC_ERROR regs_write(fake_device *d, uint64_t address, const void *buffer, size_t *size);

/* engine.c */
GC_ERROR engine_start(fake_device *d);
void engine_stop(fake_device *d);
void engine_trigger(fake_device *d);

/* stream.c */
void stream_close(fake_stream *s); /* called with the device lock held and the engine stopped */
fake_fifo *stream_fifo(fake_stream *s, fake_buffer_state state);
void fifo_push(fake_fifo *q, fake_buffer *b);
void fifo_push_front(fake_fifo *q, fake_buffer *b);
fake_buffer *fifo_pop(fake_fifo *q);
void fifo_remove(fake_fifo *q, fake_buffer *b);

/* pattern.c: the reference moving radial sine (daemon/cameras/pattern.py) */
void pattern_lut(uint16_t lut[1024], unsigned bits);
uint16_t *pattern_ring(size_t width, size_t height);
void pattern_draw(unsigned char *dst, const uint16_t *ring, const uint16_t lut[1024], size_t width, size_t height,
                  size_t rows, size_t bytes_per_pixel, uint64_t frame_id);

/* xml.c: node maps embedded in the library */
const char *xml_device(size_t *size);
const char *xml_module(size_t *size);

#endif
