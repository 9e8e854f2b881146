"""Tests of the analysis subpackage: policy, statistics, sequential test, judge, vectors."""
