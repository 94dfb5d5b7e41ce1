#!/usr/bin/env node
// Test-only: writes Avro payloads with avsc, an Avro implementation independent
// of goavro, so that decoders/avrodec is checked against bytes it did not write.
//
//   node generate.js [OUT_DIR]     (default: ../avsc)
//
// For each payload it writes NAME.bin (raw binary), NAME.soe (single-object
// encoding: C3 01, the little-endian CRC-64-AVRO fingerprint of the schema's
// parsing canonical form, the record) and NAME.confluent (Confluent wire
// format: 0, the big-endian schema id, the record), plus fingerprints.json.
// The fingerprint is computed here, from the Avro spec's algorithm, not taken
// from goavro. The output is deterministic: TestAvscFixturesReproducible
// re-runs this script and compares it with the committed files.
'use strict';

const fs = require('fs');
const path = require('path');
const avro = require('avsc');

const outDir = path.resolve(process.argv[2] || path.join(__dirname, '..', 'avsc'));
const schemaDir = path.join(__dirname, '..', 'schemas');

// Confluent schema ids used by the registry tests' server (registry_test.go).
const ids = { order_v1: 1, order_v2: 2, all_types: 3 };

// Avro longs as BigInt, so that values beyond 2^53 survive.
const LongType = avro.types.LongType.__with({
  fromBuffer: (buf) => buf.readBigInt64LE(),
  toBuffer: (n) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (x) => BigInt(x),
  toJSON: (n) => Number(n),
  isValid: (n) => typeof n === 'bigint',
  compare: (a, b) => (a === b ? 0 : a < b ? -1 : 1),
});

// avsc applies a registry's custom long only where a schema says "long" as a
// string: spell {"type": "long", ...} that way for writing (the encoding is
// the same, logical types being written as their underlying types anyway).
function longsAsNames(schema) {
  if (Array.isArray(schema)) return schema.map(longsAsNames);
  if (schema && typeof schema === 'object') {
    if (schema.type === 'long' && !('name' in schema)) return 'long'; // a type, not a field
    const out = {};
    for (const [k, v] of Object.entries(schema)) out[k] = longsAsNames(v);
    return out;
  }
  return schema;
}

// loadTypes returns the type to write with and the parsing canonical form of
// the schema as written in the .avsc file.
function loadTypes(name) {
  const schema = JSON.parse(fs.readFileSync(path.join(schemaDir, name + '.avsc'), 'utf8'));
  const canonical = JSON.stringify(avro.Type.forSchema(schema, { wrapUnions: true }).schema());
  // No logicalTypes option: avsc writes logical types as their underlying
  // types, so every value below is spelled out in its Avro encoding.
  const type = avro.Type.forSchema(longsAsNames(schema), { registry: { long: LongType }, wrapUnions: true });
  return { type, canonical };
}

// CRC-64-AVRO (Rabin) fingerprint, as the Avro specification gives it.
const EMPTY = 0xc15d213aa4d7a795n;
const TABLE = [];
for (let i = 0; i < 256; i++) {
  let fp = BigInt(i);
  for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n));
  TABLE.push(fp);
}
function rabin(text) {
  let fp = EMPTY;
  for (const b of Buffer.from(text, 'utf8')) fp = (fp >> 8n) ^ TABLE[Number((fp ^ BigInt(b)) & 0xffn)];
  return fp;
}

// Big-endian two's complement of an unscaled decimal: minimal, or sign-extended to size.
function decimal(unscaled, size) {
  let n = BigInt(unscaled);
  const bytes = [];
  for (;;) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
    const top = bytes[0] & 0x80;
    if ((n === 0n && !top) || (n === -1n && top)) break;
  }
  const neg = BigInt(unscaled) < 0n;
  while (size && bytes.length < size) bytes.unshift(neg ? 0xff : 0);
  return Buffer.from(bytes);
}

const address = { street: '1 Main St', zip: { string: '75001' } };

const payloads = {
  all_types: {
    schema: 'all_types',
    value: {
      id: 1234567890123456789n,
      small: -42,
      ratio: 0.5,
      amount: 129.95,
      active: true,
      name: 'Zoë ☃',
      payload: Buffer.from([0, 1, 2, 0xfe, 0xff]),
      hash: Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'),
      status: 'PAID',
      note: { string: 'gift wrap' },
      ts_millis: 1714566896789n, // 2024-05-01T12:34:56.789Z
      ts_micros: 1714566896789123n, // 2024-05-01T12:34:56.789123Z
      day: 19844, // 2024-05-01
      price: decimal(1234567), // 12345.67
      total: decimal(-987654321, 8), // -98765.4321
      uid: '123e4567-e89b-12d3-a456-426614174000',
      tags: ['gift', 'express'],
      counts: { a: 1n, b: -2n },
      address,
      previous: { 'com.example.Address': { street: '9 Old Rd', zip: null } },
      lines: [
        { sku: 'A-1', qty: 2, discount: { bytes: decimal(150) } }, // 1.50
        { sku: 'B-2', qty: 1, discount: null },
      ],
      opt_ts: { long: 1714566896789123n },
      choice: { string: 'x' },
      opt_tags: { array: [{ string: 'a' }, null] },
      attrs: { w: { double: 1.5 }, v: null },
      t_millis: 45296789, // 12:34:56.789
      t_micros: 45296789012n, // 12:34:56.789012
      local_ts: 1714566896789n,
    },
  },
  all_types_nulls: {
    schema: 'all_types',
    value: {
      id: -1n,
      small: 2147483647,
      ratio: -0,
      amount: -1e-300,
      active: false,
      name: '',
      payload: Buffer.alloc(0),
      hash: Buffer.alloc(16, 0xff),
      status: 'NEW',
      note: null,
      ts_millis: -1n, // 1969-12-31T23:59:59.999Z
      ts_micros: 0n,
      day: -1, // 1969-12-31
      price: decimal(0),
      total: decimal(1, 8), // 0.0001
      uid: '00000000-0000-0000-0000-000000000000',
      tags: [],
      counts: {},
      address: { street: 'x', zip: null },
      previous: null,
      lines: [],
      opt_ts: null,
      choice: { 'com.example.Address': address },
      opt_tags: null,
      attrs: {},
      t_millis: 0,
      t_micros: 86399999999n,
      local_ts: 0n,
    },
  },
  order_v1: {
    schema: 'order_v1',
    value: {
      order_id: 1234567890123n,
      user_id: 42n,
      amount: 129.95,
      currency: 'EUR',
      ts: 1714566896789n,
      note: null,
      status: 'PAID',
      qty: 3,
      price: decimal(4332), // 43.32
      tags: ['gift', 'express'],
    },
  },
  order_v2: {
    schema: 'order_v2',
    value: {
      ts: 1714566896789n,
      order_id: 1234567890124n,
      channel: 'app',
      user_id: 43n,
      status: 'CANCELLED',
      amount: 10.5,
      currency: 'USD',
      qty: 5000000000n,
      price: decimal(-100), // -1.00
      tags: [],
      coupon: { string: 'SPRING' },
    },
  },
};

fs.mkdirSync(outDir, { recursive: true });
const fingerprints = {};
for (const [name, p] of Object.entries(payloads)) {
  const { type, canonical } = loadTypes(p.schema);
  const fp = rabin(canonical);
  fingerprints[p.schema] = fp.toString(16).padStart(16, '0');
  const body = type.toBuffer(p.value);
  const soe = Buffer.alloc(10);
  soe[0] = 0xc3;
  soe[1] = 0x01;
  soe.writeBigUInt64LE(fp, 2);
  const confluent = Buffer.alloc(5);
  confluent.writeUInt32BE(ids[p.schema], 1);
  fs.writeFileSync(path.join(outDir, name + '.bin'), body);
  fs.writeFileSync(path.join(outDir, name + '.soe'), Buffer.concat([soe, body]));
  fs.writeFileSync(path.join(outDir, name + '.confluent'), Buffer.concat([confluent, body]));
}
const sorted = Object.fromEntries(Object.entries(fingerprints).sort());
fs.writeFileSync(path.join(outDir, 'fingerprints.json'), JSON.stringify({ ids, fingerprints: sorted }, null, 2) + '\n');
