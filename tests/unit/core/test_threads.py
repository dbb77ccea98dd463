"""Conversation handles: issued by the server, verified by HMAC, never caller-chosen."""

from __future__ import annotations

import pytest

from core.threads import ThreadHandles, handles_from_secret


def test_issued_handle_verifies_to_its_thread_id():
    handles = ThreadHandles(b"k" * 32)
    handle, thread_id = handles.issue()
    assert handle.startswith("th_") and thread_id in handle
    assert handles.verify(handle) == thread_id


def test_handles_are_unique():
    handles = ThreadHandles(b"k" * 32)
    assert len({handles.issue()[1] for _ in range(200)}) == 200


def test_tampered_or_foreign_handles_are_rejected():
    handles = ThreadHandles(b"k" * 32)
    handle, thread_id = handles.issue()
    other_handle, other_id = handles.issue()
    mac = handle.split(".")[1]
    other_mac = other_handle.split(".")[1]
    assert handles.verify(f"th_{other_id}.{mac}") is None  # someone else's id with my signature
    assert handles.verify(f"th_{thread_id}.{other_mac}") is None
    assert handles.verify(f"th_{thread_id}.{'A' * 22}") is None
    assert ThreadHandles(b"x" * 32).verify(handle) is None  # another server key
    for junk in ("", thread_id, handle + "x", handle.upper(), None, 42, "th_" + "a" * 22):
        assert handles.verify(junk) is None


def test_secret_key_is_stable_across_processes_and_random_without_one():
    a, b = handles_from_secret("a-long-enough-secret"), handles_from_secret("a-long-enough-secret")
    handle, thread_id = a.issue()
    assert b.verify(handle) == thread_id
    assert handles_from_secret(None).verify(handle) is None


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        ThreadHandles(b"short")
