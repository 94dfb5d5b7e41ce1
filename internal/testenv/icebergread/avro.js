// Reads Avro object container files (Iceberg manifest lists and manifests)
// with avsc, an Avro implementation independent of the goavro the writer
// uses, and prints them as JSON on stdout:
//
//   node avro.js FILE...
//   [{"path": FILE, "meta": {key: text, ...}, "records": [...]}, ...]
//
// Longs are printed as exact JSON integers (snapshot ids use all 63 bits,
// beyond a JS number's 53); bytes and fixed values as base64 text; unions
// unwrapped (null or the value); logical types left as their underlying
// value (a date as days, a timestamp as microseconds). Codecs: null and
// deflate (what Iceberg writers use by default).
//
// avsc is the copy pinned for decoders/avrodec's tests (make deps).
'use strict';
const path = require('path');
const avro = require(path.join(__dirname, '..', '..', '..', 'decoders', 'avrodec', 'testdata', 'js', 'node_modules', 'avsc'));

// A long as a BigInt: avsc's own long refuses values beyond 2^53.
const longType = avro.types.LongType.__with({
  fromBuffer: (buf) => buf.readBigInt64LE(),
  toBuffer: (n) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (v) => BigInt(v),
  toJSON: (n) => n.toString(),
  isValid: (n) => typeof n === 'bigint',
  compare: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
});

function typeHook(schema) {
  if (schema === 'long' || (schema && typeof schema === 'object' && schema.type === 'long')) {
    return longType;
  }
  return undefined;
}

// The sentinel marks a BigInt in JSON.stringify's output, where it is then
// replaced by the bare digits.
const BIG = '\u0000bigint:';

function plain(v) {
  if (typeof v === 'bigint') {
    return BIG + v.toString();
  }
  if (Buffer.isBuffer(v)) {
    return v.toString('base64');
  }
  if (Array.isArray(v)) {
    return v.map(plain);
  }
  if (v && typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v)) {
      out[k] = plain(v[k]);
    }
    return out;
  }
  return v;
}

function read(file) {
  return new Promise((resolve, reject) => {
    const out = { path: file, meta: {}, records: [] };
    avro.createFileDecoder(file, {
      parseHook: (schema) => avro.Type.forSchema(schema, { typeHook, wrapUnions: 'never' }),
    })
      .on('metadata', (type, codec, header) => {
        for (const k of Object.keys(header.meta)) {
          out.meta[k] = header.meta[k].toString('utf8');
        }
      })
      .on('data', (rec) => out.records.push(plain(rec)))
      .on('error', (err) => reject(new Error(file + ': ' + err.message)))
      .on('end', () => resolve(out));
  });
}

async function main() {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    throw new Error('usage: node avro.js FILE...');
  }
  const all = [];
  for (const f of files) {
    all.push(await read(f));
  }
  const json = JSON.stringify(all).replace(/"\\u0000bigint:(-?\d+)"/g, '$1');
  process.stdout.write(json);
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + '\n');
  process.exit(1);
});
