"""The leak check itself: it must find a registered value wherever it appears."""

from __future__ import annotations

from tests.support.leaks import LeakWatch


def test_finds_a_registered_secret_inside_a_log_line() -> None:
    watch = LeakWatch()
    watch.register("s3cr3t-value-0123456789", "signing secret")
    line = '{"level":"INFO","message":"loaded s3cr3t-value-0123456789"}'
    assert watch.findings(line) == ["signing secret"]


def test_reports_kinds_never_values() -> None:
    watch = LeakWatch()
    watch.register("tok.en.value", "minted token")
    watch.register("another-secret", "signing secret")
    found = watch.findings("x tok.en.value y another-secret")
    assert found == ["minted token", "signing secret"]
    assert all("tok.en" not in kind for kind in found)


def test_clean_output_has_no_findings() -> None:
    watch = LeakWatch()
    watch.register("s3cr3t-value-0123456789", "signing secret")
    assert watch.findings('{"message":"token minted","identity_fingerprint":"ab12"}') == []


def test_output_read_by_a_test_is_still_checked() -> None:
    watch = LeakWatch()
    watch.register("s3cr3t-value-0123456789", "signing secret")
    watch.read_by_test("earlier output with s3cr3t-value-0123456789")
    assert watch.findings(watch.take_read_by_tests()) == ["signing secret"]
    assert watch.take_read_by_tests() == ""
