/**
 * What each command's help, completion and man page add to commander's own description: the
 * global options the command honours (its help lists exactly those) and a few examples. One
 * table keyed by command path, applied to the tree once every module has registered its commands
 * (src/cli/program.ts), so a command module needs no help code of its own. A command missing here
 * still gets everything else; its help lists every global option.
 */
import type { CommandDoc, GlobalGroup } from './help.js';

const LIB: GlobalGroup[] = ['library', 'space', 'json', 'blobs', 's3'];

export const COMMAND_DOCS: Record<string, CommandDoc> = {
  put: {
    uses: LIB,
    examples: [
      ['put ./cat.jpg photos/cat.jpg', 'store a file (progress on a terminal)'],
      ['put -p ./holiday.mp4 videos/2025/holiday.mp4 --conflict overwrite', 'create videos/2025, replace what is there'],
      ['put - notes/today.txt < today.txt', 'from standard input'],
    ],
  },
  cat: {
    uses: ['library', 'space', 'blobs', 's3'],
    examples: [
      ['cat links/cat > cat.jpg', 'read through a bound link'],
      ['cat videos/holiday.mp4 | sha256sum', 'works on a library this user may only read'],
    ],
  },
  ls: {
    uses: LIB,
    examples: [
      ['ls -l photos', 'mode, owner, group, size, time; links as "name -> target (bound)"'],
      ['ls -a', 'the root, with the recycle-bin view .trash'],
    ],
  },
  mkdir: { uses: LIB, examples: [['mkdir -p photos/2025 links', 'two directories, with parents']] },
  ln: { uses: LIB, examples: [['ln photos/cat.jpg links/cat', 'links/cat now follows photos/cat.jpg wherever it goes']] },
  mv: {
    uses: LIB,
    examples: [
      ['mv photos albums', 'rename a directory: links to files inside it follow'],
      ['mv albums/cat.jpg archive/', 'into a directory, same name'],
    ],
  },
  cp: { uses: LIB, examples: [['cp albums/cat.jpg backup/cat.jpg', 'a copy shares the bytes (content addressing): no data is copied']] },
  rm: {
    uses: LIB,
    examples: [
      ['rm albums/cat.jpg', 'to the recycle bin, with the bound links to it (smhfs trash restore brings them back)'],
      ['rm -r --permanent old-drafts', 'delete a directory for good (purged at once, progress on a terminal)'],
    ],
  },
  stat: { uses: LIB, examples: [['stat links/cat', 'a link: its flavour, its target now, what readlink returns in a mount']] },
  trash: { uses: LIB },
  'trash list': { uses: LIB, examples: [['trash list', 'id, kind, size, removal time, original path, and the links that went along']] },
  'trash restore': { uses: LIB, examples: [['trash restore 1', 'item 1 and the links that went with it come back']] },
  'trash purge': { uses: LIB, examples: [['trash purge 1', 'item 1 is gone for good']] },
  'trash empty': { uses: LIB, examples: [['trash empty', 'frees the space the bin holds']] },
  tasks: { uses: ['library', 'json', 'blobs', 's3'], examples: [['tasks', 'every task: state, progress, subject']] },
  blobs: { uses: ['library', 'json', 's3'] },
  'blobs show': { uses: ['library', 'json'], examples: [['blobs', 'where the file contents live, as the library records it']] },
  'blobs set': {
    uses: ['library', 'json', 's3'],
    examples: [['blobs set s3://archive/smhfs --s3-endpoint http://127.0.0.1:9000 --s3-path-style', 'after copying the bytes there yourself']],
  },
  init: {
    uses: ['library', 'json', 'blobs', 's3'],
    examples: [
      ['init', 'the default library, its blobs in <library>/blobs'],
      ['--library /srv/media init --blobs s3://media/smhfs --s3-endpoint http://127.0.0.1:9000 --s3-path-style', 'blobs under an S3 prefix of its own (the library records it)'],
    ],
  },
  fsck: {
    uses: ['library', 'json', 'blobs', 's3'],
    examples: [
      ['fsck', 'check the database, names, links, the bin, tasks and every blob; exit 0 clean, 1 repaired, 4 problems left, 8 could not check'],
      ['fsck --repair', 'fix what loses no byte (lost nodes go to /lost+found)'],
    ],
  },
  migrate: {
    uses: ['library', 'json', 'blobs', 's3'],
    examples: [
      ['migrate --to postgres://smhfs@db.example/media', 'move the metadata into an empty PostgreSQL database (SPEC S3), verified before the folder switches; blobs stay'],
      ['migrate --to sqlite:', 'bring a PostgreSQL library\'s metadata back into library.db in this folder'],
    ],
  },
  gc: {
    uses: ['library', 'json', 'blobs', 's3'],
    examples: [
      ['gc', 'list the orphans: blobs in the store no record of the library mentions (a dry run)'],
      ['gc --delete --grace 1d', 'delete the orphans older than a day'],
    ],
  },
  mount: {
    uses: ['library', 'space', 'blobs', 's3'],
    examples: [
      ['mount ./mnt', 'serve the default library at ./mnt until Ctrl-C'],
      ['--library /srv/media mount /mnt/media --daemon --allow-other --log-file /var/log/smhfs-media.log', 'in the background, for every user'],
      ['mount /mnt/media --read-only --uid 1000 --gid 1000 --umask 022 --metrics 127.0.0.1:9567', 'read-only, owned by uid 1000, with Prometheus metrics'],
    ],
  },
  unmount: { uses: [], examples: [['unmount ./mnt', 'unmount, after the server has committed what was written']] },
  stats: {
    uses: ['json'],
    examples: [
      ['stats ./mnt', 'requests, open files, cache hits'],
      ['--json stats ./mnt', 'the same as JSON'],
    ],
  },
  serve: {
    uses: ['library', 'blobs', 's3'],
    examples: [
      ['serve --listen 127.0.0.1:8080 --bos-access-key AK --bos-secret-key SK', 'both dialects; BOS signed with AK/SK'],
      ['serve --listen 0.0.0.0:8080 --log-file /var/log/smhfs-http.log --metrics 127.0.0.1:9568', 'logs in a file, Prometheus metrics'],
    ],
  },
  token: { uses: LIB },
  'token create': {
    uses: LIB,
    examples: [['token create --grant create_symlink,upload_file --period 86400', 'a token for one day; --json adds the library id']],
  },
  completion: {
    uses: [],
    examples: [
      ['completion bash > /etc/bash_completion.d/smhfs', 'bash, for every user (or: source <(smhfs completion bash) in ~/.bashrc)'],
      ['completion zsh > "${fpath[1]}/_smhfs"', 'zsh (or: source <(smhfs completion zsh) in ~/.zshrc)'],
      ['completion fish > ~/.config/fish/completions/smhfs.fish', 'fish'],
    ],
  },
  man: { uses: [], examples: [['man | man -l -', 'read it without installing it']] },
  version: { uses: ['json'], examples: [['version', 'smhfs 0.1.0 (commit …, node v20…)']] },
};
