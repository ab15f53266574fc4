// The service: objects in memory. To certify your own service, replace this file with one whose
// createService(options) returns your service (same methods), its failures thrown as StorageError.
"use strict";

const crypto = require("crypto");
const { StorageError, Mode, modeNames } = require("./taxonomy");

const MiB = 1024 * 1024;
const SSE_C_PAIRS = ["server_side_encryption_customer_algorithm", "server_side_encryption_customer_key"];
const SSE_WRITE_PAIRS = [
  "server_side_encryption",
  "server_side_encryption_aws_kms_key_id",
  "server_side_encryption_context",
  "server_side_encryption_bucket_key_enabled",
  ...SSE_C_PAIRS,
];

function createService(options, broken) {
  let limit = 8 * MiB;
  for (const [name, value] of Object.entries(options)) {
    if (name !== "append_size_maximum") throw new Error(`unknown option ${JSON.stringify(name)} (known: append_size_maximum)`);
    limit = Number(value);
    if (!Number.isInteger(limit) || limit <= 0) throw new Error(`option append_size_maximum must be a positive integer, not ${value}`);
  }
  return new Memory(limit, broken);
}

class Memory {
  constructor(limit, broken) {
    this.name = "js-memory";
    this.broken = broken;
    this.objects = new Map();
    this.capabilities = {
      operations: ["write", "read", "stat", "delete", "list", "create_append", "write_append", "commit_append"],
      pairs: { write: ["content_type", ...SSE_WRITE_PAIRS], read: ["offset", "size", ...SSE_C_PAIRS], stat: SSE_C_PAIRS },
      limits: { append_size_maximum: limit },
      features: [],
    };
  }

  write(path, data, pairs) {
    this.checkPairs("write", pairs, path);
    const key = customerKey(pairs, "write", path);
    const system = managedEncryption(pairs, "write", path);
    const entry = { data: Buffer.from(data), mode: Mode.READ, contentType: pairs.content_type ?? null, system, keyMD5: null };
    if (key !== null) {
      entry.keyMD5 = keyMD5(key);
      system.server_side_encryption_customer_algorithm = "AES256";
      system.server_side_encryption_customer_key_md5 = entry.keyMD5;
    }
    this.objects.set(path, entry);
    return object(path, entry);
  }

  read(path, pairs) {
    this.checkPairs("read", pairs, path);
    const entry = this.unlocked(path, "read", pairs);
    if (this.broken === "untyped-read" && pairs.offset !== undefined) {
      throw new TypeError(`offset ${pairs.offset} read before the key was checked`); // a raw exception, on purpose
    }
    const offset = Number(pairs.offset ?? 0);
    const size = pairs.size === undefined ? null : Number(pairs.size);
    if (offset < 0 || (size !== null && size < 0)) {
      throw new StorageError("RestrictionDissatisfied", "offset and size must not be negative", "read", path);
    }
    const end = size === null ? entry.data.length : offset + size;
    return Buffer.from(entry.data.subarray(Math.min(offset, entry.data.length), Math.min(end, entry.data.length)));
  }

  stat(path, pairs) {
    this.checkPairs("stat", pairs, path);
    return object(path, this.unlocked(path, "stat", pairs));
  }

  delete(path, pairs) {
    this.checkPairs("delete", pairs, path);
    this.objects.delete(path);
  }

  list(prefix, pairs) {
    this.checkPairs("list", pairs, prefix);
    return [...this.objects.keys()]
      .filter((path) => path.startsWith(prefix))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))) // code point order, as Python and Go sort
      .map((path) => object(path, this.objects.get(path)));
  }

  create_append(path, pairs) {
    this.checkPairs("create_append", pairs, path);
    const entry = { data: Buffer.alloc(0), mode: Mode.READ | Mode.APPEND, contentType: null, system: {}, keyMD5: null };
    this.objects.set(path, entry);
    return { ...object(path, entry), append_offset: 0 };
  }

  write_append(obj, data, pairs) {
    this.checkPairs("write_append", pairs, null);
    checkAppend("write_append", obj);
    const limit = this.capabilities.limits.append_size_maximum;
    if (data.length > limit) {
      throw new StorageError("RestrictionDissatisfied", `size limit exceeded: ${data.length} > append_size_maximum ${limit}`, "write_append", null);
    }
    let entry = this.objects.get(obj.path);
    if (entry === undefined) {
      entry = { data: Buffer.alloc(0), mode: Mode.READ | Mode.APPEND, contentType: null, system: {}, keyMD5: null };
      this.objects.set(obj.path, entry);
    }
    entry.data = Buffer.concat([entry.data, data]);
    obj.append_offset = obj.size = entry.data.length;
    return data.length;
  }

  commit_append(obj, pairs) {
    this.checkPairs("commit_append", pairs, null);
    checkAppend("commit_append", obj);
  }

  // Refuse every pair the operation does not declare: never ignore one silently.
  checkPairs(op, pairs, path) {
    const accepted = this.capabilities.pairs[op] ?? [];
    for (const name of Object.keys(pairs)) {
      if (!accepted.includes(name)) throw new StorageError("PairUnsupported", `pair unsupported: ${name}`, op, path, { pair: name });
    }
  }

  // The entry at path, after checking the SSE-C key it was written with.
  unlocked(path, op, pairs) {
    const key = customerKey(pairs, op, path);
    const entry = this.objects.get(path);
    if (entry === undefined) throw new StorageError("ObjectNotExist", "no such object", op, path);
    if (entry.keyMD5 !== null && key === null) throw new StorageError("PermissionDenied", "object needs its customer key", op, path);
    if (entry.keyMD5 !== null && keyMD5(key) !== entry.keyMD5) throw new StorageError("PermissionDenied", "wrong customer key", op, path);
    if (entry.keyMD5 === null && key !== null) {
      throw new StorageError("RestrictionDissatisfied", "object is not encrypted with a customer key", op, path);
    }
    return entry;
  }
}

function checkAppend(op, obj) {
  const mode = obj ? obj.mode : 0;
  if (!(mode & Mode.APPEND)) {
    const actual = modeNames(mode);
    throw new StorageError("ObjectModeInvalid", `object mode invalid, expected append, actual ${actual.join("|") || "none"}`, op, null, {
      expected: ["append"],
      actual,
    });
  }
}

// The validated SSE-C key of a call, or null; refuses what S3 would refuse.
function customerKey(pairs, op, path) {
  const algorithm = pairs.server_side_encryption_customer_algorithm;
  const key = pairs.server_side_encryption_customer_key;
  if (algorithm === undefined && key === undefined) return null;
  if (algorithm === undefined) {
    throw new StorageError("PairRequired", "pair required: server_side_encryption_customer_algorithm", op, path, {
      keys: ["server_side_encryption_customer_algorithm"],
    });
  }
  if (algorithm !== "AES256") throw new StorageError("RestrictionDissatisfied", `customer algorithm must be AES256, not ${algorithm}`, op, path);
  if (!Buffer.isBuffer(key) || key.length !== 32) {
    const length = Buffer.isBuffer(key) ? key.length : 0;
    throw new StorageError("RestrictionDissatisfied", `invalid server-side encryption customer key: ${length} bytes, need 32`, op, path);
  }
  return key;
}

// Validated SSE-S3 / SSE-KMS pairs of a write, as the system metadata they produce.
function managedEncryption(pairs, op, path) {
  const algorithm = pairs.server_side_encryption;
  const kmsOnly = Object.keys(pairs).filter((k) => k.startsWith("server_side_encryption_") && !SSE_C_PAIRS.includes(k));
  if (algorithm === undefined) {
    if (kmsOnly.length) throw new StorageError("PairRequired", "pair required: server_side_encryption", op, path, { keys: ["server_side_encryption"] });
    return {};
  }
  if (algorithm !== "AES256" && algorithm !== "aws:kms") {
    throw new StorageError("RestrictionDissatisfied", "server_side_encryption must be one of ['AES256', 'aws:kms']", op, path);
  }
  if ("server_side_encryption_customer_algorithm" in pairs) {
    throw new StorageError("RestrictionDissatisfied", "SSE-C cannot be combined with server_side_encryption", op, path);
  }
  if (algorithm === "AES256" && kmsOnly.length) {
    throw new StorageError("RestrictionDissatisfied", `${kmsOnly[0]} needs server_side_encryption=aws:kms`, op, path);
  }
  const system = { server_side_encryption: algorithm };
  for (const name of kmsOnly) system[name] = pairs[name];
  return system;
}

function object(path, entry) {
  return { path, mode: entry.mode, size: entry.data.length, content_type: entry.contentType, system: { ...entry.system } };
}

function keyMD5(key) {
  return crypto.createHash("md5").update(key).digest("base64");
}

module.exports = { createService };
