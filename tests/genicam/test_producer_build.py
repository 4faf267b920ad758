"""The fake GenTL producer builds, exports the whole GenTL 1.6 interface and serves valid node maps."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import pytest
from genicam.genapi import NodeMap

from tests.fixtures.producer import BUILD_SCRIPT, FAKE_GENICAM_DIR

pytestmark = pytest.mark.genicam

GENTL_FUNCTIONS = (
    "GCGetInfo",
    "GCGetLastError",
    "GCInitLib",
    "GCCloseLib",
    "GCReadPort",
    "GCWritePort",
    "GCGetPortURL",
    "GCGetPortInfo",
    "GCRegisterEvent",
    "GCUnregisterEvent",
    "EventGetData",
    "EventGetDataInfo",
    "EventGetInfo",
    "EventFlush",
    "EventKill",
    "TLOpen",
    "TLClose",
    "TLGetInfo",
    "TLGetNumInterfaces",
    "TLGetInterfaceID",
    "TLGetInterfaceInfo",
    "TLOpenInterface",
    "TLUpdateInterfaceList",
    "IFClose",
    "IFGetInfo",
    "IFGetNumDevices",
    "IFGetDeviceID",
    "IFUpdateDeviceList",
    "IFGetDeviceInfo",
    "IFOpenDevice",
    "DevGetPort",
    "DevGetNumDataStreams",
    "DevGetDataStreamID",
    "DevOpenDataStream",
    "DevGetInfo",
    "DevClose",
    "DSAnnounceBuffer",
    "DSAllocAndAnnounceBuffer",
    "DSFlushQueue",
    "DSStartAcquisition",
    "DSStopAcquisition",
    "DSGetInfo",
    "DSGetBufferID",
    "DSClose",
    "DSRevokeBuffer",
    "DSQueueBuffer",
    "DSGetBufferInfo",
    "GCGetNumPortURLs",
    "GCGetPortURLInfo",
    "GCReadPortStacked",
    "GCWritePortStacked",
    "DSGetBufferChunkData",
    "IFGetParentTL",
    "DevGetParentIF",
    "DSGetParentDev",
    "DSGetNumBufferParts",
    "DSGetBufferPartInfo",
    "DSAnnounceCompositeBuffer",
    "DSGetBufferInfoStacked",
    "DSGetBufferPartInfoStacked",
    "DSGetNumFlows",
    "DSGetFlowInfo",
    "DSGetNumBufferSegments",
    "DSGetBufferSegmentInfo",
)
GC_ERR_NOT_INITIALIZED = -1002
GC_ERR_INVALID_HANDLE = -1006


def test_gentl_function_list_is_complete() -> None:
    assert len(set(GENTL_FUNCTIONS)) == 64


def test_build_prints_the_absolute_cti_path_last_and_is_a_no_op_when_up_to_date(fake_cti: Path) -> None:
    before = fake_cti.stat().st_mtime_ns
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=True, timeout=120)
    assert proc.stdout.splitlines()[-1] == str(fake_cti)
    assert fake_cti.is_absolute()
    assert fake_cti.parent == FAKE_GENICAM_DIR / "build"
    assert fake_cti.stat().st_mtime_ns == before


def test_asan_variant_is_a_separate_library(fake_cti: Path, fake_cti_asan: Path) -> None:
    assert fake_cti_asan != fake_cti
    assert fake_cti_asan.is_file()


def test_exports_exactly_the_64_gentl_functions(fake_cti: Path) -> None:
    proc = subprocess.run(
        ["nm", "-D", "--defined-only", str(fake_cti)], capture_output=True, text=True, check=True, timeout=30
    )
    exported = {line.split()[-1] for line in proc.stdout.splitlines() if " T " in line}
    assert exported == set(GENTL_FUNCTIONS)


def test_last_error_explains_a_failed_call(fake_cti: Path) -> None:
    lib = ctypes.CDLL(str(fake_cti))
    rc = lib.IFGetNumDevices(ctypes.c_void_p(), ctypes.byref(ctypes.c_uint32()))  # NULL is never a handle
    assert rc in (GC_ERR_NOT_INITIALIZED, GC_ERR_INVALID_HANDLE)
    code = ctypes.c_int32()
    size = ctypes.c_size_t(0)
    assert lib.GCGetLastError(ctypes.byref(code), None, ctypes.byref(size)) == 0
    text = ctypes.create_string_buffer(size.value)
    assert lib.GCGetLastError(ctypes.byref(code), text, ctypes.byref(size)) == 0
    assert code.value == rc
    assert text.value


@pytest.mark.parametrize("name", ["device.xml", "module.xml"])
def test_node_map_xml_loads_in_genapi(name: str) -> None:
    node_map = NodeMap()
    node_map.load_xml_from_file(str(FAKE_GENICAM_DIR / name))
    assert node_map.has_node("Root")
