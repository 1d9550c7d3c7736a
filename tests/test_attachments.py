"""Photos and PDFs as evidence: uploaded first (type told from the bytes), named by create_call (intake),
arrive (报到) and report_result (办结), their digests recorded in the hash-chained log, and served only to
those who may read the step they came with."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from dispatch.core.clock import ManualClock
from dispatch.core.config import AttachmentsConfig, Config
from dispatch.web import schemas
from tests.conftest import Hub, start_hub
from tests.helpers import assignment_of, cid, new_call, post
from tests.test_export_log import run_cli
from tests.test_hardening_web import raw_request, status_and_body


def photo(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), color: str = "red", exif: bool = False) -> bytes:
    image = Image.new("RGB", size, color)
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if exif:
        info = Image.Exif()
        info[0x0112] = 6  # Orientation: rotate 90° clockwise to show
        kwargs["exif"] = info
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def upload(client: httpx.AsyncClient, data: bytes, content_type: str = "image/jpeg",
                 expect: int = 201) -> dict[str, Any]:
    res = await client.post("/api/v1/attachments", content=data, headers={"Content-Type": content_type})
    assert res.status_code == expect, res.text
    body: dict[str, Any] = res.json()
    return body


def bodies(detail: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e["body"] for e in detail["timeline"] if e["type"] == type_]


async def test_evidence_at_intake_arrive_and_result_is_recorded_and_served_to_readers_only(hub: Hub) -> None:
    intake_bytes, scene_bytes, result_bytes = photo(), photo("PNG", color="blue"), photo("WEBP", color="green")
    async with await hub.login("op1.yiqiao") as op, await hub.login("police1.yiqiao") as police:
        up = await upload(op, intake_bytes, "application/octet-stream")
        schemas.AttachmentOut.model_validate(up)
        assert up["content_type"] == "image/jpeg" and (up["width"], up["height"]) == (640, 480)
        assert up["sha256"] == hashlib.sha256(intake_bytes).hexdigest() and up["size"] == len(intake_bytes)
        created = await post(op, "/api/v1/calls", new_call(attachments=[up["id"]]), expect=201)
        call_id = created["call_id"]
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        asg = assignment_of(detail, "police")
        await post(police, f"/api/v1/assignments/{asg['id']}/acknowledge")
        scene = await upload(police, scene_bytes, "image/png")
        await post(police, f"/api/v1/assignments/{asg['id']}/arrive", {"attachments": [scene["id"]]})
        result = await upload(police, result_bytes, "image/webp")
        doc = await upload(police, PDF, "application/pdf")
        assert doc["content_type"] == "application/pdf" and doc["thumbnail_url"] is None
        await post(police, f"/api/v1/assignments/{asg['id']}/report_result",
                   {"result": "已清理", "attachments": [result["id"], doc["id"]]})

        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        schemas.CallDetailOut.model_validate(detail)
        # The log records each file's digest with the step it came with.
        assert bodies(detail, "call.created")[0]["attachments"] == [
            {"id": up["id"], "sha256": hashlib.sha256(intake_bytes).hexdigest(), "content_type": "image/jpeg",
             "size": len(intake_bytes)}]
        assert [a["sha256"] for a in bodies(detail, "assignment.arrived")[0]["attachments"]] == [scene["sha256"]]
        assert [a["id"] for a in bodies(detail, "assignment.reported")[0]["attachments"]] == [result["id"], doc["id"]]
        assert [(a["id"], a["step"]) for a in detail["attachments"]] == [
            (up["id"], "intake"), (scene["id"], "arrive"), (result["id"], "report_result"),
            (doc["id"], "report_result")]
        assert detail["attachments"][1]["assignment_id"] == asg["id"]

        # A reader of the call gets the bytes exactly as uploaded, typed and not to be sniffed.
        res = await police.get(up["url"])
        assert res.status_code == 200 and res.content == intake_bytes
        assert res.headers["content-type"] == "image/jpeg"
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["content-disposition"] == f'inline; filename="{up["sha256"]}.jpg"'
        assert res.headers["cache-control"].startswith("private")
        pdf = await op.get(doc["url"])
        assert pdf.content == PDF and pdf.headers["content-disposition"].startswith("attachment;")
        thumb = await op.get(scene["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
        assert (await op.get(f"{doc['url']}/thumbnail")).status_code == 404

    # Another township's operator, and a liaison of a department with no part: as if it did not exist.
    async with await hub.login("op1.nanwang") as other, await hub.login("justice1.yiqiao") as justice:
        for client in (other, justice):
            for url in (up["url"], up["thumbnail_url"], scene["url"]):
                res = await client.get(url)
                assert res.status_code == 404 and res.json()["code"] == "not_found", url
    # The call's other department sees the intake photo, not the police's own steps.
    async with await hub.login("transport1.yiqiao") as transport:
        assert (await transport.get(up["url"])).status_code == 200
        assert (await transport.get(scene["url"])).status_code == 404
        seen = (await transport.get(f"/api/v1/calls/{call_id}")).json()["attachments"]
        assert [a["id"] for a in seen] == [up["id"]]


async def test_an_attachment_binds_once_and_only_for_its_uploader(hub: Hub) -> None:
    async with await hub.login("op1.yiqiao") as op, await hub.login("op2.yiqiao") as op2:
        up = await upload(op, photo())
        body = new_call(attachments=[up["id"]])
        first = await post(op, "/api/v1/calls", body, expect=201)
        # The same command again is a retry, answered from the record (not a second use).
        again = await op.post("/api/v1/calls", json=body)
        assert again.status_code == 200 and again.json()["replayed"] is True
        reuse = await post(op, "/api/v1/calls", new_call(attachments=[up["id"]]), expect=409)
        assert reuse["field"] == "attachments.0" and reuse["code"] == "conflict"
        # Someone else's upload, even in the same township, cannot be named.
        theirs = await upload(op2, photo(color="black"))
        refused = await post(op, "/api/v1/calls", new_call(attachments=[theirs["id"]]), expect=403)
        assert refused["field"] == "attachments.0"
        missing = await post(op, "/api/v1/calls", new_call(attachments=[str(uuid.uuid4())]), expect=404)
        assert missing["field"] == "attachments.0"
        # Nothing of a refused command stays: the upload is still free for its uploader's next command.
        ok = await post(op2, "/api/v1/calls", new_call(attachments=[theirs["id"]]), expect=201)
        assert ok["call_id"] != first["call_id"]
        dup = await post(op, "/api/v1/calls", new_call(attachments=[up["id"], up["id"]]), expect=422)
        assert dup["field"] == "attachments"
        many = await post(op, "/api/v1/calls", new_call(attachments=[str(uuid.uuid4()) for _ in range(10)]),
                          expect=422)
        assert many["field"] == "attachments"


async def test_files_are_typed_by_their_content(hub: Hub) -> None:
    async with await hub.login("op1.yiqiao") as op:
        fake = await upload(op, b"MZ\x90\x00 this is a program, not a photo" * 20, "image/jpeg", expect=422)
        assert fake["field"] == "file" and "not a JPEG" in fake["message"]
        html = await upload(op, b"<html><script>alert(1)</script></html>", "image/png", expect=422)
        assert html["field"] == "file"
        whole = photo(size=(800, 600))
        truncated = await upload(op, whole[: len(whole) // 2], "image/jpeg", expect=422)
        assert truncated["field"] == "file" and "truncated" in truncated["message"]
        cut_pdf = await upload(op, PDF[:40], "application/pdf", expect=422)
        assert cut_pdf["field"] == "file"
        assert (await upload(op, b"", expect=422))["field"] == "file"


async def test_an_oversize_upload_is_refused_with_413(cfg: Config, dsn: str, clock: ManualClock) -> None:
    small = cfg.model_copy(update={"attachments": AttachmentsConfig(max_bytes=50_000, max_pixels=1_000_000)})
    hub, server, task = await start_hub(small, dsn, clock)
    try:
        token = await hub.token("op1.yiqiao")
        head = (f"POST /api/v1/attachments HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: image/jpeg\r\n")
        # Declared too large: refused before a byte of it is read.
        status, body = status_and_body(await raw_request(hub, head + "Content-Length: 60000\r\n\r\n"))
        assert status == 413 and body["code"] == "payload_too_large"
        # Chunked (no Content-Length): cut off once past the limit while it streams.
        piece = b"\xff" * 8192
        chunks = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n"] * 8
        status, body = status_and_body(await raw_request(hub, head + "Transfer-Encoding: chunked\r\n\r\n", chunks))
        assert status == 413 and body["code"] == "payload_too_large"
        async with await hub.login("op1.yiqiao") as op:
            # Small on disk, too many pixels when decoded (a decompression bomb) is refused before decoding.
            bomb = await upload(op, photo("PNG", size=(2000, 1000), color="white"), expect=422)
            assert "pixels" in bomb["message"]
            assert (await upload(op, photo(size=(400, 300))))["size"] < 50_000
    finally:
        server.should_exit = True
        await task


async def test_the_thumbnail_is_upright_and_the_original_untouched(hub: Hub) -> None:
    sideways = photo(size=(400, 200), exif=True)
    async with await hub.login("op1.yiqiao") as op:
        up = await upload(op, sideways)
        assert (await op.get(up["url"])).content == sideways  # the evidence as taken
        thumb = Image.open(io.BytesIO((await op.get(up["thumbnail_url"])).content))
        assert thumb.size == (160, 320)  # rotated by the EXIF orientation
        assert not thumb.getexif()


async def test_unbound_uploads_are_removed_after_a_day(hub: Hub) -> None:
    async with await hub.login("op1.yiqiao") as op:
        old = await upload(op, photo(color="gray"))
        kept = await upload(op, photo(color="yellow"))
        await post(op, "/api/v1/calls", new_call(attachments=[kept["id"]]), expect=201)
        assert (await op.get(old["url"])).status_code == 200  # its uploader sees it while unbound
        hub.clock.advance(86400 + 60)
        await upload(op, photo(color="white"))  # an upload sweeps the stale ones
        assert (await op.get(old["url"])).status_code == 404
        assert (await op.get(kept["url"])).status_code == 200
        gone = await post(op, "/api/v1/calls", new_call(attachments=[old["id"]]), expect=404)
        assert gone["field"] == "attachments.0"


async def test_folder_storage_keeps_files_named_by_digest(cfg: Config, dsn: str, clock: ManualClock,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "evidence"
    in_folder = cfg.model_copy(update={"attachments": AttachmentsConfig(store="folder", folder=str(folder))})
    hub, server, task = await start_hub(in_folder, dsn, clock)
    try:
        data = photo(color="purple")
        async with await hub.login("op1.yiqiao") as op:
            up = await upload(op, data)
            created = await post(op, "/api/v1/calls", new_call(attachments=[up["id"]]), expect=201)
            assert (folder / up["sha256"]).read_bytes() == data
            assert [p.name for p in folder.iterdir()] == [up["sha256"]]
            async with hub.state.pool.acquire() as conn:
                assert await conn.fetchval("select data from attachments where id = $1", uuid.UUID(up["id"])) is None
            served = await op.get(up["url"])
            assert served.status_code == 200 and served.content == data
            detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
            assert detail["attachments"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    finally:
        server.should_exit = True
        await task


async def test_a_grid_workers_report_is_filed_under_their_grid_and_followed_in_my_reports(hub: Hub) -> None:
    async with await hub.login("grid.yiqiao") as grid, await hub.login("op1.yiqiao") as op:
        me = (await grid.get("/api/v1/me")).json()
        assert me["role"] == "grid_worker"
        async with hub.state.pool.acquire() as conn:
            own_grid = await conn.fetchval("select grid_id from users where username = 'grid.yiqiao'")
            other_grid = await conn.fetchval("select id from grids where township_id = $1 and id <> $2 limit 1",
                                             me["township_id"], own_grid)
        up = await upload(grid, photo(color="orange"))
        report = {"command_id": cid(), "source": "grid", "category": "street_vending", "title": "路口占道经营",
                  "address": "义桥镇人民路口", "lat": 35.72, "lon": 116.49, "attachments": [up["id"]]}
        created = await post(grid, "/api/v1/calls", report, expect=201)
        assert created["call_state"] == "intake"
        # Never another grid, another source, or a department called: the command centre decides that.
        for bad, field in (({"grid_id": other_grid}, "grid_id"), ({"source": "patrol"}, "source"),
                           ({"targets": ["police"]}, "targets")):
            refused = await post(grid, "/api/v1/calls", {**report, "command_id": cid(), "attachments": [], **bad},
                                 expect=403)
            assert refused["field"] == field
        call = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
        assert call["grid_id"] == own_grid and call["source"] == "grid" and call["state"] == "intake"
        assert [a["id"] for a in call["attachments"]] == [up["id"]]
        assert (await op.get(up["url"])).status_code == 200
        # The grid worker reads no call, but follows their own reports (and sees their own photo).
        assert (await grid.get(f"/api/v1/calls/{created['call_id']}")).status_code == 404
        assert (await grid.get(up["thumbnail_url"])).status_code == 200
        mine = (await grid.get("/api/v1/reports/mine")).json()
        schemas.ReportListOut.model_validate(mine)
        assert [(r["call_id"], r["state"], r["state_name"]["zh"]) for r in mine["reports"]] == [
            (created["call_id"], "intake", "待派单")]
        assert mine["reports"][0]["attachments"][0]["id"] == up["id"]
        await post(op, f"/api/v1/calls/{created['call_id']}/dispatch", {"targets": ["enforcement"]})
        mine = (await grid.get("/api/v1/reports/mine")).json()
        assert (mine["reports"][0]["state"], mine["reports"][0]["state_name"]["zh"]) == ("dispatched", "已派单")
        # Liaisons have no "my reports"; a grid worker acts on no call.
        async with await hub.login("police1.yiqiao") as police:
            assert (await police.get("/api/v1/reports/mine")).status_code == 403
        assert (await grid.get("/api/v1/calls")).json()["calls"] == []


async def test_export_log_writes_the_attached_files_named_by_their_digests(hub: Hub, tmp_path: Path) -> None:
    async with await hub.login("op1.yiqiao") as op:
        jpg, pdf = photo(color="teal"), PDF
        ids = [(await upload(op, jpg))["id"], (await upload(op, pdf, "application/pdf"))["id"]]
        await upload(op, photo(color="black"))  # never attached: not part of the record
        await post(op, "/api/v1/calls", new_call(attachments=ids), expect=201)
    out, files = tmp_path / "yiqiao.jsonl", tmp_path / "files"
    made = run_cli("export-log", "--township", "yiqiao", "--from", "2026-11-02", "--to", "2026-11-02",
                   "--out", str(out), "--attachments", str(files), dsn=hub.dsn)
    assert made.returncode == 0, made.stderr
    assert "wrote 2 attachment file(s)" in made.stderr
    recorded = [a["sha256"] for line in out.read_text().splitlines()
                for a in json.loads(line)["body"].get("attachments", [])]
    assert sorted(recorded) == sorted(p.name for p in files.iterdir())
    for path in files.iterdir():  # each file's name is the digest its event records
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
