"""The dropbox driver against the bundled emulator: operations, append, errors, confinement, targets."""

from __future__ import annotations

import importlib.util
import socket
import threading

import pytest

dropbox = pytest.importorskip("dropbox")
pytest.importorskip("trustme")

import trustme  # noqa: E402

from conformance import errors  # noqa: E402
from conformance.adapters.dropbox import DropboxDriver  # noqa: E402
from conformance.adapters.dropbox.driver import APPEND_TOTAL_SIZE_MAXIMUM, AppendSession  # noqa: E402
from conformance.backends.dropbox import Emulator  # noqa: E402
from conformance.backends.dropbox.emulator import DropboxEmulator  # noqa: E402
from conformance.backends.faultproxy import FaultProxy  # noqa: E402
from conformance.driver import OPERATIONS, DriverError, Mode, Object, check_driver  # noqa: E402
from conformance.targets import OpenTarget, Target, open_target, start_backend, unavailable  # noqa: E402

CHUNK = 32 * 1024  # a small per-request limit, so upload sessions are exercised cheaply


def bound(**options) -> tuple[OpenTarget, DropboxEmulator]:
    """``dropbox@emulator`` opened as the harness opens it (its fault proxy in front), and the emulator behind."""
    backend = Emulator()
    target = Target("dropbox", "emulator", options)
    opened = open_target(target, start_backend(target, backend))
    opened.closers.append(backend.close)
    return opened, backend.emulator


@pytest.fixture(scope="module")
def bound_shared():
    opened, emulator = bound(request_size_maximum=CHUNK)
    yield opened.driver, emulator
    opened.close()


@pytest.fixture
def shared(bound_shared):
    return bound_shared[0]


@pytest.fixture
def drv(bound_shared):
    driver, emulator = bound_shared
    emulator.clear_faults()
    yield driver
    emulator.clear_faults()


@pytest.fixture
def emu(bound_shared, drv):
    return bound_shared[1]


@pytest.fixture
def key(request):
    """A key prefix of the test's own."""
    return "gspc-test/" + request.node.name.replace("[", "-").replace("]", "")


def routes(emulator, since: int) -> list[str]:
    return [call.route for call in emulator.calls[since:]]


def assert_context(err: errors.StorageError, op: str, path: str | None) -> None:
    assert (err.op, err.path, err.driver) == (op, path, "dropbox")


# -- operations -------------------------------------------------------------------------------


def test_driver_declares_what_it_does(drv):
    caps = check_driver(drv)
    assert caps.operations == set(OPERATIONS)
    assert caps.pairs == {"read": {"offset", "size"}}
    assert caps.limits == {"append_total_size_maximum": 350 * 1024**3}
    assert not any("server_side_encryption" in p for names in caps.pairs.values() for p in names)


def test_write_read_stat(drv, key):
    obj = drv.write(f"{key}/a.txt", b"hello world")
    assert (obj.path, obj.mode, obj.size) == (f"{key}/a.txt", Mode.READ, 11)
    assert obj.etag and obj.system["content_hash"]
    assert drv.read(f"{key}/a.txt") == b"hello world"
    st = drv.stat(f"{key}/a.txt")
    assert (st.mode, st.size, st.etag) == (Mode.READ, 11, obj.etag)
    assert drv.write(f"{key}/a.txt", b"second").etag != obj.etag  # overwrite makes a revision
    assert drv.read(f"{key}/a.txt") == b"second"


def test_write_lands_under_the_root_folder(drv, emu, key):
    drv.write(f"{key}/x/y", b"1")
    assert f"/gspc/{key}/x/y" in emu.store.paths()
    assert all(p == "/gspc" or p.startswith("/gspc/") for p in emu.store.paths())


def test_read_with_offset_and_size_uses_a_range_request(drv, emu, key):
    drv.write(f"{key}/d", b"0123456789")
    start = len(emu.calls)
    assert drv.read(f"{key}/d", offset=2, size=3) == b"234"
    assert emu.calls[start].range == "bytes=2-4" and emu.calls[start].status == 206
    assert drv.read(f"{key}/d", offset=7) == b"789"
    assert drv.read(f"{key}/d", size=4) == b"0123"
    assert drv.read(f"{key}/d", offset=8, size=100) == b"89"
    assert drv.read(f"{key}/d", offset=10) == b""
    assert drv.read(f"{key}/d", offset=50, size=5) == b""
    assert drv.read(f"{key}/d", offset=3, size=0) == b""


def test_read_of_size_zero_still_needs_the_file(drv, key):
    with pytest.raises(errors.ObjectNotExist):
        drv.read(f"{key}/missing", size=0)


@pytest.mark.parametrize("pairs", [{"offset": -1}, {"size": -2}, {"offset": "3"}])
def test_read_refuses_bad_offsets(drv, key, pairs):
    with pytest.raises(errors.RestrictionDissatisfied) as excinfo:
        drv.read(f"{key}/any", **pairs)
    assert_context(excinfo.value, "read", f"{key}/any")


def test_stat_of_a_folder_is_dir_and_read_of_a_folder_is_mode_invalid(drv, key):
    drv.write(f"{key}/dir/file", b"x")
    assert drv.stat(f"{key}/dir").mode == Mode.DIR
    with pytest.raises(errors.ObjectModeInvalid):
        drv.read(f"{key}/dir")


def test_write_over_a_folder_is_mode_invalid(drv, key):
    drv.write(f"{key}/dir/file", b"x")
    with pytest.raises(errors.ObjectModeInvalid) as excinfo:
        drv.write(f"{key}/dir", b"y")
    assert excinfo.value.actual == Mode.DIR
    assert drv.read(f"{key}/dir/file") == b"x"


def test_missing_object_is_object_not_exist_with_context(drv, key):
    for op in ("stat", "read"):
        with pytest.raises(errors.ObjectNotExist) as excinfo:
            getattr(drv, op)(f"{key}/nope")
        assert_context(excinfo.value, op, f"{key}/nope")
        assert isinstance(excinfo.value.__cause__, dropbox.exceptions.ApiError)


def test_large_write_goes_through_an_upload_session(drv, emu, key):
    data = bytes(range(256)) * (CHUNK * 3 // 256 + 7)  # three full chunks and a tail
    start = len(emu.calls)
    obj = drv.write(f"{key}/big", data)
    assert routes(emu, start) == [
        "files/upload_session/start",
        "files/upload_session/append_v2",
        "files/upload_session/append_v2",
        "files/upload_session/finish",
    ]
    assert obj.size == len(data)
    assert drv.read(f"{key}/big") == data
    start = len(emu.calls)
    drv.write(f"{key}/exact", b"e" * CHUNK)  # exactly the limit is still one request
    assert routes(emu, start) == ["files/upload"]


def test_write_refuses_non_bytes(drv, key):
    with pytest.raises(errors.Unexpected):
        drv.write(f"{key}/none", None)


# -- delete -----------------------------------------------------------------------------------


def test_delete_is_idempotent(drv, key):
    drv.write(f"{key}/f", b"1")
    drv.delete(f"{key}/f")
    with pytest.raises(errors.ObjectNotExist):
        drv.stat(f"{key}/f")
    drv.delete(f"{key}/f")
    drv.delete(f"{key}/never/existed/at/all")


def test_delete_failures_other_than_not_found_are_reported(drv, emu, key):
    emu.fail_next(1, 500, route="files/delete_v2")
    with pytest.raises(errors.ServiceInternal) as excinfo:
        drv.delete(f"{key}/f")
    assert_context(excinfo.value, "delete", f"{key}/f")


# -- list -------------------------------------------------------------------------------------


def test_list_yields_files_under_a_prefix(drv, key):
    for name in ("a/1", "a/2", "ab", "b/c/3"):
        drv.write(f"{key}/{name}", name.encode())
    assert sorted(o.path for o in drv.list(f"{key}/a/")) == [f"{key}/a/1", f"{key}/a/2"]
    assert sorted(o.path for o in drv.list(f"{key}/a")) == [f"{key}/a/1", f"{key}/a/2", f"{key}/ab"]
    everything = list(drv.list(f"{key}/"))
    assert sorted(o.path for o in everything) == [f"{key}/{n}" for n in ("a/1", "a/2", "ab", "b/c/3")]
    assert all(o.mode == Mode.READ and o.size for o in everything)  # folders are not listed
    assert list(drv.list(f"{key}/zzz/")) == []
    assert list(drv.list(f"{key}/ab/")) == []  # a file is not a folder: nothing below it


def test_list_follows_continue_cursors(drv, emu, key):
    for i in range(7):
        drv.write(f"{key}/p/{i}", b"x")
    before, emu.store.page_size = emu.store.page_size, 2
    try:
        start = len(emu.calls)
        found = sorted(o.path for o in drv.list(f"{key}/p/"))
    finally:
        emu.store.page_size = before
    assert found == [f"{key}/p/{i}" for i in range(7)]
    assert routes(emu, start).count("files/list_folder/continue") >= 3


def test_list_failure_mid_way_is_mapped(drv, emu, key):
    for i in range(3):
        drv.write(f"{key}/q/{i}", b"x")
    before, emu.store.page_size = emu.store.page_size, 1
    emu.fail_next(1, 503, route="files/list_folder/continue")
    try:
        with pytest.raises(errors.ServiceInternal) as excinfo:
            list(drv.list(f"{key}/q/"))
    finally:
        emu.store.page_size = before
    assert_context(excinfo.value, "list", f"{key}/q/")


# -- append -----------------------------------------------------------------------------------


def test_append_workflow(drv, key):
    path = f"{key}/log"
    obj = drv.create_append(path)
    assert obj.mode == Mode.APPEND and obj.append_offset == 0
    assert isinstance(obj.handle, AppendSession) and obj.handle.offset == 0
    with pytest.raises(errors.ObjectNotExist):
        drv.read(path)  # nothing at the path until commit (GSP-44)
    assert drv.write_append(obj, b"abc") == 3
    assert drv.write_append(obj, b"") == 0
    assert drv.write_append(obj, b"defg") == 4
    assert obj.append_offset == 7 and obj.handle.offset == 7
    with pytest.raises(errors.ObjectNotExist):
        drv.stat(path)
    drv.commit_append(obj)
    assert obj.mode == Mode.READ and obj.size == 7
    assert drv.read(path) == b"abcdefg"


def test_append_after_commit_and_commit_twice_are_mode_invalid(drv, key):
    obj = drv.create_append(f"{key}/once")
    drv.write_append(obj, b"x")
    drv.commit_append(obj)
    for op, args in (("write_append", (obj, b"y")), ("commit_append", (obj,))):
        with pytest.raises(errors.ObjectModeInvalid) as excinfo:
            getattr(drv, op)(*args)
        assert_context(excinfo.value, op, None)
    assert drv.read(f"{key}/once") == b"x"


def test_a_closed_session_is_mode_invalid_from_the_service(drv, key):
    obj = drv.create_append(f"{key}/closed")
    drv.write_append(obj, b"x")
    stale = Object(obj.path, Mode.APPEND, handle=AppendSession(obj.handle.session_id, 1))
    drv.commit_append(obj)
    with pytest.raises(errors.ObjectModeInvalid) as excinfo:
        drv.write_append(stale, b"y")  # the driver's mode check passes; Dropbox says closed
    assert "closed" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, dropbox.exceptions.ApiError)


def test_unknown_session_is_object_not_exist(drv, key):
    ghost = Object(f"{key}/ghost", Mode.APPEND, handle=AppendSession("pid_upload_session:gone"))
    with pytest.raises(errors.ObjectNotExist) as excinfo:
        drv.write_append(ghost, b"x")
    assert_context(excinfo.value, "write_append", None)


def test_append_needs_the_drivers_handle(drv, key):
    with pytest.raises(errors.ObjectModeInvalid):
        drv.write_append(Object(f"{key}/x", Mode.APPEND), b"x")


def test_incorrect_offset_names_the_correct_offset(drv, key):
    obj = drv.create_append(f"{key}/off")
    drv.write_append(obj, b"abcdef")
    obj.handle.offset = 2  # as if a write had been lost on our side
    with pytest.raises(errors.RestrictionDissatisfied) as excinfo:
        drv.write_append(obj, b"x")
    err = excinfo.value
    assert_context(err, "write_append", None)
    assert "6" in str(err) and err.correct_offset == 6
    assert isinstance(err.__cause__, dropbox.exceptions.ApiError)


def test_append_over_an_existing_object_replaces_it_at_commit(drv, key):
    path = f"{key}/old"
    drv.write(path, b"old content")
    obj = drv.create_append(path)
    drv.write_append(obj, b"new")
    assert drv.read(path) == b"old content"  # dropbox keeps the old object until commit
    drv.commit_append(obj)
    assert drv.read(path) == b"new"


def test_delete_during_an_unfinished_append(drv, key):
    path = f"{key}/pending"
    obj = drv.create_append(path)
    drv.write_append(obj, b"abc")
    drv.delete(path)
    drv.delete(path)
    drv.commit_append(obj)  # the session was untouched: commit creates the file (GSP-46 corner)
    assert drv.read(path) == b"abc"


def test_large_append_is_split_per_request(drv, emu, key):
    obj = drv.create_append(f"{key}/bigappend")
    data = b"z" * (CHUNK * 2 + 5)
    start = len(emu.calls)
    assert drv.write_append(obj, data) == len(data)
    assert routes(emu, start) == ["files/upload_session/append_v2"] * 3
    drv.commit_append(obj)
    assert drv.read(f"{key}/bigappend") == data


def test_append_total_limit_is_checked_before_any_request(drv, emu, key):
    obj = drv.create_append(f"{key}/full")
    obj.handle.offset = APPEND_TOTAL_SIZE_MAXIMUM
    start = len(emu.calls)
    with pytest.raises(errors.RestrictionDissatisfied):
        drv.write_append(obj, b"x")
    assert emu.calls[start:] == []


def test_concurrent_appends_keep_offsets_consistent(drv, key):
    obj = drv.create_append(f"{key}/threads")
    workers = [threading.Thread(target=drv.write_append, args=(obj, bytes([65 + i]) * 10)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    drv.commit_append(obj)
    data = drv.read(f"{key}/threads")
    assert len(data) == 40 and sorted(data[i * 10 : i * 10 + 10] for i in range(4)) == [
        bytes([65 + i]) * 10 for i in range(4)
    ]


# -- pairs and confinement --------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, args",
    [
        ("write", ("k", b"x")),
        ("read", ("k",)),
        ("stat", ("k",)),
        ("delete", ("k",)),
        ("create_append", ("k",)),
    ],
)
@pytest.mark.parametrize("pair", ["server_side_encryption", "server_side_encryption_customer_key"])
def test_sse_pairs_are_refused(drv, emu, op, args, pair):
    start = len(emu.calls)
    with pytest.raises(errors.PairUnsupported) as excinfo:
        getattr(drv, op)(*args, **{pair: b"k" * 32})
    assert excinfo.value.pair == pair and excinfo.value.op == op
    assert emu.calls[start:] == []


def test_pairs_on_append_operations_are_refused(drv, key):
    obj = drv.create_append(f"{key}/p")
    with pytest.raises(errors.PairUnsupported):
        drv.write_append(obj, b"x", content_type="text/plain")
    with pytest.raises(errors.PairUnsupported):
        drv.commit_append(obj, server_side_encryption="AES256")


@pytest.mark.parametrize("bad", ["../escape", "a/../../b", "/abs", "a//b", "a/./b", "", "trailing/", "a\nb"])
def test_keys_that_could_leave_the_root_are_refused_before_any_request(drv, emu, bad):
    start = len(emu.calls)
    for op, args in (("write", (bad, b"x")), ("read", (bad,)), ("stat", (bad,)), ("delete", (bad,))):
        with pytest.raises(errors.RestrictionDissatisfied) as excinfo:
            getattr(drv, op)(*args)
        assert_context(excinfo.value, op, bad)
    assert emu.calls[start:] == []


def test_nothing_outside_the_root_is_listed_or_reachable(drv, emu, key):
    outside = emu.client()
    outside.files_upload(b"keep me", "/outside/secret.txt")
    outside.files_upload(b"keep me too", "/gspc-sibling/file")
    drv.write(f"{key}/inside", b"x")
    listed = [o.path for o in drv.list("")]
    assert f"{key}/inside" in listed
    assert not any("secret" in p or "sibling" in p for p in listed)
    for attempt in ("../outside/secret.txt", "../gspc-sibling/file"):
        with pytest.raises(errors.RestrictionDissatisfied):
            drv.delete(attempt)
    assert outside.files_download("/outside/secret.txt")[1].content == b"keep me"


def test_root_option(emu):
    with pytest.raises(DriverError):
        DropboxDriver(emu.token, root="/", host=emu.host, ca_file=emu.ca_file)
    with pytest.raises(DriverError):
        DropboxDriver(emu.token, root="/a/../b", host=emu.host, ca_file=emu.ca_file)
    other = DropboxDriver(emu.token, root="elsewhere/deep/", host=emu.host, ca_file=emu.ca_file)
    try:
        assert other.root == "/elsewhere/deep"
        other.write("k", b"v")
        assert "/elsewhere/deep/k" in emu.store.paths()
        assert [o.path for o in other.list("")] == ["k"]
    finally:
        other.close()


# -- error mapping ----------------------------------------------------------------------------


def test_5xx_is_service_internal(drv, emu, key):
    for status in (500, 503):
        emu.fail_next(1, status)
        with pytest.raises(errors.ServiceInternal) as excinfo:
            drv.stat(f"{key}/x")
        assert excinfo.value.retryable and str(status) in str(excinfo.value)
        assert isinstance(excinfo.value.__cause__, dropbox.exceptions.InternalServerError)


def test_429_is_request_throttled_with_retry_after(drv, emu, key):
    emu.fail_next(1, 429, retry_after=7)
    with pytest.raises(errors.RequestThrottled) as excinfo:
        drv.write(f"{key}/x", b"x")
    assert excinfo.value.retry_after == 7
    assert_context(excinfo.value, "write", f"{key}/x")
    emu.fail_next(1, 429, reason="too_many_write_operations", retry_after=2)
    with pytest.raises(errors.RequestThrottled) as excinfo:
        drv.delete(f"{key}/x")
    assert excinfo.value.retry_after == 2 and "too_many_write_operations" in str(excinfo.value)


def test_route_error_too_many_write_operations_is_throttled(drv, emu, key):
    body = {"error_summary": "too_many_write_operations/..", "error": {".tag": "too_many_write_operations"}}
    emu.fail_next(1, 409, route="files/delete_v2", json_body=body)
    with pytest.raises(errors.RequestThrottled) as excinfo:
        drv.delete(f"{key}/x")
    assert excinfo.value.retry_after is None


def test_write_permission_errors_are_permission_denied(drv, emu, key):
    body = {
        "error_summary": "path/no_write_permission/..",
        "error": {".tag": "path", "reason": {".tag": "no_write_permission"}, "upload_session_id": "s"},
    }
    emu.fail_next(1, 409, route="files/upload", json_body=body)
    with pytest.raises(errors.PermissionDenied) as excinfo:
        drv.write(f"{key}/x", b"x")
    assert "no_write_permission" in str(excinfo.value)


def test_bad_token_is_permission_denied(emu, key):
    wrong = DropboxDriver("wrong-token-value", host=emu.host, ca_file=emu.ca_file)
    try:
        with pytest.raises(errors.PermissionDenied) as excinfo:
            wrong.stat(f"{key}/x")
    finally:
        wrong.close()
    assert isinstance(excinfo.value.__cause__, dropbox.exceptions.AuthError)


def test_400_is_unexpected(drv, emu, key):
    emu.fail_next(1, 400)
    with pytest.raises(errors.Unexpected) as excinfo:
        drv.stat(f"{key}/x")
    assert isinstance(excinfo.value.__cause__, dropbox.exceptions.BadInputError)


def test_payload_too_large_is_a_restriction(drv, emu, key):
    emu.upload_size_maximum = 10
    try:
        with pytest.raises(errors.RestrictionDissatisfied) as excinfo:
            drv.write(f"{key}/x", b"more than ten bytes")
    finally:
        emu.upload_size_maximum = CHUNK
    assert "payload_too_large" in str(excinfo.value)


def test_connection_refused_is_network_error(emu):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        dead = DropboxDriver(emu.token, host=f"127.0.0.1:{port}", ca_file=emu.ca_file, timeout=2)
        with pytest.raises(errors.NetworkError) as excinfo:
            dead.stat("x")
    dead.close()
    assert excinfo.value.retryable
    assert_context(excinfo.value, "stat", "x")


def test_a_silent_server_times_out_as_network_error(emu):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts at the TCP level, never answers the TLS handshake
        slow = DropboxDriver(emu.token, host=f"127.0.0.1:{silent.getsockname()[1]}", ca_file=emu.ca_file, timeout=0.3)
        with pytest.raises(errors.NetworkError):
            slow.read("x")
        slow.close()


def test_an_untrusted_certificate_is_network_error(emu, tmp_path):
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    wary = DropboxDriver(emu.token, host=emu.host, ca_file=str(stranger))
    try:
        with pytest.raises(errors.NetworkError) as excinfo:
            wary.stat("x")
    finally:
        wary.close()
    assert "SSL" in type(excinfo.value.__cause__).__name__


def test_the_token_never_appears_in_errors(emu, key):
    token = emu.token
    drv = DropboxDriver(token, host=emu.host, ca_file=emu.ca_file)
    raised = []

    def collect(call, *args):
        try:
            call(*args)
        except errors.StorageError as exc:
            raised.append(exc)

    try:
        collect(drv.stat, f"{key}/missing")
        emu.fail_next(1, 500)
        collect(drv.read, f"{key}/x")
        emu.fail_next(1, 429, retry_after=1)
        collect(drv.write, f"{key}/x", b"x")
        # A service that echoes the credential back: the driver must blank it out.
        emu.fail_next(1, 400, json_body={"error": f"bad header Authorization: Bearer {token}"})
        collect(drv.stat, f"{key}/x")
        obj = drv.create_append(f"{key}/t")
        obj.handle.offset = 99
        collect(drv.write_append, obj, b"x")
    finally:
        emu.clear_faults()
        drv.close()
    bad = DropboxDriver("secret-token-that-is-wrong", host=emu.host, ca_file=emu.ca_file)
    try:
        bad.stat("x")
    except errors.StorageError as exc:
        raised.append(exc)
    bad.close()
    assert [type(e).__name__ for e in raised] == [
        "ObjectNotExist",
        "ServiceInternal",
        "RequestThrottled",
        "Unexpected",
        "RestrictionDissatisfied",
        "PermissionDenied",
    ]
    for exc in raised:
        for text in (str(exc), repr(exc)):
            assert token not in text and "secret-token-that-is-wrong" not in text
    assert "***" in str(raised[3])


# -- targets ----------------------------------------------------------------------------------


def test_emulator_target_through_the_harness(key):
    opened = open_target(Target.parse("dropbox@emulator"))
    driver, proxy = opened.driver, opened.faults
    assert isinstance(proxy, FaultProxy)  # the harness's proxy stands in front, over TLS
    assert driver._dbx._host_map["api"] == f"127.0.0.1:{proxy.port}"
    driver.write(f"{key}/t", b"ok")
    assert driver.read(f"{key}/t") == b"ok"
    proxy.inject("status", status=429, retry_after=3, times=1)
    with pytest.raises(errors.RequestThrottled) as throttled:
        driver.read(f"{key}/t")
    assert throttled.value.retry_after == 3
    proxy.inject("reset", times=1)
    with pytest.raises(errors.NetworkError):
        driver.stat(f"{key}/t")
    proxy.inject("status", status=500)
    with pytest.raises(errors.ServiceInternal):
        driver.stat(f"{key}/t")
    proxy.clear()
    assert driver.read(f"{key}/t") == b"ok"
    host, port = proxy.upstream
    opened.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2)


def test_command_line_options_arrive_as_strings(key):
    opened, emulator = bound(timeout="5", request_size_maximum="1024", root="/cli", max_retries_on_error="0")
    driver = opened.driver
    try:
        driver.write(f"{key}/f", b"x" * 3000)  # above 1024: an upload session
        assert driver.read(f"{key}/f") == b"x" * 3000
        assert "files/upload_session/finish" in routes(emulator, 0)
        assert f"/cli/{key}/f" in emulator.store.paths()
    finally:
        opened.close()
    with pytest.raises(DriverError) as excinfo:
        open_target(Target("dropbox", "emulator", {"timeout": "soon"}))
    assert "timeout" in str(excinfo.value)


def test_default_and_unknown_backends():
    assert DropboxDriver.default_backends == ("emulator",)
    with pytest.raises(DriverError) as excinfo:
        open_target(Target("dropbox", "s3"))
    message = str(excinfo.value)
    assert "no dropbox backend 's3' (known backends: emulator, live" in message and "\n" not in message


def test_live_needs_credentials_from_the_environment(monkeypatch):
    for name in ("DROPBOX_TOKEN", "DROPBOX_APP_KEY", "DROPBOX_REFRESH_TOKEN", "DROPBOX_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    live = Target("dropbox", "live")
    reason = unavailable(live)
    assert reason and "DROPBOX_TOKEN" in reason and "DROPBOX_APP_KEY" in reason and "DROPBOX_REFRESH_TOKEN" in reason
    assert unavailable(Target("dropbox", "emulator")) is None
    monkeypatch.setenv("DROPBOX_APP_KEY", "k")
    assert unavailable(live)  # an app key alone is not enough
    monkeypatch.setenv("DROPBOX_REFRESH_TOKEN", "r")
    assert unavailable(live) is None
    monkeypatch.delenv("DROPBOX_APP_KEY")
    monkeypatch.setenv("DROPBOX_TOKEN", "t")
    assert unavailable(live) is None


def test_live_uses_the_environment_token(monkeypatch, emu, key):
    # Aimed at the emulator, so the test stays on 127.0.0.1; the token comes only from the environment.
    monkeypatch.setenv("DROPBOX_TOKEN", emu.token)
    live = open_target(Target("dropbox", "live", {"host": emu.host, "ca_file": emu.ca_file}))
    try:
        live.driver.write(f"{key}/live", b"v")
        assert live.driver.read(f"{key}/live") == b"v"
        assert live.faults is None  # nothing local to stand in front of
    finally:
        live.close()


def test_missing_package_is_reported(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "dropbox" else real(name, *a))
    for backend in ("emulator", "live", None):
        reason = unavailable(Target("dropbox", backend))
        assert reason and "dropbox" in reason and "pip install" in reason


def test_reset_and_cut_short_bodies_are_network_errors(drv, emu, key):
    drv.write(f"{key}/f", b"x" * 1000)
    emu.fail_next(1, kind="reset", route="files/upload")
    with pytest.raises(errors.NetworkError) as excinfo:
        drv.write(f"{key}/f", b"y" * 1000)
    assert_context(excinfo.value, "write", f"{key}/f")
    emu.fail_next(1, kind="truncate", route="files/download")
    with pytest.raises(errors.NetworkError) as excinfo:
        drv.read(f"{key}/f")
    assert_context(excinfo.value, "read", f"{key}/f")
    assert drv.read(f"{key}/f") == b"x" * 1000  # the failed write left the old content


@pytest.mark.parametrize("op", ["stat", "read", "delete"])
def test_403_access_errors_are_permission_denied(drv, emu, key, op):
    drv.write(f"{key}/f", b"x")
    emu.fail_next(1, 403)
    with pytest.raises(errors.PermissionDenied) as excinfo:
        getattr(drv, op)(f"{key}/f")
    assert not excinfo.value.retryable and "403" in str(excinfo.value)
    assert drv.read(f"{key}/f") == b"x"


def test_503_is_throttled_only_with_retry_after(drv, emu, key):
    emu.fail_next(1, 503, retry_after=3)
    with pytest.raises(errors.RequestThrottled) as excinfo:
        drv.stat(f"{key}/f")
    assert excinfo.value.retry_after == 3
    emu.fail_next(1, 503)
    with pytest.raises(errors.ServiceInternal):
        drv.stat(f"{key}/f")


def test_a_refused_token_is_one_line_at_open(emu):
    wrong = DropboxDriver("not-the-token", host=emu.host, ca_file=emu.ca_file)
    with pytest.raises(DriverError, match=r"^dropbox: the credentials were refused") as refused:
        wrong.check_access()
    assert "not-the-token" not in str(refused.value)
    right = DropboxDriver(emu.token, host=emu.host, ca_file=emu.ca_file, root="/not-made-yet")
    right.check_access()  # a root that does not exist yet is fine
