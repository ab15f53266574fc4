"""The Dropbox emulator, driven through the real Dropbox SDK."""

from __future__ import annotations

import json
import socket

import pytest

dropbox = pytest.importorskip("dropbox")
pytest.importorskip("trustme")

import requests  # noqa: E402 - a dependency of the SDK
from dropbox import files  # noqa: E402
from dropbox.content_hash import DropboxContentHasher  # noqa: E402
from dropbox.exceptions import ApiError, AuthError, BadInputError, InternalServerError, RateLimitError  # noqa: E402

from conformance.backends.dropbox.emulator import DropboxEmulator  # noqa: E402

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def emulator():
    with DropboxEmulator(upload_size_maximum=LIMIT, page_size=3) as emu:
        yield emu


@pytest.fixture
def dbx(emulator):
    emulator.clear_faults()
    client = emulator.client()
    yield client
    emulator.clear_faults()
    client.close()


@pytest.fixture
def base(request):
    """A folder of the test's own, so tests share one emulator without seeing each other."""
    return "/emu-tests/" + request.node.name.replace("[", "-").replace("]", "")


def hash_of(data: bytes) -> str:
    hasher = DropboxContentHasher()
    hasher.update(data)
    return hasher.hexdigest()


def route_error(excinfo) -> str:
    """The tag chain of a typed route error, e.g. 'path/not_found'."""
    tags, node = [], excinfo.value.error
    while node is not None and hasattr(node, "_tag"):
        tags.append(node._tag)
        node = node._value
        if hasattr(node, "reason"):
            node = node.reason
    return "/".join(tags)


def test_upload_then_download_returns_bytes_and_metadata(dbx, base):
    meta = dbx.files_upload(b"hello world", f"{base}/Greeting.txt")
    assert (meta.name, meta.size, meta.path_display) == ("Greeting.txt", 11, f"{base}/Greeting.txt")
    assert meta.path_lower == f"{base}/greeting.txt".lower()
    assert meta.content_hash == hash_of(b"hello world")
    assert len(meta.rev) >= 9 and meta.id.startswith("id:")
    got, response = dbx.files_download(f"{base}/Greeting.txt")
    assert response.content == b"hello world"
    assert got.rev == meta.rev and got.size == 11


def test_get_metadata_of_missing_path_is_409_path_not_found(dbx, base):
    with pytest.raises(ApiError) as excinfo:
        dbx.files_get_metadata(f"{base}/missing")
    assert route_error(excinfo) == "path/not_found"


def test_parent_folders_exist_and_report_as_folders(dbx, base):
    dbx.files_upload(b"x", f"{base}/a/b/c")
    assert isinstance(dbx.files_get_metadata(f"{base}/a/b"), files.FolderMetadata)
    assert isinstance(dbx.files_get_metadata(f"{base}/a/b/c"), files.FileMetadata)


def test_paths_are_case_insensitive_and_keep_their_first_casing(dbx, base):
    first = dbx.files_upload(b"one", f"{base}/Docs/Report.TXT")
    again = dbx.files_upload(b"two", f"{base}/docs/report.txt", mode=files.WriteMode.overwrite)
    assert again.path_display == f"{base}/Docs/Report.TXT"
    assert again.id == first.id and again.rev != first.rev
    meta = dbx.files_get_metadata(f"{base}/DOCS/REPORT.txt")
    assert meta.path_display == f"{base}/Docs/Report.TXT" and meta.size == 3
    _, response = dbx.files_download(f"{base}/docs/REPORT.TXT")
    assert response.content == b"two"


def test_write_modes_and_revisions(dbx, base):
    path = f"{base}/f"
    rev1 = dbx.files_upload(b"v1", path).rev
    # add over different content conflicts; over identical content returns the file unchanged
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload(b"v2", path, mode=files.WriteMode.add)
    assert route_error(excinfo) == "path/conflict/file"
    assert dbx.files_upload(b"v1", path, mode=files.WriteMode.add).rev == rev1
    # update succeeds only against the current revision
    rev2 = dbx.files_upload(b"v2", path, mode=files.WriteMode.update(rev1)).rev
    assert rev2 != rev1
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload(b"v3", path, mode=files.WriteMode.update(rev1))
    assert route_error(excinfo) == "path/conflict/file"
    renamed = dbx.files_upload(b"v4", path, mode=files.WriteMode.add, autorename=True)
    assert renamed.path_display == f"{base}/f (1)"


def test_upload_over_a_folder_or_under_a_file_conflicts(dbx, base):
    dbx.files_upload(b"x", f"{base}/dir/file")
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload(b"x", f"{base}/dir", mode=files.WriteMode.overwrite)
    assert route_error(excinfo) == "path/conflict/folder"
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload(b"x", f"{base}/dir/file/below", mode=files.WriteMode.overwrite)
    assert route_error(excinfo) == "path/conflict/file_ancestor"


def test_content_hash_is_verified(dbx, base):
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload(b"payload", f"{base}/h", content_hash=hash_of(b"other"))
    assert route_error(excinfo) == "content_hash_mismatch"
    with pytest.raises(ApiError):
        dbx.files_get_metadata(f"{base}/h")
    session = dbx.files_upload_session_start(b"")
    cursor = files.UploadSessionCursor(session.session_id, 0)
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload_session_append_v2(b"abc", cursor, content_hash=hash_of(b"abd"))
    assert route_error(excinfo) == "content_hash_mismatch"


def test_the_per_request_upload_limit_applies_to_every_upload_route(dbx, base):
    too_big = b"x" * (LIMIT + 1)
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload(too_big, f"{base}/big")
    assert route_error(excinfo) == "payload_too_large"
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload_session_start(too_big)
    assert route_error(excinfo) == "payload_too_large"
    session = dbx.files_upload_session_start(b"x" * LIMIT)
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload_session_append_v2(too_big, files.UploadSessionCursor(session.session_id, LIMIT))
    assert route_error(excinfo) == "payload_too_large"


def test_upload_session_append_checks_offsets_and_finish_commits(dbx, base):
    path = f"{base}/session.bin"
    session_id = dbx.files_upload_session_start(b"abc").session_id
    dbx.files_upload_session_append_v2(b"def", files.UploadSessionCursor(session_id, 3))
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload_session_append_v2(b"zzz", files.UploadSessionCursor(session_id, 4))
    assert route_error(excinfo) == "incorrect_offset"
    assert excinfo.value.error.get_incorrect_offset().correct_offset == 6
    with pytest.raises(ApiError):  # nothing is visible before finish
        dbx.files_get_metadata(path)
    commit = files.CommitInfo(path=path, mode=files.WriteMode.overwrite)
    meta = dbx.files_upload_session_finish(b"gh", files.UploadSessionCursor(session_id, 6), commit)
    assert meta.size == 8 and meta.content_hash == hash_of(b"abcdefgh")
    assert dbx.files_download(path)[1].content == b"abcdefgh"


def test_finish_at_a_wrong_offset_reports_the_correct_one(dbx, base):
    session_id = dbx.files_upload_session_start(b"abcd").session_id
    commit = files.CommitInfo(path=f"{base}/x", mode=files.WriteMode.overwrite)
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload_session_finish(b"", files.UploadSessionCursor(session_id, 2), commit)
    assert route_error(excinfo) == "lookup_failed/incorrect_offset"
    assert excinfo.value.error.get_lookup_failed().get_incorrect_offset().correct_offset == 4


def test_sessions_are_closed_after_finish(dbx, base):
    session_id = dbx.files_upload_session_start(b"abc").session_id
    commit = files.CommitInfo(path=f"{base}/done", mode=files.WriteMode.overwrite)
    dbx.files_upload_session_finish(b"", files.UploadSessionCursor(session_id, 3), commit)
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload_session_append_v2(b"more", files.UploadSessionCursor(session_id, 3))
    assert route_error(excinfo) == "closed"
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload_session_finish(b"", files.UploadSessionCursor(session_id, 3), commit)
    assert route_error(excinfo) == "lookup_failed/closed"


def test_append_with_close_then_finish_still_works(dbx, base):
    session_id = dbx.files_upload_session_start(b"ab").session_id
    dbx.files_upload_session_append_v2(b"cd", files.UploadSessionCursor(session_id, 2), close=True)
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload_session_append_v2(b"ef", files.UploadSessionCursor(session_id, 4))
    assert route_error(excinfo) == "closed"
    commit = files.CommitInfo(path=f"{base}/closed", mode=files.WriteMode.overwrite)
    assert dbx.files_upload_session_finish(b"", files.UploadSessionCursor(session_id, 4), commit).size == 4


def test_unknown_session_is_not_found(dbx):
    with pytest.raises(ApiError) as excinfo:
        dbx.files_upload_session_append_v2(b"x", files.UploadSessionCursor("pid_upload_session:nope", 0))
    assert route_error(excinfo) == "not_found"


def test_download_honours_range_requests(dbx, base, emulator):
    path = f"{base}/digits"
    dbx.files_upload(b"0123456789", path)
    _, response = dbx.files_download(path, extra_headers={"Range": "bytes=2-4"})
    assert (response.status_code, response.content) == (206, b"234")
    assert response.headers["Content-Range"] == "bytes 2-4/10"
    assert dbx.files_download(path, extra_headers={"Range": "bytes=7-"})[1].content == b"789"
    assert dbx.files_download(path, extra_headers={"Range": "bytes=-2"})[1].content == b"89"
    assert dbx.files_download(path, extra_headers={"Range": "bytes=5-99"})[1].content == b"56789"
    with pytest.raises(dropbox.exceptions.HttpError) as excinfo:
        dbx.files_download(path, extra_headers={"Range": "bytes=10-"})
    assert excinfo.value.status_code == 416
    assert emulator.calls[-1].range == "bytes=10-"


def test_download_of_a_folder_or_missing_path_is_a_route_error(dbx, base):
    dbx.files_upload(b"x", f"{base}/d/f")
    with pytest.raises(ApiError) as excinfo:
        dbx.files_download(f"{base}/d")
    assert route_error(excinfo) == "path/not_file"
    with pytest.raises(ApiError) as excinfo:
        dbx.files_download(f"{base}/nothing")
    assert route_error(excinfo) == "path/not_found"


def test_delete_removes_files_and_folders_and_is_not_idempotent(dbx, base):
    dbx.files_upload(b"1", f"{base}/tree/one")
    dbx.files_upload(b"2", f"{base}/tree/sub/two")
    result = dbx.files_delete_v2(f"{base}/tree/one")
    assert isinstance(result.metadata, files.FileMetadata) and result.metadata.name == "one"
    deleted = dbx.files_get_metadata(f"{base}/tree/one", include_deleted=True)
    assert isinstance(deleted, files.DeletedMetadata)
    with pytest.raises(ApiError) as excinfo:  # Dropbox, unlike S3, refuses a second delete
        dbx.files_delete_v2(f"{base}/tree/one")
    assert route_error(excinfo) == "path_lookup/not_found"
    assert isinstance(dbx.files_delete_v2(f"{base}/tree").metadata, files.FolderMetadata)
    with pytest.raises(ApiError):
        dbx.files_get_metadata(f"{base}/tree/sub/two")


def test_list_folder_recursive_pages_through_continue(dbx, base):
    for name in ("a", "b", "c/d", "c/e"):
        dbx.files_upload(name.encode(), f"{base}/list/{name}")
    page = dbx.files_list_folder(f"{base}/list", recursive=True)
    seen = [e.path_display for e in page.entries]
    assert len(page.entries) == 3 and page.has_more
    while page.has_more:
        page = dbx.files_list_folder_continue(page.cursor)
        seen += [e.path_display for e in page.entries]
    folder = f"{base}/list"
    assert seen == [folder] + [f"{folder}/{n}" for n in ("a", "b", "c", "c/d", "c/e")]
    flat = dbx.files_list_folder(folder)
    assert [e.name for e in flat.entries] == ["a", "b", "c"]


def test_list_folder_errors(dbx, base):
    dbx.files_upload(b"x", f"{base}/file")
    with pytest.raises(ApiError) as excinfo:
        dbx.files_list_folder(f"{base}/absent")
    assert route_error(excinfo) == "path/not_found"
    with pytest.raises(ApiError) as excinfo:
        dbx.files_list_folder(f"{base}/file")
    assert route_error(excinfo) == "path/not_folder"
    with pytest.raises(BadInputError):
        dbx.files_list_folder_continue("AAEnot-a-cursor")


def test_bad_token_is_401_json(emulator):
    client = emulator.client("not-the-token")
    with pytest.raises(AuthError) as excinfo:
        client.files_get_metadata("/anything")
    assert excinfo.value.error.is_invalid_access_token()


def test_injected_429_carries_retry_after(dbx, emulator):
    emulator.fail_next(1, 429, retry_after=7)
    with pytest.raises(RateLimitError) as excinfo:
        dbx.files_get_metadata("/x")
    assert excinfo.value.backoff == 7
    assert excinfo.value.error.reason.is_too_many_requests()
    with pytest.raises(ApiError):  # the fault was used up: the next request is served normally
        dbx.files_get_metadata("/x")


def test_injected_500_hits_only_its_route_and_count(dbx, emulator, base):
    emulator.fail_next(2, 500, route="files/download")
    dbx.files_upload(b"data", f"{base}/f")  # another route: untouched
    for _ in range(2):
        with pytest.raises(InternalServerError) as excinfo:
            dbx.files_download(f"{base}/f")
        assert excinfo.value.status_code == 500
    assert dbx.files_download(f"{base}/f")[1].content == b"data"


def test_wire_format_details(emulator):
    """Exact content types, text 400s and error_summary, as the SDK and Dropbox use them."""
    session = emulator.http_session()
    url = f"https://{emulator.host}/2/files/get_metadata"
    auth = {"Authorization": f"Bearer {emulator.token}"}
    ok = session.post(url, data=json.dumps({"path": "/nowhere"}), headers=auth | {"Content-Type": "application/json"})
    assert ok.status_code == 409 and ok.headers["Content-Type"] == "application/json"
    assert ok.json()["error_summary"].startswith("path/not_found/")
    bad = session.post(url, data="{not json", headers=auth | {"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("text/plain")
    assert "files/get_metadata" in bad.text
    anonymous = session.post(url, data="{}", headers={"Content-Type": "application/json"})
    assert anonymous.status_code == 400 and "Authorization" in anonymous.text
    wrong = session.post(f"https://{emulator.host}/2/files/copy_v2", data="{}", headers=auth)
    assert wrong.status_code == 404


def test_stop_closes_the_port():
    emu = DropboxEmulator().start()
    client = emu.client()
    assert client.files_list_folder("").entries == []
    host, port = emu.host.split(":")
    emu.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2)


def test_injected_reset_and_truncation(dbx, emulator, base):
    dbx.files_upload(b"0123456789" * 100, f"{base}/f")
    emulator.fail_next(1, kind="reset", route="files/get_metadata")
    with pytest.raises(requests.ConnectionError):
        dbx.files_get_metadata(f"{base}/f")
    emulator.fail_next(1, kind="truncate", route="files/download")
    _, response = dbx.files_download(f"{base}/f")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        response.content  # noqa: B018 - reading the body is the point
    assert dbx.files_download(f"{base}/f")[1].content == b"0123456789" * 100


def test_stall_delays_then_serves(emulator, base):
    slow = emulator.client(timeout=0.2)
    slow.files_upload(b"x", f"{base}/f")
    emulator.fail_next(1, kind="stall", seconds=0.5)
    with pytest.raises(requests.exceptions.Timeout):
        slow.files_get_metadata(f"{base}/f")
    emulator.fail_next(1, kind="stall", seconds=0.05)
    assert slow.files_get_metadata(f"{base}/f").size == 1
    emulator.clear_faults()
