/* The two GenICam node maps, embedded at build time with the assembler's .incbin (build.sh passes the
 * source directory with -Wa,-I so the assembler finds device.xml and module.xml). */
#include "fake.h"

__asm__(
    "  .section .rodata\n"
    "  .balign 16\n"
    "  .hidden fake_device_xml_start\n"
    "  .globl fake_device_xml_start\n"
    "fake_device_xml_start:\n"
    "  .incbin \"device.xml\"\n"
    "  .hidden fake_device_xml_end\n"
    "  .globl fake_device_xml_end\n"
    "fake_device_xml_end:\n"
    "  .byte 0\n"
    "  .balign 16\n"
    "  .hidden fake_module_xml_start\n"
    "  .globl fake_module_xml_start\n"
    "fake_module_xml_start:\n"
    "  .incbin \"module.xml\"\n"
    "  .hidden fake_module_xml_end\n"
    "  .globl fake_module_xml_end\n"
    "fake_module_xml_end:\n"
    "  .byte 0\n"
    "  .previous\n");

extern const char fake_device_xml_start[], fake_device_xml_end[];
extern const char fake_module_xml_start[], fake_module_xml_end[];

const char *xml_device(size_t *size) {
    *size = (size_t)(fake_device_xml_end - fake_device_xml_start);
    return fake_device_xml_start;
}

const char *xml_module(size_t *size) {
    *size = (size_t)(fake_module_xml_end - fake_module_xml_start);
    return fake_module_xml_start;
}
