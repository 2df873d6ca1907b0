// Compare MongoDB-wire backends (FerretDB on SQLite vs on PostgreSQL) under the write pattern of
// a job submit: insert a job, then one conditional findOneAndUpdate (PENDING -> QUEUED), at
// concurrency 1 and 16, and a first-page list query with ~1000 stored jobs.
// Usage: node bench/db-backends.mjs mongodb://127.0.0.1:27027/ [label] [n]
import { createRequire } from "node:module";

const require = createRequire(new URL("../packages/db/package.json", import.meta.url));
const { MongoClient, ObjectId } = require("mongoose").mongo;

const [url = "mongodb://127.0.0.1:27027/", label = url, nArg = "400"] = process.argv.slice(2);
const N = Number(nArg);
const client = new MongoClient(url, { retryWrites: false });
await client.connect();
const db = client.db(`bench_backend_${process.pid}`);
const jobs = db.collection("jobs");
await jobs.createIndex({ team: 1, idempotencyKey: 1 }, { unique: true });
await jobs.createIndex({ team: 1, status: 1, createdAt: -1, _id: -1 });

const q = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
async function submit(i) {
  const t0 = performance.now();
  const _id = new ObjectId();
  await jobs.insertOne({
    _id,
    team: "t1",
    status: "PENDING",
    idempotencyKey: `k-${i}-${_id}`,
    project: "p",
    createdAt: new Date(),
    spec: { name: `j${i}`, command: "x".repeat(200) },
  });
  await jobs.findOneAndUpdate({ _id, status: "PENDING" }, { $set: { status: "QUEUED" } }, { returnDocument: "after" });
  return performance.now() - t0;
}
async function run(conc) {
  const lat = [];
  let errors = 0;
  const sample = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < N) {
        const i = next++;
        try {
          lat.push(await submit(`${conc}-${i}`));
        } catch (e) {
          errors++;
          if (sample.length < 3) sample.push(String(e.message).slice(0, 120));
        }
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  return {
    concurrency: conc,
    n: N,
    perSecond: +(lat.length / s).toFixed(1),
    p50ms: +q(lat, 0.5).toFixed(1),
    p99ms: +q(lat, 0.99).toFixed(1),
    errors,
    sample,
  };
}
const out = { label, seq: await run(1), c16: await run(16) };
const count = await jobs.countDocuments({});
const lat = [];
for (let i = 0; i < 50; i++) {
  const t0 = performance.now();
  await jobs.find({ team: "t1", status: "QUEUED" }).sort({ createdAt: -1, _id: -1 }).limit(1).toArray();
  lat.push(performance.now() - t0);
}
out.listFirstPage = { storedJobs: count, p50ms: +q(lat, 0.5).toFixed(2), p99ms: +q(lat, 0.99).toFixed(2) };
await db.dropDatabase();
await client.close();
console.log(JSON.stringify(out));
