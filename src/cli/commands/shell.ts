/**
 * Commands about the command line itself: `smhfs completion bash|zsh|fish`, `smhfs man` (the
 * smhfs(1) page `make install` puts in place) and `smhfs version`. All three read the commander
 * tree (src/cli/help.ts), so they always describe the commands this build has.
 */
import { type Command, Argument } from 'commander';
import { globalOptions, printJson, printLine, runAction } from '../context.js';
import { bashCompletion, fishCompletion, manPage, zshCompletion } from '../help.js';
import { versionInfo, versionLine } from '../version.js';

const SHELLS = ['bash', 'zsh', 'fish'];

/** The man page's sections beyond the commands (plain text, one paragraph each). */
const MAN_SECTIONS: Array<[string, string[]]> = [
  [
    'Description',
    [
      'smhfs is a FUSE file system whose symbolic links behave like those of a cloud media library: a link made with ln -s to a file of the mount is bound to that file, follows it through renames and moves, shows its new content when it is overwritten, and goes to the recycle bin and comes back with it. File contents live in a blob store (a local folder, or any S3-compatible store) and are read through a page cache.',
      'Most commands work directly on a library folder, mounted or not; smhfs mount serves it through FUSE and smhfs serve over HTTP (SMH and BOS dialects).',
    ],
  ],
  [
    'Mounting at boot',
    [
      'make install puts mount.smhfs and mount.fuse.smhfs in /sbin, so mount(8) and fstab(5) mount a library: mount -t fuse.smhfs /srv/smhfs/library /srv/media -o allow_other. An fstab line: /srv/smhfs/library /srv/media fuse.smhfs allow_other,nofail,_netdev,log_file=/var/log/smhfs-media.log 0 0. Options named like smhfs mount options (cache_size=1G, log_file=…, metrics=127.0.0.1:9567, space=…, read_only or ro) are those options; the others are FUSE mount options.',
    ],
  ],
  [
    'Exit status',
    [
      '0: done. 1: an error, one line on standard error: smhfs: COMMAND: SUBJECT: what happened (CODE), where CODE is the SMH error code of the rule (FileNotFound, SameNameDirectoryOrFileExists…) or, for problems with the library folder or the blob store, the domain code (NotALibrary, LibraryReadOnly, BlobUnavailable…). 2: a usage error (unknown command or option, bad value), with a hint naming the command\'s help.',
    ],
  ],
  [
    'Environment',
    [
      'SMHFS_LIBRARY: the default library folder. XDG_DATA_HOME: the default library is $XDG_DATA_HOME/smhfs/default (else ~/.local/share/smhfs/default). SMHFS_BOS_ACCESS_KEY, SMHFS_BOS_SECRET_KEY: the BOS key pair of smhfs serve. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_REGION: credentials and region of an S3 blob store. SMHFS_DEBUG=1: stack traces with errors.',
    ],
  ],
  ['See also', ['mount(8), fstab(5), fusermount(1), umount(8), systemd.mount(5)']],
];

export function register(program: Command): void {
  const completion = program
    .command('completion')
    .description('print a shell completion script')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS));
  completion.action(
    runAction('completion', (shell: string) => {
      const root = program;
      process.stdout.write(shell === 'bash' ? bashCompletion(root) : shell === 'zsh' ? zshCompletion(root) : fishCompletion(root));
      return 0;
    }),
  );

  const man = program.command('man').description('print the smhfs(1) manual page (roff; make install puts it in place)');
  man.action(
    runAction('man', () => {
      const v = versionInfo();
      const date = new Date().toISOString().slice(0, 10);
      process.stdout.write(manPage(program, { version: `${v.version} (${v.commit})`, date, sections: MAN_SECTIONS }));
      return 0;
    }),
  );

  const version = program.command('version').description('print the version, the commit it was built from, and the Node.js version');
  version.action(
    runAction('version', (_o: unknown, cmd: Command) => {
      const v = versionInfo();
      if (globalOptions(cmd).json) printJson(v);
      else printLine(versionLine(v));
      return 0;
    }),
  );
}
