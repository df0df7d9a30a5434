"""Tests of the sources (sources/), vendor plugins against fake vendors."""
