#!/usr/bin/env node
// The driver protocol loop (docs/protocol.md in gsp-conformance): one JSON request per line on
// stdin, one JSON answer per line on stdout, payloads as binary frames after their line once the
// start agreed on them (else base64). It drives the service of storage.js; nothing here changes
// when you bring your own service.
//
//   node driver.js [--broken=untyped-read] [--trace]
"use strict";

const { createService } = require("./storage");
const { StorageError, modeNames, modeOf } = require("./taxonomy");

const VERSION = 1;
const FRAMES = 1; // the binary frames this driver speaks, accepted when the start offers them
const MAX_FRAME = 256 * 1024 * 1024; // the longest frame either end takes
const OPERATIONS = ["write", "read", "stat", "delete", "list", "create_append", "write_append", "commit_append"];
const flags = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")));
let service = null;
let framed = false; // payloads as binary frames, since this driver's answer to the start accepted them

class Malformed extends Error {}
class Frame {
  // a read's bytes: sent as a frame after the answer's line once agreed, else as base64
  constructor(bytes) {
    this.bytes = bytes;
  }
}

// The size of the frame a request's data announces ({"$bytes": N}), or null when it is no marker.
function frameSize(request) {
  const marker = request.data;
  if (marker === null || typeof marker !== "object" || Array.isArray(marker) || !("$bytes" in marker)) return null;
  const size = marker.$bytes;
  if (Object.keys(marker).length !== 1 || !Number.isInteger(size) || size < 0 || size > MAX_FRAME) {
    throw new Malformed(`a frame's marker must be {"$bytes": N} alone, N an integer from 0 to ${MAX_FRAME}`);
  }
  if (!framed) throw new Malformed("a frame, but the start agreed on base64 payloads");
  return size;
}

// The answer to a request (its frame, if any, already in request.data) and the exit status, if it ends the process.
function answer(request) {
  const seq = Number.isInteger(request.seq) ? request.seq : null;
  if (request.op === "stop") return [null, 0];
  if (request.op === "start") {
    if (request.version !== VERSION) {
      return [refusal(seq, `protocol version ${JSON.stringify(request.version)} is not supported (this driver speaks ${VERSION})`), 2];
    }
    try {
      service = createService(fromWire(request.options ?? {}), flags.broken);
    } catch (error) {
      return [{ seq, error: { class: "DriverError", message: error.message } }, 2];
    }
    const result = { version: VERSION, name: service.name, capabilities: service.capabilities };
    if (request.frames === FRAMES) [result.frames, framed] = [FRAMES, true];
    return [{ seq, result }, null];
  }
  if (service === null) return [refusal(seq, `the first request must be start, not ${JSON.stringify(request.op)}`), null];
  try {
    return [{ seq, result: call(request) ?? null }, null];
  } catch (error) {
    if (error instanceof Malformed) return [refusal(seq, error.message), null];
    return [{ seq, error: errorJSON(error) }, null];
  }
}

function call(request) {
  const op = request.op;
  if (!OPERATIONS.includes(op)) throw new Malformed(`unknown op ${JSON.stringify(op)}`);
  const pairs = fromWire(request.pairs ?? {});
  const data = op === "write" || op === "write_append" ? payload(request.data) : null;
  if (op === "write_append" || op === "commit_append") {
    const obj = request.object ? { ...request.object, mode: modeOf(request.object.mode ?? []), system: fromWire(request.object.system ?? {}) } : null;
    if (op === "commit_append") return service.commit_append(obj, pairs);
    const written = service.write_append(obj, data, pairs);
    return { written, object: obj && toWire(obj) };
  }
  const where = op === "list" ? request.prefix : request.path;
  if (typeof where !== "string") throw new Malformed(`${op} needs a string ${op === "list" ? "prefix" : "path"}`);
  if (op === "write") return toWire(service.write(where, data, pairs));
  if (op === "read") return new Frame(service.read(where, pairs));
  if (op === "list") return service.list(where, pairs).map(toWire);
  if (op === "delete") return service.delete(where, pairs);
  return toWire(service[op](where, pairs));
}

function payload(data) {
  if (Buffer.isBuffer(data)) return data; // a frame
  if (typeof data !== "string") throw new Malformed("data must be base64 text or a frame");
  return Buffer.from(data, "base64");
}

function toWire(obj) {
  return {
    path: obj.path,
    mode: modeNames(obj.mode),
    size: obj.size ?? null,
    append_offset: obj.append_offset ?? null,
    etag: obj.etag ?? null,
    content_type: obj.content_type ?? null,
    system: encode(obj.system ?? {}),
    handle: obj.handle ?? null,
  };
}

function errorJSON(error) {
  if (!(error instanceof StorageError)) {
    // a raw exception: the harness reports it as untyped, and the specs fail it
    return { class: error?.constructor?.name ?? "Error", message: String(error?.message ?? error) };
  }
  const found = { class: error.cls, message: error.message, op: error.op, path: error.path };
  if (error.retryAfter !== null) found.retry_after = error.retryAfter;
  if (Object.keys(error.attributes).length) found.attributes = encode(error.attributes);
  return found;
}

function refusal(seq, message) {
  return { seq, error: { class: "ProtocolError", message } };
}

// {"base64": "..."} values become Buffers, all the way down.
function fromWire(value) {
  if (Array.isArray(value)) return value.map(fromWire);
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "base64" && typeof value.base64 === "string") return Buffer.from(value.base64, "base64");
    return Object.fromEntries(keys.map((k) => [k, fromWire(value[k])]));
  }
  return value;
}

// Buffers become {"base64": "..."}, all the way down.
function encode(value) {
  if (Buffer.isBuffer(value)) return { base64: value.toString("base64") };
  if (Array.isArray(value)) return value.map(encode);
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  return value;
}

function trace(request) {
  const secret = new Set(request.secrets ?? []);
  const pairs = Object.entries(request.pairs ?? {}).map(([k, v]) => `${k}=${secret.has(k) ? "***" : JSON.stringify(v)}`);
  process.stderr.write(`js-memory: ${request.op} ${request.path ?? request.prefix ?? ""} ${pairs.join(" ")}\n`);
}

// The input: chunks as they come, cut into lines and the frames after them.
const chunks = [];
let buffered = 0;
let scanned = 0; // bytes at the front known to hold no newline
let waiting = null; // a request whose frame is still arriving, and its size
let status = null;

function take(count) {
  const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
  chunks.length = 0;
  if (all.length > count) chunks.push(all.subarray(count));
  buffered -= count;
  scanned = 0;
  return all.subarray(0, count);
}

function newline() {
  let offset = 0;
  for (const chunk of chunks) {
    const at = offset + chunk.length > scanned ? chunk.indexOf(10, Math.max(0, scanned - offset)) : -1;
    if (at >= 0) return offset + at;
    offset += chunk.length;
  }
  scanned = offset;
  return -1;
}

function reply(found, ends) {
  if (found !== null) {
    const bytes = found.result instanceof Frame ? found.result.bytes : null;
    const asFrame = bytes !== null && framed && bytes.length <= MAX_FRAME; // a longer payload goes as base64
    if (bytes !== null) found.result = asFrame ? { $bytes: bytes.length } : bytes.toString("base64");
    process.stdout.write(JSON.stringify(found) + "\n");
    if (asFrame) {
      process.stdout.write(bytes);
      process.stdout.write("\n");
    }
  }
  if (ends !== null) {
    status = ends;
    process.exitCode = ends; // exits once stdout is flushed
    process.stdin.destroy();
  }
}

function malformedFrame(request, message) {
  // the stream is out of step: nothing after this can be read
  reply(refusal(Number.isInteger(request.seq) ? request.seq : null, `malformed frame: ${message}`), 2);
}

function pump() {
  while (status === null) {
    if (waiting !== null) {
      if (buffered <= waiting.size) return;
      const frame = take(waiting.size + 1);
      const request = waiting.request;
      waiting = null;
      const after = frame[frame.length - 1];
      if (after !== 10) {
        const shown = after.toString(16).padStart(2, "0");
        return malformedFrame(request, `a ${frame.length - 1}-byte frame is followed by byte 0x${shown}, not the newline that ends it`);
      }
      request.data = frame.subarray(0, frame.length - 1);
      reply(...answer(request));
      continue;
    }
    const end = newline();
    if (end < 0) return;
    const line = take(end + 1).toString("utf8");
    consume(line);
  }
}

function consume(line) {
  if (!line.trim()) return;
  let request;
  try {
    request = JSON.parse(line);
    if (typeof request !== "object" || request === null || Array.isArray(request)) throw new Error("not a JSON object");
  } catch (error) {
    return reply(refusal(null, `malformed request: ${error.message}`), null);
  }
  if ("trace" in flags) trace(request);
  let size;
  try {
    size = frameSize(request); // the frame first: it is on the stream whatever the request is
  } catch (error) {
    return malformedFrame(request, error.message);
  }
  if (size === null) return reply(...answer(request));
  waiting = { request, size };
}

process.stdin.on("data", (chunk) => {
  chunks.push(chunk);
  buffered += chunk.length;
  pump();
});
process.stdin.on("end", () => {
  if (status === null && waiting === null && buffered) consume(take(buffered).toString("utf8")); // a last line without its newline
  if (status === null && waiting !== null) {
    malformedFrame(waiting.request, `the input ended ${buffered} bytes into a ${waiting.size}-byte frame`);
  }
});
