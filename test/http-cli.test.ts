/**
 * `smhfs serve` and `smhfs token create` as a user runs them: a child process on 127.0.0.1:0,
 * the README's curl example (the seed's create-symlink request) done with fetch, BOS keys from the
 * environment, a permanent directory delete whose purge task the serving process runs (L15), and
 * a clean exit on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import t from 'tap';
import { BosClient, doFetch } from './helpers/http.js';
import { smhfs } from './helpers/mount.js';
import { tempDir } from './helpers/store.js';
import { CLI } from './helpers/mount.js';

t.test('smhfs serve + token create', async (t) => {
  const dir = tempDir('smhfs-serve-');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lib = ['--library', dir];
  t.equal((await smhfs([...lib, 'init'])).code, 0, 'init');

  const bad = await smhfs([...lib, 'token', 'create', '--grant', 'fly']);
  t.equal(bad.code, 2, 'unknown grant is a usage error');
  t.match(bad.stderr, /unknown grant "fly"/);
  const half = await smhfs([...lib, 'serve', '--bos-access-key', 'ak']);
  t.equal(half.code, 2, 'a BOS access key without its secret is a usage error');

  const tj = await smhfs([...lib, '--json', 'token', 'create', '--grant', 'admin', '--period', '600']);
  t.equal(tj.code, 0, tj.stderr);
  const { accessToken, expiresIn, libraryId } = JSON.parse(tj.stdout) as { accessToken: string; expiresIn: number; libraryId: string };
  t.equal(expiresIn, 600);
  const plain = await smhfs([...lib, 'token', 'create', '--grant', 'create_symlink,upload_file']);
  t.match(plain.stdout, /^\S+\n$/, 'plain output is the token alone');

  const child = spawn(process.execPath, [CLI, ...lib, 'serve', '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SMHFS_BOS_ACCESS_KEY: 'cli-ak', SMHFS_BOS_SECRET_KEY: 'cli-sk' },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  for (let i = 0; i < 200 && !/at (http:\/\/\S+)/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
  const url = /at (http:\/\/\S+)/.exec(err)?.[1];
  t.ok(url, `banner names the URL: ${err}`);
  if (!url) return;
  const api = (kind: string, path: string, q = '') => `${url}/api/v1/${kind}/${libraryId}/-/${path}?access_token=${accessToken}${q}`;

  for (const d of ['foo', 'foo/bar', 'foo/bar2']) t.equal((await doFetch(api('directory', d), 'PUT')).status, 201);
  t.equal((await doFetch(api('file', 'foo/bar/file.docx'), 'PUT', { 'content-type': 'application/octet-stream' }, 'doc')).status, 200);
  t.equal((await doFetch(api('file', 'foo/bar2/file.docx'), 'PUT', {}, 'other')).status, 200, 'upload without a Content-Type');
  // The README's curl example.
  const seed = await doFetch(api('file', 'foo/bar2/file.docx', '&conflict_resolution_strategy=rename'), 'PUT', { 'content-type': 'application/json' }, '{"linkTo": "foo/bar/file.docx"}');
  t.equal(seed.status, 200);
  t.same(seed.json, { path: ['foo', 'bar2', 'file (1).docx'] });

  // BOS keys from the environment; the README's BosClient snippet.
  const client = new BosClient({ endpoint: url, credentials: { ak: 'cli-ak', sk: 'cli-sk' } });
  await client.putObjectFromString('-', 'docs/hello.txt', 'hello');
  await client.putSymlink('-', 'docs/hello-link', 'docs/hello.txt');
  t.equal((await client.getObject('-', 'docs/hello-link')).body.toString(), 'hello');

  // L15: the serving process runs the purge task.
  const del = await doFetch(api('directory', 'foo', '&permanent=1'), 'DELETE');
  t.equal(del.status, 202);
  let status = '';
  for (let i = 0; i < 200 && status !== 'done'; i++) {
    const r = await doFetch(api('task', String(del.json.taskId)), 'GET');
    status = r.json?.[0]?.status;
    if (status !== 'done') await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(status, 'done', 'the purge task ran in the serving process');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exit 0 on SIGTERM');
  t.match(err, /SIGTERM: stopping/);
});
