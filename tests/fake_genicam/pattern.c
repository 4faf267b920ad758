/* The moving radial sine of daemon/cameras/pattern.py, bit for bit.
 *
 * lut[i] = floor((sin(2*pi*i/1024) + 1) * 0.5 * maxval + 0.5), evaluated in the same order as the Python
 * (double precision, libm sin, no FMA contraction: build.sh passes -ffp-contract=off).
 * ring[y*w+x] = (isqrt((x-w/2)^2 + (y-h/2)^2) * 16) % 1024 for the ROI, computed once per acquisition.
 * pixel = lut[(ring + 1024 - (frame_id*8) % 1024) % 1024], drawn through a per-frame rotated table.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"

#define LUT_SIZE 1024
#define RADIUS_STEP 16
#define FRAME_STEP 8
#define PI_DOUBLE 3.141592653589793 /* repr(math.pi): the same double */

void pattern_lut(uint16_t lut[LUT_SIZE], unsigned bits) {
    const double maxval = (double)((1u << bits) - 1u);
    for (int i = 0; i < LUT_SIZE; i++) {
        lut[i] = (uint16_t)floor((sin(2.0 * PI_DOUBLE * i / LUT_SIZE) + 1.0) * 0.5 * maxval + 0.5);
    }
}

uint16_t *pattern_ring(size_t width, size_t height) {
    uint16_t *ring = malloc(width * height * sizeof *ring);
    if (ring == NULL) return NULL;
    const int64_t cx = (int64_t)(width / 2), cy = (int64_t)(height / 2);
    for (size_t y = 0; y < height; y++) {
        const int64_t dy = (int64_t)y - cy;
        uint16_t *row = ring + y * width;
        for (size_t x = 0; x < width; x++) {
            const int64_t dx = (int64_t)x - cx;
            const int64_t r = (int64_t)floor(sqrt((double)(dy * dy + dx * dx))); /* exact: r2 < 2^52 */
            row[x] = (uint16_t)((r * RADIUS_STEP) % LUT_SIZE);
        }
    }
    return ring;
}

/* Rows below the centre mirror rows above it (row cy + k equals row cy - k), so only the rows up to the
 * centre are looked up and the others are copied: about half the table lookups. */
void pattern_draw(unsigned char *dst, const uint16_t *ring, const uint16_t lut[LUT_SIZE], size_t width,
                  size_t height, size_t rows, size_t bytes_per_pixel, uint64_t frame_id) {
    const unsigned shift = (unsigned)((frame_id * FRAME_STEP) % LUT_SIZE);
    uint16_t rotated[LUT_SIZE];
    for (unsigned j = 0; j < LUT_SIZE; j++) rotated[j] = lut[(j + LUT_SIZE - shift) & (LUT_SIZE - 1)];
    const size_t cy = height / 2, row_bytes = width * bytes_per_pixel;
    for (size_t y = 0; y < rows; y++) {
        unsigned char *out = dst + y * row_bytes;
        if (y > cy) {
            memcpy(out, dst + (2 * cy - y) * row_bytes, row_bytes);
            continue;
        }
        const uint16_t *idx = ring + y * width;
        if (bytes_per_pixel == 1) {
            for (size_t x = 0; x < width; x++) out[x] = (unsigned char)rotated[idx[x]];
        } else {
            for (size_t x = 0; x < width; x++) {
                const uint16_t v = rotated[idx[x]]; /* little-endian host: PIXEL_ENDIANNESS is LITTLE */
                memcpy(out + 2 * x, &v, sizeof v);
            }
        }
    }
}
