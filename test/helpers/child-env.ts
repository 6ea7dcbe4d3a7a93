/**
 * Loaded into every test process (package.json tap "node-arg"): the processes a test starts (the
 * CLI, mount servers, crash children) run without the test runner's per-process hook.
 *
 * Why: tap puts `--import @tapjs/processinfo` in NODE_OPTIONS so that it can track every process
 * for coverage, and re-adds it to every spawn's environment (through process-on-spawn). Coverage
 * is off here, and that hook routes every module load of every child through a loader thread: a
 * CLI start took 1.0 s of CPU instead of 0.4 s, and the suite starts hundreds of node processes.
 * Children are what the tests observe, so they run as users run them. Our spawn listener is
 * added after tap's, so it sees (and cleans) the environment tap's listener built.
 */
import { createRequire } from 'node:module';

// The runner quotes each option: "--import=file:///…/@tapjs/processinfo/dist/esm/import.mjs".
const hook = /(^|\s)"?--import=[^\s"]*@tapjs\/processinfo[^\s"]*"?/g;

function withoutHook(env: Record<string, string | undefined>): void {
  const options = env['NODE_OPTIONS'];
  if (options === undefined) return;
  const stripped = options.replace(hook, ' ').trim();
  if (stripped === '') delete env['NODE_OPTIONS'];
  else env['NODE_OPTIONS'] = stripped;
}

interface SpawnOptions {
  env: Record<string, string | undefined>;
}
const processOnSpawn = createRequire(import.meta.url)('process-on-spawn') as { addListener(fn: (opts: SpawnOptions) => void): void };
withoutHook(process.env);
processOnSpawn.addListener((opts) => withoutHook(opts.env));

// The AWS SDK warns once per process that its releases after January 2027 need Node 22; the CLI
// turns that off for users (src/cli/blobs.ts), and test processes that build S3 stores themselves
// do the same, so the log shows only what the tests say.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
