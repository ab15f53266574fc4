#!/usr/bin/env node
// The driver protocol loop (docs/protocol.md in gsp-conformance): one JSON request per line on
// stdin, one JSON answer per line on stdout. It drives the service of storage.js; nothing here
// changes when you bring your own service.
//
//   node driver.js [--broken=untyped-read] [--trace]
"use strict";

const readline = require("readline");
const { createService } = require("./storage");
const { StorageError, modeNames, modeOf } = require("./taxonomy");

const VERSION = 1;
const OPERATIONS = ["write", "read", "stat", "delete", "list", "create_append", "write_append", "commit_append"];
const flags = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")));
let service = null;

class Malformed extends Error {}

function answer(line) {
  let request;
  try {
    request = JSON.parse(line);
    if (typeof request !== "object" || request === null || Array.isArray(request)) throw new Error("not a JSON object");
  } catch (error) {
    return [refusal(null, `malformed request: ${error.message}`), null];
  }
  const seq = Number.isInteger(request.seq) ? request.seq : null;
  if ("trace" in flags) trace(request);
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
  const data = op === "write" || op === "write_append" ? Buffer.from(request.data ?? "", "base64") : null;
  if (op === "write_append" || op === "commit_append") {
    const obj = request.object ? { ...request.object, mode: modeOf(request.object.mode ?? []), system: fromWire(request.object.system ?? {}) } : null;
    if (op === "commit_append") return service.commit_append(obj, pairs);
    const written = service.write_append(obj, data, pairs);
    return { written, object: obj && toWire(obj) };
  }
  const where = op === "list" ? request.prefix : request.path;
  if (typeof where !== "string") throw new Malformed(`${op} needs a string ${op === "list" ? "prefix" : "path"}`);
  if (op === "write") return toWire(service.write(where, data, pairs));
  if (op === "read") return service.read(where, pairs).toString("base64");
  if (op === "list") return service.list(where, pairs).map(toWire);
  if (op === "delete") return service.delete(where, pairs);
  return toWire(service[op](where, pairs));
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

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const [reply, status] = answer(line);
  if (reply !== null) process.stdout.write(JSON.stringify(reply) + "\n");
  if (status !== null) {
    lines.close();
    process.exitCode = status; // exits once stdout is flushed
    process.stdin.destroy();
  }
});
