/**
 * The `smhfs` command line: global options, shared error handling, and the command modules
 * (library commands here; `mount`/`unmount`/`stats`, `serve`/`token` and `blobs` from their owners).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { register as registerBlobs } from './commands/blobs.js';
import { register as registerLibrary } from './commands/library.js';
import { register as registerMount } from './commands/mount.js';
import { register as registerSafety } from './commands/safety.js';
import { register as registerServe } from './commands/serve.js';
import { USAGE_HINT, actionExitCode, defaultLibraryDir, reportError } from './context.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Settings every command needs, also those added with `addCommand` (commander copies them only for `.command()`). */
function configure(cmd: Command): void {
  cmd
    .exitOverride((err) => {
      throw err;
    })
    .showHelpAfterError(USAGE_HINT)
    .configureOutput({
      outputError: (str, write) => write(`smhfs: ${str.replace(/^error: /, '')}`),
    });
}

function configureTree(cmd: Command): void {
  configure(cmd);
  for (const sub of cmd.commands) configureTree(sub);
}

export function buildProgram(): Command {
  const program = new Command('smhfs');
  program
    .description('a FUSE filesystem whose symbolic links behave like a cloud media library\'s')
    .version(version(), '-V, --version')
    .addOption(
      new Option('--library <dir>', 'library folder (created by "smhfs init")')
        .env('SMHFS_LIBRARY')
        .default(defaultLibraryDir()),
    )
    .option('--space <name>', 'space of the library', '-')
    .option('--json', 'print machine-readable JSON')
    .option('--blobs <url>', 'blob store: a directory or s3://BUCKET[/PREFIX] (default: the one the library records, else <library>/blobs)')
    .option('--s3-endpoint <url>', 'S3 endpoint (MinIO, Ceph, BOS, COS…)')
    .option('--s3-region <region>', 'S3 region')
    .option('--s3-path-style', 'S3 path-style addressing')
    .helpCommand('help [command]', 'show help for a command');
  configure(program);
  registerLibrary(program);
  registerMount(program);
  registerServe(program);
  registerBlobs(program);
  registerSafety(program);
  configureTree(program);
  return program;
}

/** Parse and run; returns the process exit code (0 ok, 1 error, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      if (e.code === 'commander.help') return e.exitCode === 0 ? 0 : 2; // `smhfs` alone: help on stderr
      return 2; // commander printed the message
    }
    return reportError(program.args[0] ?? 'smhfs', e);
  }
  return actionExitCode();
}
