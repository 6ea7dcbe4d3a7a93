/**
 * `node dist/bench/s3rver-main.js DIR BUCKET`: an s3rver on 127.0.0.1 (random port) in its own
 * process, so the server does not share a JS thread with what is measured. Prints
 * `endpoint http://127.0.0.1:PORT` when ready; SIGTERM stops it.
 */
import { startS3rver } from '../test/helpers/s3rver-harness.js';

const [dir, bucket] = process.argv.slice(2);
if (!dir || !bucket) throw new Error('usage: s3rver-main DIR BUCKET');
const s3 = await startS3rver(dir, [bucket]);
process.stdout.write(`endpoint ${s3.endpoint}\n`);
const stop = (): void => {
  void s3.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
