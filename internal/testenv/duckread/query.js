// Runs one SQL query in an in-memory DuckDB and prints its rows as a JSON
// array of objects on stdout (DuckDB's own JSON form of each value: big
// integers and decimals as strings, timestamps as ISO text). The lake's
// tests use it as a reader independent of the writer: read_parquet and
// read_json over the objects' files.
//
//   node query.js "SELECT count(*) AS n FROM read_parquet('/dir/**/*.parquet')"
'use strict';
const { DuckDBInstance } = require('@duckdb/node-api');

async function main() {
  const sql = process.argv[2];
  if (!sql) {
    throw new Error('usage: node query.js SQL');
  }
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const reader = await conn.runAndReadAll(sql);
  process.stdout.write(JSON.stringify(reader.getRowObjectsJson()));
  conn.closeSync();
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
