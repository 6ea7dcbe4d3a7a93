/**
 * Start an `s3rver` (an S3 emulator from npm, a devDependency) on 127.0.0.1 with a random port,
 * for tests and benchmarks. s3rver ships no types, so it is loaded through `createRequire` and
 * described by the few members used here; s3rver itself is loaded only by `startS3rver`.
 */
import { createRequire } from 'node:module';
import { S3BlobStore, type S3BlobStoreOptions } from '../../src/blob/s3-store.js';

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (opts: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
  resetOnClose?: boolean;
}) => S3rverInstance;

/** The credentials s3rver accepts out of the box. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface RunningS3rver {
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/** Serve `directory` as S3 on 127.0.0.1:<random port>, with `buckets` created. */
export async function startS3rver(directory: string, buckets: string[]): Promise<RunningS3rver> {
  const require = createRequire(import.meta.url);
  const S3rver = require('s3rver') as S3rverCtor;
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  return { endpoint: `http://127.0.0.1:${port}`, port, close: () => server.close() };
}

/** An S3BlobStore on a running s3rver (path-style, its default credentials), for tests and benches. */
export function s3rverStore(
  s3: Pick<RunningS3rver, 'endpoint'>,
  bucket: string,
  prefix: string,
  extra: Partial<S3BlobStoreOptions> = {},
): S3BlobStore {
  return new S3BlobStore({ bucket, prefix, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS, ...extra });
}
