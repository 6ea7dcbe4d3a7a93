/**
 * The `smhfs` command line: global options, shared error handling, and the command modules
 * (library commands, `mount`/`unmount`/`stats`, `serve`/`token`, `blobs`, and the shell helpers
 * `completion`, `man`, `version`).
 *
 * Everything about presentation is generic, so a command module added later gets it for free:
 * errors in shell words with their code and exit 1, usage errors with exit 2 and a hint naming
 * the command's own help, help that lists the global options the command honours (src/cli/help.ts),
 * completion and the man page generated from the same tree.
 */
import { Command, CommanderError, Option } from 'commander';
import { register as registerBlobs } from './commands/blobs.js';
import { register as registerLibrary } from './commands/library.js';
import { register as registerMigrate } from './commands/migrate.js';
import { register as registerMount } from './commands/mount.js';
import { register as registerSafety } from './commands/safety.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerShell } from './commands/shell.js';
import { actionExitCode, parseLibraryOption, reportError, usageHint } from './context.js';
import { COMMAND_DOCS } from './docs.js';
import { HELP_CONFIG, applyDocs, globalGroup } from './help.js';
import { translateMountHelperArgs } from './mount-helper.js';
import { versionLine } from './version.js';

/** Settings every command needs, also those added with `addCommand` (commander copies them only for `.command()`). */
function configure(cmd: Command): void {
  cmd
    .exitOverride((err) => {
      throw err;
    })
    .showHelpAfterError(usageHint(commandPath(cmd)))
    .configureHelp(HELP_CONFIG)
    .configureOutput({
      outputError: (str, write) => write(`smhfs: ${str.replace(/^error: /, '')}`),
    });
}

/** `trash restore` for that command, '' for the program. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Headings for the top-level help; commands added by other modules land under "Other commands". */
const GROUPS: Array<[string, string[]]> = [
  ['Library commands (work on the library folder, mounted or not):', ['put', 'cat', 'ls', 'mkdir', 'ln', 'mv', 'cp', 'rm', 'stat', 'trash', 'tasks', 'blobs', 'init', 'fsck', 'gc', 'migrate']],
  ['Mount:', ['mount', 'unmount', 'stats']],
  ['HTTP:', ['serve', 'token']],
  ['Shell:', ['completion', 'man', 'version', 'help']],
];

function groupCommands(program: Command): void {
  for (const c of program.commands) {
    const g = GROUPS.find(([, names]) => names.includes(c.name()));
    c.helpGroup(g ? g[0] : 'Other commands:');
  }
  program.helpCommand('help [command]', 'show help for a command');
  (program as unknown as { _getHelpCommand(): Command | null })._getHelpCommand()?.helpGroup('Shell:');
}

function configureTree(cmd: Command): void {
  configure(cmd);
  for (const sub of cmd.commands) configureTree(sub);
}

export function buildProgram(): Command {
  const program = new Command('smhfs');
  program
    .description("a FUSE filesystem whose symbolic links behave like a cloud media library's")
    .addOption(
      globalGroup(
        new Option('--library <dir>', 'library folder, created by "smhfs init" (default: $SMHFS_LIBRARY, else $XDG_DATA_HOME/smhfs/default, else ~/.local/share/smhfs/default)').argParser(
          parseLibraryOption,
        ),
        'library',
      ),
    )
    .addOption(
      globalGroup(
        new Option(
          '--meta <url>',
          'metadata in PostgreSQL (postgres://USER@HOST:PORT/DB), for a library shared by several hosts; recorded by "smhfs init" (default: what the library folder records, else SQLite in the folder)',
        ),
        'library',
      ),
    )
    .addOption(globalGroup(new Option('--space <name>', 'space (tenant) of the library').default('-'), 'space'))
    .addOption(globalGroup(new Option('--json', 'print machine-readable JSON'), 'json'))
    .addOption(
      globalGroup(
        new Option('--blobs <url>', 'blob store: a directory or s3://BUCKET[/PREFIX] (default: the one the library records, else <library>/blobs)'),
        'blobs',
      ),
    )
    .addOption(globalGroup(new Option('--s3-endpoint <url>', 'S3 endpoint (MinIO, Ceph, BOS, COS…)'), 's3'))
    .addOption(globalGroup(new Option('--s3-region <region>', 'S3 region'), 's3'))
    .addOption(globalGroup(new Option('--s3-path-style', 'S3 path-style addressing'), 's3'))
    .option('-V, --version', 'print the version and the commit it was built from')
    .helpCommand('help [command]', 'show help for a command');
  for (const o of program.options) o.helpGroup('Global options (before or after the command; each command\'s help lists those it uses):');
  program.on('option:version', () => {
    process.stdout.write(`${versionLine()}\n`);
    throw new CommanderError(0, 'commander.version', '');
  });
  configure(program);
  registerLibrary(program);
  registerMount(program);
  registerServe(program);
  registerBlobs(program);
  registerShell(program);
  registerSafety(program);
  registerMigrate(program);
  groupCommands(program);
  applyDocs(program, COMMAND_DOCS);
  configureTree(program);
  return program;
}

/**
 * The command `smhfs ARGS…` names (`put`, `trash restore`), found in the command tree without
 * parsing or running anything — for errors raised before commander may look at the arguments
 * (D5's argv check). Options are skipped with their values, global ones anywhere; 'smhfs' when
 * no command is named.
 */
export function commandNameOf(args: readonly string[]): string {
  if (args[0] === '--mount-helper') return 'mount'; // mount(8): see main()
  let cmd: Command = buildProgram();
  const names: string[] = [];
  for (let i = 0; i < args.length && cmd.commands.length > 0; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      const flag = a.split('=')[0]!;
      let opt: Option | undefined;
      for (let c: Command | null = cmd; c && !opt; c = c.parent) opt = c.options.find((o) => o.long === flag || o.short === flag);
      if (opt && (opt.required || opt.optional) && !a.includes('=')) i++; // its value
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) break;
    names.push(sub.name());
    cmd = sub;
  }
  return names.join(' ') || 'smhfs';
}

/** Parse and run; returns the process exit code (0 ok, 1 error, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  let args = argv;
  const program = buildProgram();
  // mount(8) runs /sbin/mount.smhfs (and mount.fuse.smhfs) as `mount.smhfs LIBRARY DIR -o opts`.
  if (argv[2] === '--mount-helper') {
    try {
      args = [...argv.slice(0, 2), ...translateMountHelperArgs(program, argv.slice(3))];
    } catch (e) {
      return reportError('mount', e);
    }
    if (args.length === 2) return 0; // `mount -f` (fake): nothing to do
  }
  try {
    await program.parseAsync(args);
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
