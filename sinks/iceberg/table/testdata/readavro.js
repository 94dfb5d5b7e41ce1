#!/usr/bin/env node
// Test-only: reads an Avro object container file with npm avsc, an Avro
// implementation independent of goavro, and prints it as JSON:
//   {"meta": {key: utf-8 text}, "schema": <writer schema as in the header>,
//    "records": [...]}
// Longs are decimal strings (BigInt: snapshot ids exceed 2^53), bytes are
// hex strings, unions with null are unwrapped (avsc's default).
//
//   node readavro.js FILE
'use strict';

const path = require('path');
const avro = require(path.join(__dirname, '..', '..', '..', '..', 'decoders', 'avrodec', 'testdata', 'js', 'node_modules', 'avsc'));

const LongType = avro.types.LongType.__with({
  fromBuffer: (buf) => buf.readBigInt64LE(),
  toBuffer: (n) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (x) => BigInt(x),
  toJSON: (n) => String(n),
  isValid: (n) => typeof n === 'bigint',
  compare: (a, b) => (a === b ? 0 : a < b ? -1 : 1),
});

// avsc applies a registry's custom long only where a schema says "long" as
// a string; logical types (date, timestamp-micros) are read as their
// underlying types, which is what the test compares.
function longsAsNames(schema) {
  if (Array.isArray(schema)) return schema.map(longsAsNames);
  if (schema && typeof schema === 'object') {
    if (schema.type === 'long' && !('name' in schema)) return 'long';
    const out = {};
    for (const [k, v] of Object.entries(schema)) out[k] = longsAsNames(v);
    return out;
  }
  return schema;
}

function plain(v) {
  if (typeof v === 'bigint') return String(v);
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

const out = { meta: {}, schema: null, records: [] };
avro.createFileDecoder(process.argv[2], {
  parseHook: (schema) => {
    out.schema = schema;
    return avro.Type.forSchema(longsAsNames(schema), { registry: { long: LongType } });
  },
})
  .on('metadata', (type, codec, header) => {
    for (const [k, v] of Object.entries(header.meta)) out.meta[k] = v.toString('utf8');
  })
  .on('data', (rec) => out.records.push(plain(rec)))
  .on('error', (err) => {
    process.stderr.write(String(err && err.stack || err) + '\n');
    process.exit(1);
  })
  .on('end', () => process.stdout.write(JSON.stringify(out)));
