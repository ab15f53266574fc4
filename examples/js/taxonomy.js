// The error taxonomy and the object modes, as the harness names them. Nothing here knows the protocol.
"use strict";

// A failure of the taxonomy: `cls` is a harness error class name (ObjectNotExist, PairUnsupported,
// ...). Anything else a service throws reaches the harness as an untyped error, which fails the specs.
class StorageError extends Error {
  constructor(cls, message, op, path, attributes = {}, retryAfter = null) {
    super(message);
    this.cls = cls;
    this.op = op;
    this.path = path; // null for operations on an object (write_append, commit_append)
    this.attributes = attributes;
    this.retryAfter = retryAfter;
  }
}

// Object mode bits with the GSP-25 values.
const Mode = { DIR: 1, READ: 2, LINK: 4, PART: 8, BLOCK: 16, PAGE: 32, APPEND: 64 };
const NAMES = ["dir", "read", "link", "part", "block", "page", "append"];

function modeNames(mode) {
  return NAMES.filter((_, bit) => mode & (1 << bit));
}

function modeOf(names) {
  let mode = 0;
  for (const name of names) {
    const bit = NAMES.indexOf(name);
    if (bit < 0) throw new RangeError(`unknown mode name ${JSON.stringify(name)}`);
    mode |= 1 << bit;
  }
  return mode;
}

module.exports = { StorageError, Mode, modeNames, modeOf };
