/**
 * `node dist/bench/raw-s3.js ENDPOINT BUCKET KEY SIZE CONCURRENCY RANGE_MIB`: read one object
 * straight from S3 with the AWS SDK — CONCURRENCY workers, each taking the next RANGE_MIB ranged
 * GET until the object is read — counting bytes and nothing else. Prints JSON {MBps, seconds}.
 * The baseline smhfs-on-S3 is compared with (same client settings as the S3 blob store).
 *
 * `… SIZE random SECONDS UNIT_KIB`: one reader making ranged GETs of UNIT_KIB at random aligned
 * offsets, one at a time, for SECONDS; prints {iops}: what the server answers to a random reader
 * that fetches 64 KiB units as smhfs's random streams do (the S3 random row's ceiling).
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
const [endpoint, bucket, key, sizeS, concS, rangeS] = process.argv.slice(2);
const size = Number(sizeS);
const range = Number(rangeS) * 1024 * 1024;
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: process.env['AWS_ACCESS_KEY_ID'] ?? 'S3RVER', secretAccessKey: process.env['AWS_SECRET_ACCESS_KEY'] ?? 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
if (concS === 'random') {
  const seconds = Number(rangeS);
  const unit = Number(process.argv[8] ?? 64) * 1024;
  const units = Math.max(1, Math.floor(size / unit));
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const off = Math.floor(Math.random() * units) * unit;
    const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${off}-${Math.min(size, off + unit) - 1}` }));
    for await (const c of r.Body as Readable) void c;
    n++;
  }
  process.stdout.write(`${JSON.stringify({ iops: n / ((performance.now() - t0) / 1000) })}\n`);
  client.destroy();
  process.exit(0);
}
let next = 0;
let bytes = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: Number(concS) }, async () => {
    while (next < size) {
      const off = next;
      next += range;
      const end = Math.min(size, off + range) - 1;
      const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${off}-${end}` }));
      for await (const c of r.Body as Readable) bytes += (c as Buffer).length;
    }
  }),
);
const seconds = (performance.now() - t0) / 1000;
if (bytes !== size) throw new Error(`read ${bytes} of ${size} bytes`);
process.stdout.write(`${JSON.stringify({ MBps: size / 1048576 / seconds, seconds })}\n`);
client.destroy();
