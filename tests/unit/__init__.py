"""Unit tests of the plugin's pure logic: no subprocess, no store, no pytester, no sleeps.

A package, so that its modules may share names with the end-to-end tests of the same parts.
"""
