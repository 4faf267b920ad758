"""Feature checks on a real GenApi node map built from XML (no device needed): increments, booleans, constants."""

from __future__ import annotations

import pytest
from genicam import genapi, gentl

from daemon.cameras import features
from daemon.cameras.features import FeatureAccess
from daemon.errors import ConfigError

XML = """<?xml version="1.0" encoding="utf-8"?>
<RegisterDescription ModelName="checks" VendorName="acqd" StandardNameSpace="None" SchemaMajorVersion="1"
    SchemaMinorVersion="1" SchemaSubMinorVersion="0" MajorVersion="1" MinorVersion="0" SubMinorVersion="0"
    ToolTip="feature checks" ProductGuid="6a2c1f0e-3b7d-4e59-9c1a-0acd0fa4e002"
    VersionGuid="6a2c1f0e-3b7d-4e59-9c1a-0acd0fa4e101" xmlns="http://www.genicam.org/GenApi/Version_1_1"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://www.genicam.org/GenApi/Version_1_1 http://www.genicam.org/GenApi/GenApiSchema_Version_1_1.xsd">
  <Category Name="Root" NameSpace="Standard">
    <pFeature>Width</pFeature><pFeature>ReverseX</pFeature><pFeature>Mode</pFeature><pFeature>Label</pFeature>
  </Category>
  <Integer Name="Width" NameSpace="Standard"><Value>64</Value><Min>16</Min><Max>1024</Max><Inc>16</Inc></Integer>
  <Boolean Name="ReverseX" NameSpace="Standard"><Value>0</Value></Boolean>
  <Enumeration Name="Mode" NameSpace="Standard">
    <EnumEntry Name="Fast" NameSpace="Standard"><Value>0</Value></EnumEntry>
    <EnumEntry Name="Quiet" NameSpace="Standard"><Value>1</Value></EnumEntry>
    <Value>0</Value>
  </Enumeration>
  <StringReg Name="Label" NameSpace="Standard">
    <Address>0</Address><Length>16</Length><AccessMode>RW</AccessMode><pPort>Device</pPort>
  </StringReg>
  <Port Name="Device" NameSpace="Standard"/>
</RegisterDescription>
"""


@pytest.fixture
def access() -> FeatureAccess:
    node_map = genapi.NodeMap()
    node_map.load_xml_from_string(XML)
    return FeatureAccess(node_map, "camera T1", (genapi.GenericException, gentl.GenericException))


def test_constants_are_genapis() -> None:
    kinds, modes = genapi.EInterfaceType, genapi.EAccessMode
    pairs = [
        (features.INTEGER, kinds.intfIInteger),
        (features.BOOLEAN, kinds.intfIBoolean),
        (features.COMMAND, kinds.intfICommand),
        (features.FLOAT, kinds.intfIFloat),
        (features.STRING, kinds.intfIString),
        (features.ENUMERATION, kinds.intfIEnumeration),
        (features.WRITE_ONLY, modes.WO),
        (features.READ_WRITE, modes.RW),
    ]
    assert [int(theirs) for _, theirs in pairs] == [ours for ours, _ in pairs]


def test_valid_writes_are_made(access: FeatureAccess) -> None:
    access.write("Width", 96)
    access.write("ReverseX", True)
    access.write("Mode", "Quiet")
    assert (access.read("Width"), access.read("ReverseX"), access.read("Mode")) == (96, True, "Quiet")


def test_off_increment_integer_names_the_nearest_values(access: FeatureAccess) -> None:
    with pytest.raises(ConfigError) as info:
        access.write("Width", 100)
    assert str(info.value) == (
        "camera T1: Width=100 is not min + k*increment (min 16, increment 16); nearest: 96, 112."
    )
    assert access.read("Width") == 64


def test_boolean_takes_only_a_boolean(access: FeatureAccess) -> None:
    with pytest.raises(ConfigError, match=r"camera T1: ReverseX takes true or false. Got 1 instead."):
        access.write("ReverseX", 1)


def test_a_feature_without_its_port_is_not_implemented(access: FeatureAccess) -> None:
    with pytest.raises(ConfigError, match=r"camera T1: feature Label is not implemented \(NI\); cannot set it to 'x'"):
        access.write("Label", "x")


def test_names_are_the_features_of_the_tree(access: FeatureAccess) -> None:
    assert sorted(access.names()) == ["Label", "Mode", "ReverseX", "Width"]
    with pytest.raises(ConfigError, match=r"has no feature 'mode'; close names: Mode"):
        access.node("mode")
